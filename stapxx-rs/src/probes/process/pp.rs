//! What `pp()` says in a process probe. SystemTap names the site that
//! matched, not the point as written, so that a wildcard or a library
//! shows which function fired: the module by its full path (symbolic
//! links resolved), a function by its name with the file and line DWARF
//! declares it at (`function("f@src/f.c:12")`, the bare name when only
//! the symbol table knows it), a statement by its function, file and line,
//! a marker or PLT stub by its address (`statement(0x1180)`), followed by
//! the point's `.call`, `.exported`, `.inline` and `.return` as written.
//! Scripts that key arrays by `pp()` or print it get stap's text.

use crate::debuginfo::params::FunctionInfo;
use crate::debuginfo::Module;

/// A string as stap's probe points print it: quoted, `"` and `\`
/// escaped.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `process("/full/path")`: the file the probe is on, by its canonical
/// path where this host sees the target's files (else as the target
/// names it, e.g. inside a container). A resolver takes it once for all
/// its sites (resolving the links costs a system call per component).
pub(super) fn process(m: &Module) -> String {
    let host = m.elf().path();
    let path = if host.starts_with("/proc") {
        m.target_path().to_path_buf()
    } else {
        std::fs::canonicalize(host).unwrap_or_else(|_| m.target_path().to_path_buf())
    };
    format!("process({})", quoted(&path.to_string_lossy()))
}

/// `f@file:line`, or `f` when DWARF gives no file.
fn declared(name: &str, info: Option<&FunctionInfo>) -> String {
    match info.and_then(|i| i.decl.as_ref()) {
        Some(d) if d.line > 0 => format!("{name}@{}:{}", d.file, d.line),
        Some(d) => format!("{name}@{}", d.file),
        None => name.to_string(),
    }
}

/// A function site (`.function`, and a `.callee`'s callee) of the module
/// named `process`: `suffix` is the point's `.call`/`.exported`/`.inline`/
/// `.return` in stap's order.
pub(super) fn function(
    process: &str,
    name: &str,
    info: Option<&FunctionInfo>,
    suffix: &str,
) -> String {
    format!(
        "{process}.function({}){suffix}",
        quoted(&declared(name, info))
    )
}

/// A statement site on a source line of the module named `process`.
pub(super) fn line(process: &str, function: &str, file: &str, line: u64) -> String {
    format!(
        "{process}.statement({})",
        quoted(&format!("{function}@{file}:{line}"))
    )
}

/// A site known by its link-time address: a statement given by address,
/// a marker, a PLT stub.
pub(super) fn address(process: &str, address: u64, suffix: &str) -> String {
    format!("{process}.statement({address:#x}){suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(declared("f", None), "f");
    }
}
