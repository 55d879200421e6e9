//! The parts of a `process(...)...` point, parsed once.

use super::super::Miss;
use grammar::ast::{Literal, ProbePoint};

pub(super) struct FunctionSpec {
    pub function: String,
    pub instances: Instances,
    pub is_return: bool,
    /// The point's `.call`, `.exported`, `.inline`, `.return`, in stap's
    /// order, for `pp()`.
    pub suffix: String,
    /// `f@file.c:N[-M]`: only the functions declared in those lines.
    pub decl_lines: Option<(u64, u64)>,
}

/// The parts of a `process...` point.
pub(super) struct Spec {
    pub module: Option<String>,
    /// `.library("NAME")`, which `module` then is: a bare name is found
    /// among the libraries of the process `process(...)` names.
    pub library_of: Option<Option<String>>,
    pub what: What,
}

#[derive(Clone)]
pub(super) enum What {
    Function {
        name: String,
        instances: Instances,
        is_return: bool,
        suffix: String,
        decl_lines: Option<(u64, u64)>,
    },
    Mark {
        provider: Option<String>,
        name: String,
    },
    /// `.statement("f@file.c:N")`, `.statement(ADDR).absolute`.
    Statement { spec: String, absolute: bool },
    /// `.function("f").callee("g")`, `.callees`: calls f makes.
    Callee { caller: String, callee: String },
    /// `.plt("name")`, `.plt` (every stub).
    Plt { pattern: String, is_return: bool },
}

/// Which instances of a function a point takes (stapprobes(3stap)).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Instances {
    /// `.function("f")`: every copy, inlined ones included.
    All,
    /// `.call`, `.exported`, `.return`: the out-of-line copies.
    OutOfLine,
    /// `.inline`: the inlined copies.
    Inlined,
}

fn string_arg(pt: &ProbePoint, i: usize, what: &str) -> Result<String, Miss> {
    match &pt.components[i].arg {
        Some(Literal::String(s)) => Ok(s.clone()),
        _ => Err(Miss::Invalid(format!("{what} needs a string argument"))),
    }
}

