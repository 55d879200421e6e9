//! The command-line options that change the parsed script before pass 2,
//! as stap applies them: `-G NAME=VALUE` (a global's initial value) and
//! `-T SECONDS` (a probe that ends the run). Applied after pass 1, so `-p2`
//! lists what they made.

use grammar::{ast, Diagnostic};

/// `-G NAME=VALUE`: the script's global NAME starts at VALUE (a number
/// as C writes one, else a string), as stap sets it when the module loads.
pub(crate) fn set_globals(files: &mut [ast::File], settings: &[String]) -> Result<(), Diagnostic> {
    for setting in settings {
        let Some((name, value)) = setting.split_once('=') else {
            return Err(Diagnostic::bare(format!(
                "-G {setting}: NAME=VALUE expected"
            )));
        };
        // A number stap takes as one (it wraps to 64 bits as a long).
        let literal = match crate::limits::c_integer(value) {
            Some(n) if n.unsigned_abs() <= u128::from(u64::MAX) => ast::Literal::Number(n as i64),
            _ => ast::Literal::String(value.to_string()),
        };
        let global = files
            .iter_mut()
            .flat_map(|f| f.items.iter_mut())
            .find_map(|i| match i {
                ast::Item::Global(g) if g.name == name && !g.array => Some(g),
                _ => None,
            });
        match global {
            Some(g) => g.init = Some(literal),
            None => {
                return Err(Diagnostic::bare(format!(
                    "-G {setting}: the script has no scalar global '{name}'"
                )))
            }
        }
    }
    Ok(())
}

/// `-T SECONDS`: `probe timer.s(SECONDS) { exit() }`, as stap's runtime
/// ends a run at its timeout.
pub(crate) fn timeout_probe(secs: u64) -> ast::Item {
    use ast::*;
    let span = grammar::Span::default();
    let component = |name: &str, arg| Component {
        name: name.into(),
        arg,
        span,
    };
    let exit = Expr {
        kind: ExprKind::Call {
            name: "exit".into(),
            args: Vec::new(),
        },
        span,
    };
    Item::Probe(Probe {
        points: vec![ProbePoint {
            components: vec![
                component("timer", None),
                component("s", Some(Literal::Number(secs.min(i64::MAX as u64) as i64))),
            ],
            optional: false,
            sufficient: false,
            condition: None,
            span,
        }],
        body: Block {
            stmts: vec![Stmt {
                kind: StmtKind::Expr(exit),
                span,
            }],
            span,
        },
        private: false,
        span,
    })
}
