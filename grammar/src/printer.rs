//! AST -> stap source text, the `-p1` listing.
//!
//! Expressions are printed fully parenthesised where precedence matters, so
//! the listing shows how the parser grouped them.

use crate::ast::*;
use std::fmt::Write;

/// Print a whole file.
pub fn print_file(file: &File) -> String {
    let mut p = Printer::default();
    for item in &file.items {
        p.item(item);
    }
    p.out
}

/// Print one expression.
pub fn print_expr(e: &Expr) -> String {
    let mut p = Printer::default();
    p.expr(e);
    p.out
}

#[derive(Default)]
struct Printer {
    out: String,
    indent: usize,
}

impl Printer {
    fn line(&mut self, s: &str) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Probe(p) => {
                let head = format!("{}probe {}", private(p.private), points(&p.points));
                self.block_with_head(&head, &p.body);
            }
            Item::Alias(a) => {
                let op = if a.prologue.is_none() { "+=" } else { "=" };
                let head = format!(
                    "{}probe {} {} {}",
                    private(a.private),
                    points(&a.names),
                    op,
                    points(&a.points)
                );
                match (&a.prologue, &a.epilogue) {
                    (Some(pro), Some(epi)) => {
                        self.block_with_head(&head, pro);
                        self.block_with_head(",", epi);
                    }
                    (Some(b), None) | (None, Some(b)) => self.block_with_head(&head, b),
                    (None, None) => self.line(&format!("{head} {{ }}")),
                }
            }
            Item::Function(f) => {
                let params: Vec<String> = f
                    .params
                    .iter()
                    .map(|p| format!("{}{}", p.name, type_suffix(p.ty)))
                    .collect();
                let head = format!(
                    "{}function {}{} ({})",
                    private(f.private),
                    f.name,
                    type_suffix(f.ret),
                    params.join(", ")
                );
                match &f.body {
                    FunctionBody::Script(b) => self.block_with_head(&head, b),
                    FunctionBody::Embedded(e) => self.line(&format!("{head} %{{{}%}}", e.code)),
                }
            }
            Item::Global(g) => {
                let mut s = format!("{}global {}", private(g.private), g.name);
                if g.array {
                    match g.size {
                        Some(n) => write!(s, "[{n}]").ok(),
                        None => write!(s, "[]").ok(),
                    };
                }
                if g.wrap {
                    s.push('%');
                }
                if let Some(init) = &g.init {
                    write!(s, " = {}", literal(init)).ok();
                }
                self.line(&s);
            }
            Item::Embedded(e) => self.line(&format!("%{{{}%}}", e.code)),
        }
    }

    fn block_with_head(&mut self, head: &str, body: &Block) {
        if head.is_empty() {
            self.line("{");
        } else {
            self.line(&format!("{head} {{"));
        }
        self.indent += 1;
        for s in &body.stmts {
            self.stmt(s);
        }
        self.indent -= 1;
        self.line("}");
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Block(b) => self.block_with_head("", b),
            StmtKind::Expr(e) => {
                let t = print_expr(e);
                self.line(&t);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.line(&format!("if ({})", print_expr(cond)));
                self.nested(then);
                if let Some(o) = otherwise {
                    self.line("else");
                    self.nested(o);
                }
            }
            StmtKind::While { cond, body } => {
                self.line(&format!("while ({})", print_expr(cond)));
                self.nested(body);
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                let o = |e: &Option<Expr>| e.as_ref().map(print_expr).unwrap_or_default();
                self.line(&format!("for ({}; {}; {})", o(init), o(cond), o(step)));
                self.nested(body);
            }
            StmtKind::Foreach(f) => {
                let mut h = String::from("foreach (");
                if let Some(v) = &f.value {
                    write!(h, "{v} = ").ok();
                }
                let keys: Vec<String> = f
                    .keys
                    .iter()
                    .map(|k| format!("{}{}", k.name, sort(k.sort)))
                    .collect();
                let agg = f
                    .value_agg
                    .as_ref()
                    .map(|a| format!(" @{a}"))
                    .unwrap_or_default();
                write!(
                    h,
                    "[{}] in {}{agg}{}",
                    keys.join(", "),
                    print_expr(&f.array),
                    sort(f.value_sort)
                )
                .ok();
                if let Some(l) = &f.limit {
                    write!(h, " limit {}", print_expr(l)).ok();
                }
                h.push(')');
                self.line(&h);
                self.nested(&f.body);
            }
            StmtKind::Delete(e) => self.line(&format!("delete {}", print_expr(e))),
            StmtKind::Next => self.line("next"),
            StmtKind::Break => self.line("break"),
            StmtKind::Continue => self.line("continue"),
            StmtKind::Return(None) => self.line("return"),
            StmtKind::Return(Some(e)) => self.line(&format!("return {}", print_expr(e))),
            StmtKind::Try { body, var, handler } => {
                self.block_with_head("try", body);
                let head = match var {
                    Some(v) => format!("catch ({v})"),
                    None => "catch".into(),
                };
                self.block_with_head(&head, handler);
            }
            StmtKind::Embedded(e) => self.line(&format!("%{{{}%}}", e.code)),
            StmtKind::Empty => self.line(";"),
        }
    }

    fn nested(&mut self, s: &Stmt) {
        if let StmtKind::Block(b) = &s.kind {
            self.block_with_head("", b);
        } else {
            self.indent += 1;
            self.stmt(s);
            self.indent -= 1;
        }
    }

    fn expr(&mut self, e: &Expr) {
        let s = expr_text(e);
        self.out.push_str(&s);
    }
}

