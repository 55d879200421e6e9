//! Resolve every `@cast`/`@var` of our LuaJIT tapset against a debug build
//! of LuaJIT, cold.
//!
//!     cargo bench -p stapxx-rs --bench luajit_resolve
//!
//! Collects each `@cast(p, "TYPE", ...)CHAIN` and `@var("NAME", ...)CHAIN`
//! (with a leading `&` where present) of `tapsets/luajit.sxx` and
//! `examples/lj-lua-stacks.sxx`, then, for the GC64 and the 32-bit-GCRef
//! build of OpenResty's LuaJIT 2.1 (see `tests/support/luajit.rs`; built on
//! first use), times per run: opening the ELF file with a new `Module`
//! (nothing cached in the process; the file itself is in the page cache),
//! loading and indexing its DWARF, and resolving every expression. A cast
//! that fails must be one of the other layout's (`gcptr32` on GC64 ...),
//! which `@defined` drops in pass 2: it has to resolve in the other build.
//! Prints a table; the goal is at most 50 ms per file. `STAPXX_BENCH_ITERS`
//! sets the number of timed runs (default 20).

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use stapxx::debuginfo::{parse_chain, Module};
use support::luajit::{self, Variant};

const GOAL: Duration = Duration::from_millis(50);

/// One `@cast`/`@var` expression of a script.
#[derive(Debug, Clone)]
struct Expr {
    /// `cast` or `var`.
    var: bool,
    /// The type (`@cast`) or variable spec (`@var`).
    name: String,
    chain: String,
    address_of: bool,
    at: String,
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}(\"{}\"){} at {}",
            if self.address_of { "&" } else { "" },
            if self.var { "var" } else { "cast" },
            self.name,
            self.chain,
            self.at
        )
    }
}

/// The text with comments (`//`, `#`, `/* */`) blanked out, strings kept.
fn strip_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push_str(&src[start..i]);
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                out.extend(
                    src[i..end]
                        .chars()
                        .map(|c| if c == '\n' { '\n' } else { ' ' }),
                );
                i = end;
            }
            _ => {
                let c = src[i..].chars().next().unwrap();
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// The index just past the bracket matching the one at `open`.
fn matching(b: &[u8], open: usize) -> Option<usize> {
    let (o, c) = (b[open], if b[open] == b'(' { b')' } else { b']' });
    let mut depth = 0;
    let mut i = open;
    while i < b.len() {
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += usize::from(b[i] == b'\\') + 1;
            }
        } else if b[i] == o {
            depth += 1;
        } else if b[i] == c {
            depth -= 1;
            if depth == 0 {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    None
}

/// Top-level comma-separated arguments.
fn split_args(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    let mut in_str = false;
    let mut prev = ' ';
    for c in s.chars() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '[' if !in_str => depth += 1,
            ')' | ']' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(String::new());
                prev = c;
                continue;
            }
            _ => {}
        }
        out.last_mut().unwrap().push(c);
        prev = c;
    }
    out.into_iter().map(|a| a.trim().to_string()).collect()
}

fn exprs(file: &Path) -> Vec<Expr> {
    let raw = std::fs::read_to_string(file).unwrap();
    let src = strip_comments(&raw);
    let b = src.as_bytes();
    let mut out = Vec::new();
    for (kw, var) in [("@cast(", false), ("@var(", true)] {
        for (pos, _) in src.match_indices(kw) {
            let open = pos + kw.len() - 1;
            let close = matching(b, open).expect("balanced @cast/@var");
            let args = split_args(&src[open + 1..close - 1]);
            let name = args[usize::from(!var)].trim_matches('"').to_string();
            let mut end = close;
            loop {
                if src[end..].starts_with("->") {
                    end += 2;
                    while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                        end += 1;
                    }
                } else if b.get(end) == Some(&b'[') {
                    end = matching(b, end).expect("balanced []");
                } else {
                    break;
                }
            }
            let before = src[..pos].trim_end();
            let address_of = before.ends_with('&') && !before.ends_with("&&");
            let line = src[..pos].matches('\n').count() + 1;
            out.push(Expr {
                var,
                name,
                chain: src[close..end].to_string(),
                address_of,
                at: format!("{}:{line}", file.file_name().unwrap().to_string_lossy()),
            });
        }
    }
    out
}

