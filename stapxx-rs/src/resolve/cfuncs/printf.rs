//! Printing through the runtime's `STAP_PRINTF` (`logging.stp`'s `log`):
//! one C statement `STAP_PRINTF("FORMAT", STAP_ARG_a, ...)` is the
//! script's `printf("FORMAT", a, ...)`: the same formats, the same output
//! stream (stap's print buffer).

use super::B;
use grammar::ast::*;

/// The script body for such a function, `None` when `code` is not one.
pub(super) fn translate(b: &B, f: &Function, code: &str) -> Option<Block> {
    let c = super::one_statement(
        code,
        r#"^STAP_PRINTF\s*\(\s*"((?:[^"\\]|\\.)*)"\s*((?:,\s*STAP_ARG_\w+\s*)*)\)$"#,
    )?;
    let mut args = vec![b.str(&unescape(&c[1])?)];
    for a in c[2].split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let name = a.strip_prefix("STAP_ARG_")?;
        let param = f.params.iter().find(|p| p.name == name)?;
        args.push(b.var(&param.name));
    }
    Some(b.body(vec![b.s(StmtKind::Expr(b.call("printf", args)))]))
}

/// A C string literal's text (the escapes a format uses).
fn unescape(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            _ => return None,
        });
    }
    Some(out)
}
