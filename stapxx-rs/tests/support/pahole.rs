//! Struct and union layouts as `pahole` (package `dwarves`) prints them, the
//! oracle for our DWARF member resolution.
//!
//! `pahole -C NAME FILE` prints one type; with `-E` (expand) it prints the
//! members of nested struct/union members too, with absolute offsets. When
//! NAME is both a typedef and a struct tag (`typedef struct lua_State
//! lua_State`), pahole 1.24 prints only the typedef line; the struct is then
//! taken from pahole's listing of every type in the file, which prints the
//! same text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use stapxx::debuginfo::{Index, Step};

/// One step of a member path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// `.name`
    Member(String),
    /// `[0]`: the first element of an array of structs/unions, whose
    /// members pahole prints with the first element's offsets.
    First,
}

/// One member line (or closing line of a nested aggregate member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Path from the printed type; members of anonymous structs/unions
    /// appear directly under their container, as C names them.
    pub path: Vec<Seg>,
    /// Byte offset from the start of the printed type.
    pub offset: u64,
    /// Size in bytes (of the storage unit, for a bitfield).
    pub size: u64,
    /// For a bitfield: its bit offset within the `size`-byte unit at `offset`.
    pub bit: Option<u64>,
}

impl Member {
    /// `a.b[0].c`.
    pub fn display(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Member(m) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(m);
                }
                Seg::First => s.push_str("[0]"),
            }
        }
        s
    }

    /// The path as resolver steps.
    pub fn steps(&self) -> Vec<Step> {
        self.path
            .iter()
            .map(|s| match s {
                Seg::Member(m) => Step::Member(m.clone()),
                Seg::First => Step::Index(Index::Const(0)),
            })
            .collect()
    }
}

/// One printed type.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// `struct` or `union`.
    pub keyword: String,
    pub members: Vec<Member>,
    /// From pahole's `/* size: N ... */` summary (printed for structs).
    pub size: Option<u64>,
}

fn pahole_output(args: &[&str], file: &Path) -> String {
    let out = Command::new("pahole")
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run pahole: {e}"));
    assert!(
        out.status.success(),
        "pahole {args:?} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// pahole's listing of every type of `file` (cached per file and mode).
fn full_listing(file: &Path, expand: bool) -> String {
    static CACHE: OnceLock<Mutex<HashMap<(PathBuf, bool), String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (file.to_path_buf(), expand);
    if let Some(s) = cache.lock().unwrap().get(&key) {
        return s.clone();
    }
    let args: &[&str] = if expand { &["-E"] } else { &[] };
    let text = pahole_output(args, file);
    cache.lock().unwrap().insert(key, text.clone());
    text
}

/// The text pahole prints for the struct or union `name` of `file`.
pub fn text(file: &Path, name: &str, expand: bool) -> String {
    let mut args = vec!["-C", name];
    if expand {
        args.push("-E");
    }
    let direct = pahole_output(&args, file);
    let first = direct.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.starts_with("struct ") || first.starts_with("union ") {
        return direct;
    }
    // Only a typedef line: take the aggregate from the full listing.
    let listing = full_listing(file, expand);
    for keyword in ["struct", "union"] {
        let header = format!("{keyword} {name} {{");
        let mut lines = listing.lines().skip_while(|l| *l != header);
        let Some(h) = lines.next() else { continue };
        let mut out = format!("{h}\n");
        for l in lines {
            out.push_str(l);
            out.push('\n');
            if l.starts_with('}') {
                return out;
            }
        }
    }
    panic!(
        "pahole knows no struct or union {name} in {}; -C printed: {direct:?}",
        file.display()
    )
}

/// pahole's layout of `name` in `file`; see [`parse`].
pub fn layout(file: &Path, name: &str, expand: bool) -> Layout {
    let t = text(file, name, expand);
    parse(&t).unwrap_or_else(|e| panic!("parsing pahole's output for {name}: {e}\n{t}"))
}

/// Removes every `__attribute__((...))`.
fn strip_attributes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("__attribute__") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "__attribute__".len()..];
        let mut depth = 0usize;
        let mut end = after.len();
        for (j, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `"off size"` or `"off:bit size"`.
fn parse_location(c: &str) -> Result<(u64, u64, Option<u64>), String> {
    let c = c.trim();
    let (loc, size) = c
        .rsplit_once(char::is_whitespace)
        .ok_or_else(|| format!("offset comment {c:?}"))?;
    let size = size.trim().parse().map_err(|_| format!("size in {c:?}"))?;
    let loc = loc.trim();
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("number {s:?} in {c:?}"))
    };
    Ok(match loc.split_once(':') {
        Some((o, b)) => (num(o)?, size, Some(num(b)?)),
        None => (num(loc)?, size, None),
    })
}