pub(super) fn parse(pt: &ProbePoint) -> Result<Spec, Miss> {
    let c = &pt.components;
    let mut module = match &c[0].arg {
        None | Some(Literal::Number(_)) => None,
        Some(Literal::String(s)) => Some(s.clone()),
    };
    let mut i = 1;
    let mut library_of = None;
    if c.get(i).is_some_and(|c| c.name == "library") {
        library_of = Some(module.take());
        module = Some(string_arg(pt, i, "library")?);
        i += 1;
    }
    let mut provider = None;
    if c.get(i).is_some_and(|c| c.name == "provider") {
        provider = Some(string_arg(pt, i, "provider")?);
        i += 1;
    }
    let Some(kind) = c.get(i) else {
        return Err(Miss::NoMatch(
            "expected .function(\"NAME\") or .mark(\"NAME\") after process(...)".into(),
        ));
    };
    match kind.name.as_str() {
        "function" if provider.is_none() => {}
        "mark" => {
            let name = string_arg(pt, i, "mark")?;
            if let Some(extra) = c.get(i + 1) {
                return Err(Miss::Invalid(format!(
                    ".mark(\"{name}\") takes no .{}",
                    extra.name
                )));
            }
            return Ok(Spec {
                module,
                library_of,
                what: What::Mark { provider, name },
            });
        }
        "statement" => {
            let spec = match &kind.arg {
                Some(Literal::String(s)) => s.clone(),
                Some(Literal::Number(n)) => format!("{:#x}", *n as u64),
                _ => {
                    return Err(Miss::Invalid(
                        "statement needs a \"PATTERN\" or an address".into(),
                    ))
                }
            };
            let mut absolute = false;
            for extra in &c[i + 1..] {
                absolute |= extra.name == "absolute";
                if !matches!(extra.name.as_str(), "absolute" | "nearest") {
                    return Err(Miss::Unserved(format!(
                        ".statement(...).{} is not supported",
                        extra.name
                    )));
                }
            }
            return Ok(Spec {
                module,
                library_of,
                what: What::Statement { spec, absolute },
            });
        }
        "plt" => {
            let pattern = match &kind.arg {
                None => "*".to_string(),
                Some(_) => string_arg(pt, i, "plt")?,
            };
            let mut is_return = false;
            for extra in &c[i + 1..] {
                match extra.name.as_str() {
                    "return" => is_return = true,
                    other => {
                        return Err(Miss::Unserved(format!(
                            ".plt(...).{other} is not supported"
                        )))
                    }
                }
            }
            return Ok(Spec {
                module,
                library_of,
                what: What::Plt { pattern, is_return },
            });
        }
        other => {
            let kinds = [
                "function",
                "statement",
                "mark",
                "provider",
                "plt",
                "begin",
                "end",
            ];
            let near = crate::debuginfo::layout::nearest(other, kinds.into_iter(), 2);
            return Err(Miss::NoMatch(format!(
                "unknown process probe '.{other}' (nearest: {})",
                near.join(", ")
            )));
        }
    }
    let mut function = string_arg(pt, i, "function")?;
    // `f@file.c:N` (or `:N-M`): the functions declared at that line, the
    // form stap's own `pp()` and listings print.
    let mut decl_lines = None;
    if let Some((name, file)) = function.split_once('@') {
        if file.contains('+') {
            return Err(Miss::Unserved(format!(
                "function(\"{function}\"): a line relative to the declaration is not supported; statement(\"{function}\") probes a line"
            )));
        }
        if let Some((file, line)) = file.rsplit_once(':') {
            let (lo, hi) = line.split_once('-').unwrap_or((line, line));
            let (Ok(lo), Ok(hi)) = (lo.parse::<u64>(), hi.parse::<u64>()) else {
                return Err(Miss::Invalid(format!(
                    "function(\"{function}\"): after the file comes a declaration line, N or N-M"
                )));
            };
            decl_lines = Some((lo, hi));
            function = format!("{name}@{file}");
        }
    }
    let mut is_return = false;
    let mut instances = Instances::All;
    if let Some(cc) = c
        .get(i + 1)
        .filter(|cc| cc.name == "callee" || cc.name == "callees")
    {
        let callee = match (cc.name.as_str(), &cc.arg) {
            ("callee", Some(Literal::String(g))) => g.clone(),
            ("callees", None) | ("callees", Some(Literal::Number(1))) => "*".into(),
            ("callees", Some(_)) => {
                return Err(Miss::Unserved(
                    ".callees(N) deeper than 1 is not supported".into(),
                ))
            }
            _ => return Err(Miss::Invalid(".callee needs a \"NAME\"".into())),
        };
        if let Some(extra) = c.get(i + 2) {
            return Err(Miss::Unserved(format!(
                ".{}(...).{} is not supported",
                cc.name, extra.name
            )));
        }
        return Ok(Spec {
            module,
            library_of,
            what: What::Callee {
                caller: function,
                callee,
            },
        });
    }
    let mut written = Vec::new();
    for s in &c[i + 1..] {
        written.push(s.name.as_str());
        match s.name.as_str() {
            "return" => {
                is_return = true;
                instances = Instances::OutOfLine;
            }
            "call" | "exported" => instances = Instances::OutOfLine,
            "inline" => instances = Instances::Inlined,
            other => {
                return Err(Miss::Unserved(format!(
                    ".function(\"{function}\").{other} is not supported yet"
                )))
            }
        }
    }
    if is_return && instances == Instances::Inlined {
        return Err(Miss::Invalid(
            ".inline and .return cannot be combined: an inlined copy has no return".into(),
        ));
    }
    Ok(Spec {
        module,
        library_of,
        what: What::Function {
            name: function,
            instances,
            is_return,
            suffix: ["call", "exported", "inline", "return"]
                .iter()
                .filter(|s| written.contains(s))
                .map(|s| format!(".{s}"))
                .collect(),
            decl_lines,
        },
    })
}
