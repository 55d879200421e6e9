//! Preprocess and parse the whole SystemTap tapset tree in one process.
//!
//!     cargo bench -p stapxx-grammar --bench parse_tapsets
//!
//! Reads every `.stp` and `.stpm` file under `$STAPXX_TAPSET_DIR` (default
//! `/usr/share/systemtap/tapset`), loads the library macros the way stap does
//! for the kernel runtime on x86_64 (the `.stpm` files of `linux/x86_64`,
//! `linux`, `x86_64` and the top directory), then times `parse_source` on
//! every file. Reading files is not timed. Prints a table; the goal is the
//! whole tree in at most 0.3 s. `STAPXX_BENCH_ITERS` sets the number of timed
//! runs (default 10, after one warm-up run).

use grammar::{FileId, MacroTable, PpConfig, SourceMap};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DEFAULT_DIR: &str = "/usr/share/systemtap/tapset";
const GOAL: Duration = Duration::from_millis(300);

/// The directories stap 4.8 reads library macros from, kernel runtime on
/// x86_64, in its order (versioned `linux/<kernel>` dirs do not exist here).
const MACRO_DIRS: &[&str] = &["linux/x86_64", "linux", "x86_64", ""];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("stp" | "stpm")
        ) {
            out.push(path);
        }
    }
}

fn stpm_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "stpm"))
        .collect();
    out.sort();
    out
}

struct Run {
    macros: Duration,
    preprocess: Duration,
    parse: Duration,
    ok: usize,
    failed: Vec<(String, String)>,
}

fn run_once(sources: &SourceMap, library: &[FileId], scripts: &[FileId], config: &PpConfig) -> Run {
    let start = Instant::now();
    let mut table = MacroTable::new();
    for &id in library {
        // A library file with errors is skipped, as stap does.
        let _ = table.add_library_file(id, &sources.get(id).text, config);
    }
    let macros = start.elapsed();

    // The preprocessor alone, for the split; not part of the total.
    let start = Instant::now();
    for &id in scripts {
        let _ = black_box(grammar::preprocess(
            id,
            &sources.get(id).text,
            config,
            &table,
        ));
    }
    let preprocess = start.elapsed();

    let start = Instant::now();
    let mut ok = 0;
    let mut failed = Vec::new();
    for &id in scripts {
        let file = sources.get(id);
        match black_box(grammar::parse_source(id, &file.text, config, &table)) {
            Ok(ast) => {
                black_box(ast);
                ok += 1;
            }
            Err(diag) => failed.push((file.name.clone(), diag.render(sources))),
        }
    }
    Run {
        macros,
        preprocess,
        parse: start.elapsed(),
        ok,
        failed,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let dir =
        PathBuf::from(std::env::var("STAPXX_TAPSET_DIR").unwrap_or_else(|_| DEFAULT_DIR.into()));
    let iters: usize = std::env::var("STAPXX_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .max(1);

    let mut paths = Vec::new();
    walk(&dir, &mut paths);
    paths.sort();
    if paths.is_empty() {
        eprintln!(
            "parse_tapsets: no .stp/.stpm files under {} (apt-get install systemtap-common, or set STAPXX_TAPSET_DIR)",
            dir.display()
        );
        std::process::exit(1);
    }

    let mut sources = SourceMap::new();
    let mut library = Vec::new();
    for sub in MACRO_DIRS {
        for path in stpm_files(&dir.join(sub)) {
            let text = std::fs::read_to_string(&path).expect("reading a macro library");
            library.push(sources.add(path.display().to_string(), text));
        }
    }
    let mut scripts = Vec::new();
    let mut bytes = 0;
    for path in &paths {
        let raw = std::fs::read(path).expect("reading a tapset");
        bytes += raw.len();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let rel = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        scripts.push(sources.add(rel, text));
    }

    let config = PpConfig {
        guru_mode: true,
        ..PpConfig::default()
    };

    // Library files stap would skip with an error are reported, not fatal.
    let mut check = MacroTable::new();
    let mut library_errors = Vec::new();
    for &id in &library {
        if let Err(diag) = check.add_library_file(id, &sources.get(id).text, &config) {
            library_errors.push(diag.render(&sources));
        }
    }

    let warm = run_once(&sources, &library, &scripts, &config);
    let mut totals = Vec::new();
    let mut parses = Vec::new();
    let mut macros = Vec::new();
    let mut pres = Vec::new();
    for _ in 0..iters {
        let r = run_once(&sources, &library, &scripts, &config);
        totals.push(r.macros + r.parse);
        parses.push(r.parse);
        macros.push(r.macros);
        pres.push(r.preprocess);
    }
    pres.sort();
    totals.sort();
    parses.sort();
    macros.sort();
    let median = |v: &[Duration]| v[v.len() / 2];

    let mb = bytes as f64 / 1e6;
    println!(
        "tapset tree: {} ({} files, {:.2} MB; {} macro libraries, {} macros); {} timed runs after one warm-up",
        dir.display(),
        scripts.len(),
        mb,
        library.len(),
        check.len(),
        iters
    );
    println!();
    println!("| what | min | median | max | goal |");
    println!("| --- | --- | --- | --- | --- |");
    let row = |what: String, v: &[Duration], goal: &str| {
        let (min, med, max) = (v[0], median(v), v[v.len() - 1]);
        println!(
            "| {what} | {} | {} | {} | {goal} |",
            ms(min),
            ms(med),
            ms(max)
        );
    };
    row(
        format!("load library macros ({} .stpm)", library.len()),
        &macros,
        "",
    );
    row(
        format!("preprocess + parse {} files", scripts.len()),
        &parses,
        "",
    );
    row("(preprocess alone, not in the total)".into(), &pres, "");
    row(
        "whole tree (macros + parse)".into(),
        &totals,
        &format!("<= {}", ms(GOAL)),
    );
    println!();
    println!(
        "throughput: {:.1} MB/s (median); parsed {} of {} files{}",
        mb / median(&totals).as_secs_f64(),
        warm.ok,
        scripts.len(),
        if median(&totals) <= GOAL {
            "; goal met"
        } else {
            "; GOAL MISSED"
        }
    );
    for diag in &library_errors {
        println!("macro library skipped:\n{}", diag.trim_end());
    }
    if !warm.failed.is_empty() {
        println!("{} files failed to parse (first 10):", warm.failed.len());
        for (name, diag) in warm.failed.iter().take(10) {
            println!("--- {name}\n{}", diag.trim_end());
        }
    }
}