fn private(p: bool) -> &'static str {
    if p {
        "private "
    } else {
        ""
    }
}

fn type_suffix(t: Option<TypeName>) -> &'static str {
    match t {
        None => "",
        Some(TypeName::Long) => ":long",
        Some(TypeName::String) => ":string",
    }
}

fn sort(s: Option<SortDir>) -> &'static str {
    match s {
        None => "",
        Some(SortDir::Asc) => "+",
        Some(SortDir::Desc) => "-",
    }
}

fn points(pts: &[ProbePoint]) -> String {
    pts.iter().map(point).collect::<Vec<_>>().join(", ")
}

/// A probe point as written: `kernel.function("f").return?`.
pub fn point(p: &ProbePoint) -> String {
    let mut s = p
        .components
        .iter()
        .map(|c| match &c.arg {
            Some(a) => format!("{}({})", c.name, literal(a)),
            None => c.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(".");
    if p.optional {
        s.push('?');
    }
    if p.sufficient {
        s.push('!');
    }
    if let Some(c) = &p.condition {
        write!(s, " if ({})", expr_text(c)).ok();
    }
    s
}

fn literal(l: &Literal) -> String {
    match l {
        Literal::Number(n) => n.to_string(),
        Literal::String(s) => quote(s),
    }
}

/// A string literal with stap escapes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                write!(out, "\\{:03o}", c as u32).ok();
            }
            c if crate::bytes::char_byte(c).is_some() => {
                write!(out, "\\{:03o}", crate::bytes::char_byte(c).unwrap_or(0)).ok();
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn args(a: &[Expr]) -> String {
    a.iter().map(expr_text).collect::<Vec<_>>().join(", ")
}

fn expr_text(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Number(n) => n.to_string(),
        ExprKind::String(s) => quote(s),
        ExprKind::Var(v) => v.clone(),
        ExprKind::Index { base, keys } => format!("{}[{}]", expr_text(base), args(keys)),
        ExprKind::Wildcard => "*".into(),
        ExprKind::Call { name, args: a } => format!("{name}({})", args(a)),
        ExprKind::Unary { op, operand } => {
            let o = match op {
                UnOp::Not => "!",
                UnOp::BitNot => "~",
                UnOp::Neg => "-",
                UnOp::Plus => "+",
            };
            format!("{o}({})", expr_text(operand))
        }
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", expr_text(lhs), op.as_str(), expr_text(rhs))
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => format!(
            "({} ? {} : {})",
            expr_text(cond),
            expr_text(then),
            expr_text(otherwise)
        ),
        ExprKind::Assign { op, lhs, rhs } => {
            let o = match op {
                AssignOp::Assign => "=".to_string(),
                AssignOp::StatAdd => "<<<".to_string(),
                AssignOp::Op(b) => format!("{}=", b.as_str()),
            };
            format!("{} {} {}", expr_text(lhs), o, expr_text(rhs))
        }
        ExprKind::PreCrement { increment, operand } => {
            format!(
                "{}{}",
                if *increment { "++" } else { "--" },
                expr_text(operand)
            )
        }
        ExprKind::PostCrement { increment, operand } => {
            format!(
                "{}{}",
                expr_text(operand),
                if *increment { "++" } else { "--" }
            )
        }
        ExprKind::In { keys, array } => {
            if keys.len() == 1 {
                format!("({} in {})", expr_text(&keys[0]), expr_text(array))
            } else {
                format!("([{}] in {})", args(keys), expr_text(array))
            }
        }
        ExprKind::Dwarf(d) => dwarf_text(d),
        ExprKind::AddrOf(inner) => format!("&{}", expr_text(inner)),
        ExprKind::Defined(inner) => format!("@defined({})", expr_text(inner)),
        ExprKind::Entry(inner) => format!("@entry({})", expr_text(inner)),
        ExprKind::Perf(s) => format!("@perf({})", quote(s)),
        ExprKind::Const(s) => format!("@const({})", quote(s)),
        ExprKind::Stat {
            op,
            operand,
            args: a,
        } => {
            if a.is_empty() {
                format!("@{}({})", op.name(), expr_text(operand))
            } else {
                format!("@{}({}, {})", op.name(), expr_text(operand), args(a))
            }
        }
        ExprKind::AtCall { name, args: a } => format!("@{name}({})", args(a)),
        ExprKind::Embedded(code) => format!("%{{{code}%}}"),
    }
}

fn dwarf_text(d: &DwarfValue) -> String {
    let mut s = match &d.base {
        DwarfBase::Target(n) => format!("${n}"),
        DwarfBase::Cast { addr, ty, module } => match module {
            Some(m) => format!("@cast({}, {}, {})", expr_text(addr), quote(ty), quote(m)),
            None => format!("@cast({}, {})", expr_text(addr), quote(ty)),
        },
        DwarfBase::Var { name, module } => match module {
            Some(m) => format!("@var({}, {})", quote(name), quote(m)),
            None => format!("@var({})", quote(name)),
        },
        DwarfBase::Autocast(e) => expr_text(e),
    };
    for step in &d.chain {
        match step {
            Deref::Member { name, .. } => write!(s, "->{name}").ok(),
            Deref::Index(e) => write!(s, "[{}]", expr_text(e)).ok(),
        };
    }
    for _ in 0..d.pretty {
        s.push('$');
    }
    s
}