fn resolve(m: &Module, e: &Expr) -> Result<(), String> {
    let steps = parse_chain(&e.chain)?;
    let r = if e.var {
        m.resolve_var(&e.name, &steps, e.address_of)
            .map(|v| v.resolved)
    } else {
        m.resolve_cast(&e.name, &steps, e.address_of)
    };
    black_box(r).map(|_| ()).map_err(|e| e.to_string())
}

struct Run {
    open: Duration,
    dwarf: Duration,
    resolve: Duration,
    failed: Vec<usize>,
}

fn run_once(file: &Path, exprs: &[Expr]) -> Run {
    let t0 = Instant::now();
    let m = Module::open(file).unwrap();
    let t1 = Instant::now();
    m.dwarf().unwrap();
    let t2 = Instant::now();
    let failed = exprs
        .iter()
        .enumerate()
        .filter(|(_, e)| resolve(&m, e).is_err())
        .map(|(i, _)| i)
        .collect();
    let t3 = Instant::now();
    Run {
        open: t1 - t0,
        dwarf: t2 - t1,
        resolve: t3 - t2,
        failed,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let iters: usize = std::env::var("STAPXX_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .max(1);
    let root = support::workspace_root();
    let mut all = exprs(&root.join("tapsets/luajit.sxx"));
    all.extend(exprs(&root.join("examples/lj-lua-stacks.sxx")));
    let casts: Vec<Expr> = all.iter().filter(|e| !e.var).cloned().collect();
    let n_vars = all.len() - casts.len();
    println!(
        "{} @cast and {n_vars} @var expressions (tapsets/luajit.sxx, examples/lj-lua-stacks.sxx)",
        casts.len()
    );

    let builds: Vec<_> = Variant::ALL
        .iter()
        .map(|&v| luajit::get(v).unwrap_or_else(|| panic!("no LuaJIT {} build", v.name())))
        .collect();
    let mut bad = Vec::new();
    let mut over_goal = false;
    let mut other_layout = Vec::new();
    println!();
    println!("| LuaJIT build | file | exprs | resolved | other layout | open | DWARF load+index | resolve all | total median | total max |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (bi, lj) in builds.iter().enumerate() {
        let other = &builds[1 - bi];
        // The executable gets the @var expressions too.
        for (file, exprs, other_file) in [
            (&lj.luajit, &all, &other.luajit),
            (&lj.libluajit, &casts, &other.libluajit),
        ] {
            // Warm-up (page cache), not timed.
            let warm = run_once(file, exprs);
            let other_mod = Module::open(other_file).unwrap();
            for &i in &warm.failed {
                if resolve(&other_mod, &exprs[i]).is_err() {
                    bad.push(format!("{}: {}: {}", file.display(), exprs[i], {
                        let m = Module::open(file).unwrap();
                        resolve(&m, &exprs[i]).unwrap_err()
                    }));
                }
            }
            if file == &lj.luajit {
                let names: Vec<String> = warm
                    .failed
                    .iter()
                    .map(|&i| format!("{}{}", exprs[i].name, exprs[i].chain))
                    .collect();
                other_layout.push(format!("{}: {}", lj.variant.name(), names.join(", ")));
            }
            let mut runs: Vec<Run> = (0..iters).map(|_| run_once(file, exprs)).collect();
            runs.sort_by_key(|r| r.open + r.dwarf + r.resolve);
            let med = &runs[runs.len() / 2];
            let max = runs.last().unwrap();
            let total = |r: &Run| r.open + r.dwarf + r.resolve;
            over_goal |= total(med) > GOAL;
            println!(
                "| {} | {} | {} | {} | {} | {} ms | {} ms | {} ms | {} ms | {} ms |",
                lj.variant.name(),
                file.file_name().unwrap().to_string_lossy(),
                exprs.len(),
                exprs.len() - med.failed.len(),
                med.failed.len(),
                ms(med.open),
                ms(med.dwarf),
                ms(med.resolve),
                ms(total(med)),
                ms(total(max)),
            );
        }
    }
    println!();
    println!(
        "{} runs per row (new Module each run; median row shown); goal: total at most {} ms",
        iters,
        GOAL.as_millis()
    );
    println!("only in the other layout (dropped by @defined):");
    for o in &other_layout {
        println!("  {o}");
    }
    if !bad.is_empty() {
        eprintln!("expressions that resolve in neither layout:");
        for b in &bad {
            eprintln!("  {b}");
        }
        std::process::exit(1);
    }
    if over_goal {
        eprintln!("over the goal of {} ms", GOAL.as_millis());
        std::process::exit(1);
    }
}