/// Splits a declaration `TYPE NAME[2][3]:5` (or a function pointer
/// `RET (*NAME)(ARGS)`) into the name and the number of array dimensions.
fn declarator(decl: &str) -> Option<(String, usize)> {
    let decl = decl.trim();
    if let Some(i) = decl.find("(*") {
        let name = decl[i + 2..].split(')').next()?.trim();
        return (!name.is_empty()).then(|| (name.to_string(), 0));
    }
    let decl = decl.split(':').next()?.trim_end();
    let (head, dims) = match decl.find('[') {
        Some(i) => (&decl[..i], decl[i..].matches('[').count()),
        None => (decl, 0),
    };
    let name = head
        .rsplit(|c: char| c.is_whitespace() || c == '*')
        .next()?
        .trim();
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| (name.to_string(), dims))
}

/// Parses pahole's text for one struct or union.
pub fn parse(text: &str) -> Result<Layout, String> {
    let mut layout = Layout::default();
    // Members collected per open brace.
    let mut frames: Vec<Vec<Member>> = Vec::new();
    for raw in text.lines() {
        let mut line = raw.trim();
        // Leading comments: `/* typedef X -> Y */ ...` (expanded output),
        // hole and cacheline notes, the summary.
        while let Some(rest) = line.strip_prefix("/*") {
            let Some(end) = rest.find("*/") else {
                line = "";
                break;
            };
            let comment = rest[..end].trim();
            if frames.len() == 1 {
                if let Some(n) = comment.strip_prefix("size: ") {
                    let n: String = n.chars().take_while(char::is_ascii_digit).collect();
                    layout.size = n.parse().ok();
                }
            }
            line = rest[end + 2..].trim_start();
        }
        if line.is_empty() {
            continue;
        }
        let line = strip_attributes(line);
        let (code, comment) = match line.split_once("/*") {
            Some((c, m)) => (c.trim(), Some(m.trim().trim_end_matches("*/").trim())),
            None => (line.trim(), None),
        };
        if code.ends_with('{') {
            if frames.is_empty() {
                layout.keyword = code.split_whitespace().next().unwrap_or("").to_string();
            }
            frames.push(Vec::new());
            continue;
        }
        if let Some(rest) = code.strip_prefix('}') {
            let inner = frames.pop().ok_or("unbalanced '}'")?;
            let Some(parent) = frames.last_mut() else {
                layout.members = inner;
                return Ok(layout);
            };
            let decl = rest.split(';').next().unwrap_or("").trim();
            if decl.is_empty() {
                // An anonymous struct/union: its members belong to the parent.
                parent.extend(inner);
                continue;
            }
            let (name, dims) = declarator(decl).ok_or_else(|| format!("member name in {raw:?}"))?;
            let (offset, size, bit) =
                parse_location(comment.ok_or_else(|| format!("no offset in {raw:?}"))?)?;
            let mut prefix = vec![Seg::Member(name)];
            parent.push(Member {
                path: prefix.clone(),
                offset,
                size,
                bit,
            });
            prefix.extend(std::iter::repeat_n(Seg::First, dims));
            parent.extend(inner.into_iter().map(|m| {
                let mut path = prefix.clone();
                path.extend(m.path);
                Member { path, ..m }
            }));
            continue;
        }
        // A member line: `TYPE NAME; /* off size */`; enumerators and
        // other lines without an offset comment are not members.
        let (Some(comment), Some((decl, _))) = (comment, code.split_once(';')) else {
            continue;
        };
        let (name, _) = declarator(decl).ok_or_else(|| format!("member name in {raw:?}"))?;
        let (offset, size, bit) = parse_location(comment)?;
        frames
            .last_mut()
            .ok_or_else(|| format!("member outside braces: {raw:?}"))?
            .push(Member {
                path: vec![Seg::Member(name)],
                offset,
                size,
                bit,
            });
    }
    Err("no closing '}'".into())
}

/// The byte offset of `member` (a scalar or an array; for a bitfield,
/// its storage unit's) in the running kernel's `struct name`, as pahole
/// reads `/sys/kernel/btf/vmlinux`.
pub fn kernel_offset(name: &str, member: &str) -> u64 {
    let text = text(Path::new("/sys/kernel/btf/vmlinux"), name, false);
    let want = format!(" {member};");
    let want_array = format!(" {member}[");
    let want_bits = format!(" {member}:");
    let line = text
        .lines()
        .find(|l| {
            let decl = l.split("/*").next().unwrap_or("");
            decl.contains(&want) || decl.contains(&want_array) || decl.contains(&want_bits)
        })
        .unwrap_or_else(|| panic!("no {member} in pahole's struct {name}:\n{text}"));
    line.split("/*")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        // A bitfield's place is `BYTE:BIT` (`1192: 0`, `1192:10`).
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
