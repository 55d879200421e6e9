//! Statement probes: `process("P").statement("f@file.c:N")`,
//! `statement("*@file.c:N-M")` and `statement(ADDR).absolute`.
//!
//! A line's sites come from the line table: the rows of a file matching
//! the pattern, on the line (every row, as stap reads them, not only those
//! flagged `is_stmt`). A line usually has several rows (a loop condition,
//! an inlined copy of the same source, code the scheduler moved); like
//! stap, one site is kept per line and function instance holding it (the
//! function, and an inlined copy inside it, each), its lowest address.
//! Each site carries the function instance holding it (an inlined copy
//! when the line is inside one) with the parameters and the locals of
//! every lexical block holding the address, located there.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gimli::Reader as _;

use super::error::{DebugError, Result};
use super::layout::nearest;
use super::params::{Cfi, Debug, FunctionInfo, Sources, UnitInfo};
use super::symbols::glob_match;

/// One place a statement probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementSite {
    /// Link-time address (add the load bias for the runtime address).
    pub address: u64,
    /// The source file as the line table names it, when it says.
    pub file: Option<String>,
    /// The source line, when the line table says.
    pub line: Option<u64>,
    /// The innermost function instance holding the address (an inlined copy
    /// when the line is inside one), with `probe_address` = `address` and
    /// every variable in scope there; `None` for an absolute address
    /// outside every function DWARF describes.
    pub function: Option<FunctionInfo>,
}

/// A parsed `statement("...")` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementSpec {
    /// `statement(ADDR)`: a link-time address.
    Address(u64),
    /// `statement("func@file:first[-last]")`.
    Lines {
        function: String,
        file: String,
        first: u64,
        last: u64,
    },
}

impl StatementSpec {
    /// `0x401000` / `4198400`, or `func@file:N` / `func@file:N-M` /
    /// `func@file:*` (every line).
    pub fn parse(spec: &str) -> Result<StatementSpec> {
        let bad = |why: &str| DebugError::BadAccess {
            ty: spec.to_string(),
            what: format!("statement '{spec}': {why}"),
        };
        if let Some(a) = parse_number(spec) {
            return Ok(StatementSpec::Address(a));
        }
        let (function, rest) = spec
            .split_once('@')
            .ok_or_else(|| bad("expected FUNCTION@FILE:LINE or an address"))?;
        let (file, lines) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("no line number after the file name"))?;
        let (first, last) = match lines.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok(), b.trim().parse().ok()),
            // Every line that has code (stap's `file.c:*`).
            None if lines.trim() == "*" => (Some(1), Some(u64::MAX)),
            None => {
                let n = lines.trim().parse().ok();
                (n, n)
            }
        };
        let (Some(first), Some(last)) = (first, last) else {
            return Err(bad("the line must be N, N-M or *"));
        };
        if function.is_empty() || file.is_empty() || first > last || first == 0 {
            return Err(bad(
                "the line must be N, N-M (N <= M) or * after FUNCTION@FILE",
            ));
        }
        Ok(StatementSpec::Lines {
            function: function.to_string(),
            file: file.to_string(),
            first,
            last,
        })
    }
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Sites of `spec` (see [`StatementSpec::parse`]), by address.
pub(crate) fn find_statements(src: &Sources<'_>, spec: &str) -> Result<Vec<StatementSite>> {
    let parsed = StatementSpec::parse(spec)?;
    let debug = Debug::load(src)?;
    let mut cfi = Cfi::new(src);
    match parsed {
        StatementSpec::Address(pc) => Ok(vec![at_address(&debug, &mut cfi, pc)?]),
        StatementSpec::Lines {
            function,
            file,
            first,
            last,
        } => {
            let want = Want {
                function: &function,
                file: &file,
                first,
                last,
            };
            by_lines(&debug, &mut cfi, &want, spec)
        }
    }
}

struct Want<'a> {
    function: &'a str,
    file: &'a str,
    first: u64,
    last: u64,
}

/// A line table row of a file matching the pattern.
struct Row {
    address: u64,
    line: u64,
    file: String,
}

fn at_address(debug: &Debug, cfi: &mut Cfi<'_>, pc: u64) -> Result<StatementSite> {
    let scopes = debug.scopes_at(None, pc)?;
    let function = match scopes.as_ref().and_then(|s| s.levels.last()) {
        Some(l) => Some(debug.function_info(&l.function, cfi, Some(pc), &l.blocks)?),
        None => None,
    };
    let unit = scopes
        .as_ref()
        .and_then(|s| s.levels.first())
        .map(|l| l.function.unit);
    let (file, line) = match unit {
        Some(ui) => debug.line_at(&debug.units[0][ui], pc)?,
        None => (None, None),
    };
    Ok(StatementSite {
        address: pc,
        file,
        line,
        function,
    })
}

