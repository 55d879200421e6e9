//! The binutils oracles of `dwarf_sites`: what `objdump` prints about the
//! DWARF (`--dwarf=info`, `--dwarf=loc`, `--dwarf=decodedline`) and the
//! PLT (`-d`), parsed into plain values.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Runs `objdump ARGS FILE` and returns its standard output.
pub fn objdump(args: &[&str], file: &Path) -> String {
    let out = Command::new("objdump")
        .args(args)
        .arg(file)
        .output()
        .expect("objdump (binutils) must be installed");
    assert!(out.status.success(), "objdump {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One DIE as `objdump --dwarf=info` prints it.
#[derive(Debug, Clone)]
pub struct Die {
    pub depth: u32,
    pub offset: u64,
    pub tag: String,
    /// `DW_AT_*` name -> the printed value, trimmed.
    pub attrs: BTreeMap<String, String>,
}

impl Die {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    /// A name attribute without objdump's `(indirect string, ...)` prefix.
    pub fn name(&self) -> Option<&str> {
        let v = self.attr("DW_AT_name")?;
        Some(match v.rsplit_once("): ") {
            Some((_, n)) => n,
            None => v,
        })
    }

    /// A reference attribute (`<0x45f>`) as an offset.
    pub fn reference(&self, name: &str) -> Option<u64> {
        let v = self.attr(name)?;
        let v = v.trim_start_matches('<').trim_end_matches('>');
        u64::from_str_radix(v.trim_start_matches("0x"), 16).ok()
    }

    /// An address or constant attribute printed in hex (`0x1075`) or decimal.
    pub fn number(&self, name: &str) -> Option<u64> {
        let v = self.attr(name)?.split_whitespace().next()?;
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => v.parse().ok(),
        }
    }
}

/// Every DIE of `objdump --dwarf=info FILE`, in file order.
pub fn dies(file: &Path) -> Vec<Die> {
    let text = objdump(&["--dwarf=info"], file);
    let mut out: Vec<Die> = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        // ` <2><1f2>: Abbrev Number: 11 (DW_TAG_inlined_subroutine)`
        if let Some(rest) = t.strip_prefix('<') {
            if let Some((depth, rest)) = rest.split_once("><") {
                if let Some((off, rest)) = rest.split_once(">: Abbrev Number: ") {
                    let (Ok(depth), Ok(offset)) = (depth.parse(), u64::from_str_radix(off, 16))
                    else {
                        continue;
                    };
                    let tag = rest
                        .split_once('(')
                        .map(|(_, t)| t.trim_end_matches(')').to_string())
                        .unwrap_or_default();
                    out.push(Die {
                        depth,
                        offset,
                        tag,
                        attrs: BTreeMap::new(),
                    });
                    continue;
                }
            }
            // `<1f3>   DW_AT_abstract_origin: <0x45f>`
            if let Some((_, rest)) = t.split_once('>') {
                let rest = rest.trim_start();
                if rest.starts_with("DW_AT_") {
                    if let (Some(die), Some((k, v))) = (out.last_mut(), rest.split_once(':')) {
                        die.attrs.insert(k.trim().to_string(), v.trim().to_string());
                    }
                }
            }
        }
    }
    out
}

/// The children of the DIE at index `i` (one level down).
pub fn children(dies: &[Die], i: usize) -> Vec<&Die> {
    let depth = dies[i].depth;
    dies[i + 1..]
        .iter()
        .take_while(|d| d.depth > depth)
        .filter(|d| d.depth == depth + 1)
        .collect()
}

/// One range entry of a location list: `[begin, end)` and the expression
/// as objdump spells it (`DW_OP_reg5 (rdi)`).
#[derive(Debug, Clone)]
pub struct LocEntry {
    pub begin: u64,
    pub end: u64,
    pub expr: String,
}

/// The location lists of `objdump --dwarf=loc FILE` by the offset
/// `DW_AT_location` uses (that of the list's first entry).
pub fn location_lists(file: &Path) -> BTreeMap<u64, Vec<LocEntry>> {
    let text = objdump(&["--dwarf=loc"], file);
    let mut out = BTreeMap::new();
    let mut current: Option<(u64, Vec<LocEntry>)> = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if line.contains("location view pair") {
            continue;
        }
        if line.contains("<End of list>") {
            if let Some((off, v)) = current.take() {
                out.insert(off, v);
            }
            continue;
        }
        let Ok(first) = u64::from_str_radix(words[0], 16) else {
            continue;
        };
        // A line starting with an entry offset opens the list if none is.
        let entry_line = words[0].len() == 8 && !line.starts_with("             ");
        if entry_line && current.is_none() {
            current = Some((first, Vec::new()));
        }
        // `begin end (expr)`: a range, with absolute addresses.
        if let Some((range, expr)) = line.split_once(" (") {
            let nums: Vec<&str> = range.split_whitespace().collect();
            if nums.len() >= 2 && !line.contains("(base address)") {
                let b = u64::from_str_radix(nums[nums.len() - 2], 16);
                let e = u64::from_str_radix(nums[nums.len() - 1], 16);
                if let (Ok(begin), Ok(end), Some((_, v))) = (b, e, current.as_mut()) {
                    let expr = expr.strip_suffix(')').unwrap_or(expr).to_string();
                    v.push(LocEntry { begin, end, expr });
                }
            }
        }
    }
    out
}
/// One row of `objdump --dwarf=decodedline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRow {
    pub line: u64,
    pub address: u64,
    pub is_stmt: bool,
}

/// The rows of `FILE_NAME` (as objdump prints its first column).
pub fn decoded_lines(file: &Path, file_name: &str) -> Vec<LineRow> {
    let text = objdump(&["--dwarf=decodedline"], file);
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 3 || words[0] != file_name {
            continue;
        }
        let (Ok(l), Some(Ok(a))) = (
            words[1].parse(),
            words[2]
                .strip_prefix("0x")
                .map(|h| u64::from_str_radix(h, 16)),
        ) else {
            continue;
        };
        out.push(LineRow {
            line: l,
            address: a,
            is_stmt: words.last() == Some(&"x"),
        });
    }
    out
}

/// `name@plt` labels of `objdump -d --section=SECTION FILE` and their
/// addresses (empty when the file has no such section: objdump then
/// warns and fails, so its status is not checked here).
pub fn plt_labels(file: &Path, section: &str) -> BTreeMap<String, u64> {
    let out = Command::new("objdump")
        .args(["-d", &format!("--section={section}")])
        .arg(file)
        .output()
        .expect("objdump (binutils) must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut out = BTreeMap::new();
    for line in text.lines() {
        // `0000000000001030 <puts@plt>:`
        let Some((addr, rest)) = line.split_once(" <") else {
            continue;
        };
        let Some(name) = rest.strip_suffix("@plt>:") else {
            continue;
        };
        if let Ok(a) = u64::from_str_radix(addr.trim(), 16) {
            out.insert(name.to_string(), a);
        }
    }
    out
}