fn by_lines(
    debug: &Debug,
    cfi: &mut Cfi<'_>,
    want: &Want<'_>,
    spec: &str,
) -> Result<Vec<StatementSite>> {
    let mut files = BTreeSet::new();
    let mut all_files = BTreeSet::new();
    let mut with_code = BTreeSet::new();
    let mut rows = Vec::new();
    for (ui, u) in debug.units[0].iter().enumerate() {
        debug.statement_rows(
            u,
            want.file,
            &mut |path, line, address| {
                with_code.insert(line);
                if (want.first..=want.last).contains(&line) {
                    rows.push((
                        ui,
                        Row {
                            address,
                            line,
                            file: path.to_string(),
                        },
                    ));
                }
            },
            &mut files,
            &mut all_files,
        )?;
    }
    // (line, function instance DIE) -> the lowest address's site, with the
    // instance's depth (outermost 0).
    let mut best: BTreeMap<(u64, usize), (usize, StatementSite)> = BTreeMap::new();
    rows.sort_by_key(|(_, r)| r.address);
    for (ui, row) in rows {
        let Some(scopes) = debug.scopes_at(Some(ui), row.address)? else {
            continue;
        };
        // Every instance of the wanted function holding the row (the
        // function and an inlined copy inside it) gets the line's lowest
        // address within it, as stap picks one per function DIE. Where two
        // pick the same address there is one site, reading the innermost
        // instance's variables.
        for (depth, level) in scopes.levels.iter().enumerate().rev() {
            if !level
                .function
                .name
                .as_deref()
                .is_some_and(|n| glob_match(want.function, n))
            {
                continue;
            }
            let key = (row.line, level.function.die.offset);
            if best.contains_key(&key) {
                continue;
            }
            let info =
                debug.function_info(&level.function, cfi, Some(row.address), &level.blocks)?;
            best.insert(
                key,
                (
                    depth,
                    StatementSite {
                        address: row.address,
                        file: Some(row.file.clone()),
                        line: Some(row.line),
                        function: Some(info),
                    },
                ),
            );
        }
    }
    if best.is_empty() {
        return Err(no_sites(debug, want, spec, &files, &all_files, &with_code));
    }
    let mut out: Vec<(usize, StatementSite)> = best.into_values().collect();
    // Innermost first at one address and line: that site stays.
    out.sort_by_key(|(depth, s)| (s.address, s.line, std::cmp::Reverse(*depth)));
    out.dedup_by_key(|(_, s)| (s.address, s.line));
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

/// Why `spec` has no site: no such file, no code on those lines (naming
/// the nearest lines that have some), or none in that function.
fn no_sites(
    debug: &Debug,
    want: &Want<'_>,
    spec: &str,
    files: &BTreeSet<String>,
    all_files: &BTreeSet<String>,
    with_code: &BTreeSet<u64>,
) -> DebugError {
    let file = debug.path.clone();
    if files.is_empty() {
        let bases = all_files.iter().map(|f| f.rsplit('/').next().unwrap_or(f));
        let near = nearest(want.file, bases, 3);
        let mut what = format!(
            "source file '{}' in the line table (statement '{spec}')",
            want.file
        );
        if !near.is_empty() {
            what.push_str(&format!(" (nearest: {})", near.join(", ")));
        }
        return DebugError::NotFound { what, file };
    }
    let in_range = with_code.range(want.first..=want.last).next().is_some();
    if !in_range {
        let mut near: Vec<u64> = with_code.iter().copied().collect();
        near.sort_by_key(|l| (l.abs_diff(want.first).min(l.abs_diff(want.last)), *l));
        near.truncate(3);
        near.sort_unstable();
        let near: Vec<String> = near.iter().map(u64::to_string).collect();
        let lines = match want.first == want.last {
            true => format!("line {}", want.first),
            false => format!("lines {}-{}", want.first, want.last),
        };
        return DebugError::NotFound {
            what: format!(
                "code for {lines} of '{}' (statement '{spec}'; nearest lines with code: {})",
                want.file,
                near.join(", ")
            ),
            file,
        };
    }
    DebugError::NotFound {
        what: format!(
            "a function matching '{}' at those lines (statement '{spec}')",
            want.function
        ),
        file,
    }
}

impl Debug {
    /// Calls `hit(file, line, address)` for every row of `u`'s
    /// line table in a file matching `pattern`; `files` receives the
    /// names of the matching files, `all` those of every file.
    fn statement_rows(
        &self,
        u: &UnitInfo,
        pattern: &str,
        hit: &mut dyn FnMut(&str, u64, u64),
        files: &mut BTreeSet<String>,
        all: &mut BTreeSet<String>,
    ) -> Result<()> {
        let Some(program) = u.unit.line_program.clone() else {
            return Ok(());
        };
        let err =
            |e: gimli::Error| self.err(format!("line table of the unit at {:#x}", u.start), e);
        let mut names: HashMap<u64, Option<String>> = HashMap::new();
        let mut rows = program.rows();
        while let Some((header, row)) = rows.next_row().map_err(err)? {
            if row.end_sequence() {
                continue;
            }
            let Some(line) = row.line().map(|l| l.get()) else {
                continue;
            };
            let name = match names.get(&row.file_index()) {
                Some(n) => n.clone(),
                None => {
                    let path = self
                        .file_path(0, u, header, row.file_index())
                        .map_err(err)?;
                    all.extend(path.clone());
                    let n = path.filter(|p| super::dwarf::cu_matches(pattern, p));
                    if let Some(p) = &n {
                        files.insert(p.clone());
                    }
                    names.insert(row.file_index(), n.clone());
                    n
                }
            };
            if let Some(name) = name {
                hit(&name, line, row.address());
            }
        }
        Ok(())
    }

    /// File `index` of a line table as `directory/name`; `dwarf_file`: 0
    /// for the module's DWARF, 1 for its supplementary file's units.
    pub(super) fn file_path(
        &self,
        dwarf_file: u8,
        u: &UnitInfo,
        header: &gimli::LineProgramHeader<super::dwarf::R>,
        index: u64,
    ) -> gimli::Result<Option<String>> {
        let Some(file) = header.file(index) else {
            return Ok(None);
        };
        let text = |v| -> gimli::Result<String> {
            Ok(self
                .gdwarf(dwarf_file)
                .attr_string(&u.unit, v)?
                .to_string_lossy()?
                .into_owned())
        };
        let name = text(file.path_name())?;
        if name.starts_with('/') {
            return Ok(Some(name));
        }
        Ok(Some(match file.directory(header) {
            Some(d) => format!("{}/{name}", text(d)?.trim_end_matches('/')),
            None => name,
        }))
    }

    /// The file and line of the row covering `pc` in `u`'s line table.
    fn line_at(&self, u: &UnitInfo, pc: u64) -> Result<(Option<String>, Option<u64>)> {
        let Some(program) = u.unit.line_program.clone() else {
            return Ok((None, None));
        };
        let err =
            |e: gimli::Error| self.err(format!("line table of the unit at {:#x}", u.start), e);
        let mut rows = program.rows();
        let mut prev: Option<(u64, u64, u64)> = None;
        while let Some((header, row)) = rows.next_row().map_err(err)? {
            if let Some((addr, file, line)) = prev {
                if addr <= pc && pc < row.address() {
                    let path = self.file_path(0, u, header, file).map_err(err)?;
                    return Ok((path, Some(line)));
                }
            }
            // Several rows at one address (gcc's location views): the
            // first names the statement that starts there.
            if prev.is_some_and(|p| p.0 == row.address()) && !row.end_sequence() {
                continue;
            }
            prev = match row.end_sequence() {
                true => None,
                false => Some((
                    row.address(),
                    row.file_index(),
                    row.line().map_or(0, |l| l.get()),
                )),
            };
        }
        Ok((None, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            StatementSpec::parse("0x401000").unwrap(),
            StatementSpec::Address(0x401000)
        );
        assert_eq!(
            StatementSpec::parse("4096").unwrap(),
            StatementSpec::Address(4096)
        );
        assert_eq!(
            StatementSpec::parse("main@src/a.c:12").unwrap(),
            StatementSpec::Lines {
                function: "main".into(),
                file: "src/a.c".into(),
                first: 12,
                last: 12
            }
        );
        assert_eq!(
            StatementSpec::parse("*@a.c:3-9").unwrap(),
            StatementSpec::Lines {
                function: "*".into(),
                file: "a.c".into(),
                first: 3,
                last: 9
            }
        );
        assert_eq!(
            StatementSpec::parse("f*@a.c:*").unwrap(),
            StatementSpec::Lines {
                function: "f*".into(),
                file: "a.c".into(),
                first: 1,
                last: u64::MAX
            }
        );
        for bad in [
            "main",
            "main@a.c",
            "main@a.c:**",
            "main@a.c:*-3",
            "main@a.c:x",
            "main@a.c:9-3",
            "@a.c:1",
            "f@:1",
            "f@a.c:0",
        ] {
            assert!(StatementSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
