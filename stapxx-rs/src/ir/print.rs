//! The `-p3` IR listing, and walkers over IR trees.

use super::*;
use std::fmt::Write;

/// Call `f` on every expression under `s`, outermost first.
/// Whether any function or probe handler of `p` calls a builtin that
/// `pred` accepts.
pub fn uses_builtin(p: &Program, pred: impl Fn(Builtin) -> bool) -> bool {
    let mut found = false;
    let mut visit = |e: &Expr| {
        if let ExprKind::Builtin(b, _) = &e.kind {
            found |= pred(*b);
        }
    };
    let bodies = p
        .functions
        .iter()
        .map(|f| &f.body)
        .chain(p.probes.iter().map(|pr| &pr.body));
    for s in bodies.flatten() {
        walk_stmt(s, &mut visit);
    }
    found
}

pub fn walk_stmt(s: &Stmt, f: &mut dyn FnMut(&Expr)) {
    match &s.kind {
        StmtKind::Expr(e) => walk_expr(e, f),
        StmtKind::Block(b) => b.iter().for_each(|s| walk_stmt(s, f)),
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            walk_expr(cond, f);
            then.iter().chain(otherwise).for_each(|s| walk_stmt(s, f));
        }
        StmtKind::Loop { cond, body, step } => {
            cond.iter().chain(step).for_each(|e| walk_expr(e, f));
            body.iter().for_each(|s| walk_stmt(s, f));
        }
        StmtKind::Foreach(fe) => {
            fe.limit.iter().for_each(|e| walk_expr(e, f));
            fe.body.iter().for_each(|s| walk_stmt(s, f));
        }
        StmtKind::Delete(p) => walk_place(p, f),
        StmtKind::Return(Some(e)) => walk_expr(e, f),
        StmtKind::Try { body, handler, .. } => {
            body.iter().chain(handler).for_each(|s| walk_stmt(s, f))
        }
        _ => {}
    }
}

fn walk_place(p: &Place, f: &mut dyn FnMut(&Expr)) {
    if let Place::Elem(_, keys) = p {
        keys.iter().for_each(|k| walk_expr(k, f));
    }
}

pub fn walk_expr(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match &e.kind {
        ExprKind::Read(p) => walk_place(p, f),
        ExprKind::Exists(_, ks) | ExprKind::Call(_, ks) | ExprKind::Builtin(_, ks) => {
            ks.iter().for_each(|k| walk_expr(k, f))
        }
        ExprKind::Format { args, .. } => args.iter().for_each(|k| walk_expr(k, f)),
        ExprKind::Neg(a) | ExprKind::BitNot(a) | ExprKind::Not(a) => walk_expr(a, f),
        ExprKind::Regex { subject, .. } => walk_expr(subject, f),
        ExprKind::Arith(_, a, b)
        | ExprKind::Cmp(_, a, b)
        | ExprKind::Concat(a, b)
        | ExprKind::And(a, b)
        | ExprKind::Or(a, b) => {
            walk_expr(a, f);
            walk_expr(b, f);
        }
        ExprKind::Cond(a, b, c) => {
            walk_expr(a, f);
            walk_expr(b, f);
            walk_expr(c, f);
        }
        ExprKind::Assign(p, v)
        | ExprKind::AssignOp(p, _, v)
        | ExprKind::AppendStr(p, v)
        | ExprKind::StatAdd(p, v) => {
            walk_place(p, f);
            walk_expr(v, f);
        }
        ExprKind::Crement { place, .. } | ExprKind::StatGet { place, .. } => walk_place(place, f),
        ExprKind::Long(_) | ExprKind::Str(_) => {}
    }
}

/// The whole program as text.
pub fn print_program(p: &Program) -> String {
    let mut out = String::new();
    for (i, g) in p.globals.iter().enumerate() {
        let keys = if g.keys.is_empty() {
            String::new()
        } else {
            format!(
                "[{}]",
                g.keys
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = writeln!(out, "global g{i} {}{keys}: {}", g.name, g.ty.name());
    }
    for (i, f) in p.functions.iter().enumerate() {
        let params: Vec<String> = f.locals[..f.params]
            .iter()
            .enumerate()
            .map(|(j, l)| format!("l{j} {}: {}", l.name, l.ty.name()))
            .collect();
        let ret = f.ret.map(|t| t.name()).unwrap_or("void");
        let _ = writeln!(
            out,
            "function f{i} {}({}) -> {ret}",
            f.name,
            params.join(", ")
        );
        locals(&mut out, &f.locals[f.params..], f.params);
        block(&mut out, &f.body, 1, p);
    }
    for pr in &p.probes {
        let mut pts: Vec<&str> = Vec::new();
        for s in &pr.sites {
            if !pts.contains(&s.point.as_str()) {
                pts.push(&s.point);
            }
        }
        let _ = writeln!(out, "probe {} [{:?}]", pts.join(", "), pr.exec);
        locals(&mut out, &pr.locals, 0);
        block(&mut out, &pr.body, 1, p);
    }
    out
}

fn locals(out: &mut String, ls: &[Local], first: usize) {
    for (j, l) in ls.iter().enumerate() {
        let _ = writeln!(out, "  local l{} {}: {}", j + first, l.name, l.ty.name());
    }
}

fn block(out: &mut String, b: &[Stmt], ind: usize, p: &Program) {
    for s in b {
        stmt(out, s, ind, p);
    }
}

fn stmt(out: &mut String, s: &Stmt, ind: usize, p: &Program) {
    let pad = "  ".repeat(ind);
    match &s.kind {
        StmtKind::Expr(e) => {
            let _ = writeln!(out, "{pad}{}", expr(e, p));
        }
        StmtKind::Block(b) => {
            let _ = writeln!(out, "{pad}{{");
            block(out, b, ind + 1, p);
            let _ = writeln!(out, "{pad}}}");
        }
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            let _ = writeln!(out, "{pad}if {}", expr(cond, p));
            block(out, then, ind + 1, p);
            if !otherwise.is_empty() {
                let _ = writeln!(out, "{pad}else");
                block(out, otherwise, ind + 1, p);
            }
        }
        StmtKind::Loop { cond, body, step } => {
            let c = cond
                .as_ref()
                .map(|c| expr(c, p))
                .unwrap_or_else(|| "1".into());
            let st = step
                .as_ref()
                .map(|c| format!(" step {}", expr(c, p)))
                .unwrap_or_default();
            let _ = writeln!(out, "{pad}loop while {c}{st}");
            block(out, body, ind + 1, p);
        }
        StmtKind::Foreach(f) => {
            let keys: Vec<String> = f.keys.iter().map(|k| format!("l{}", k.0)).collect();
            let val = f
                .value
                .map(|v| format!(" value l{}", v.0))
                .unwrap_or_default();
            let sort = match f.sort {
                None => String::new(),
                Some((usize::MAX, d)) => format!(" sort value {d:?}"),
                Some((i, d)) => format!(" sort key{i} {d:?}"),
            };
            let lim = f
                .limit
                .as_ref()
                .map(|l| format!(" limit {}", expr(l, p)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{pad}foreach [{}]{val} in g{}{sort}{lim}",
                keys.join(", "),
                f.array.0
            );
            block(out, &f.body, ind + 1, p);
        }
        StmtKind::Delete(pl) => {
            let _ = writeln!(out, "{pad}delete {}", place(pl, p));
        }
        StmtKind::DeleteArray(g) => {
            let _ = writeln!(out, "{pad}delete g{}", g.0);
        }
        StmtKind::Next => {
            let _ = writeln!(out, "{pad}next");
        }
        StmtKind::Break => {
            let _ = writeln!(out, "{pad}break");
        }
        StmtKind::Continue => {
            let _ = writeln!(out, "{pad}continue");
        }
        StmtKind::Return(e) => {
            let v = e
                .as_ref()
                .map(|e| format!(" {}", expr(e, p)))
                .unwrap_or_default();
            let _ = writeln!(out, "{pad}return{v}");
        }
        StmtKind::Try { body, var, handler } => {
            let _ = writeln!(out, "{pad}try");
            block(out, body, ind + 1, p);
            let v = var.map(|v| format!(" l{}", v.0)).unwrap_or_default();
            let _ = writeln!(out, "{pad}catch{v}");
            block(out, handler, ind + 1, p);
        }
    }
}

fn place(pl: &Place, p: &Program) -> String {
    match pl {
        Place::Local(l) => format!("l{}", l.0),
        Place::Global(g) => format!("g{}", g.0),
        Place::Elem(g, keys) => format!(
            "g{}[{}]",
            g.0,
            keys.iter()
                .map(|k| expr(k, p))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn expr(e: &Expr, p: &Program) -> String {
    let t = |x: &Expr| expr(x, p);
    match &e.kind {
        ExprKind::Long(n) => n.to_string(),
        ExprKind::Str(s) => grammar::printer::quote(s),
        ExprKind::Read(pl) => place(pl, p),
        ExprKind::Exists(g, ks) => format!(
            "exists g{}[{}]",
            g.0,
            ks.iter().map(t).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Call(f, args) => format!(
            "call {}({})",
            p.functions[f.0 as usize].name,
            args.iter().map(t).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Builtin(b, args) => format!(
            "{b:?}({})",
            args.iter().map(t).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Neg(a) => format!("-{}", t(a)),
        ExprKind::BitNot(a) => format!("~{}", t(a)),
        ExprKind::Not(a) => format!("!{}", t(a)),
        ExprKind::Arith(op, a, b) => format!("({} {op:?} {})", t(a), t(b)),
        ExprKind::Cmp(op, a, b) => {
            let kind = if a.ty == Ty::Str { "str" } else { "long" };
            format!("({} {op:?}.{kind} {})", t(a), t(b))
        }
        ExprKind::Regex {
            subject,
            pattern,
            negate,
        } => {
            format!(
                "({} {} {})",
                t(subject),
                if *negate { "!~" } else { "=~" },
                grammar::printer::quote(pattern)
            )
        }
        ExprKind::Concat(a, b) => format!("({} . {})", t(a), t(b)),
        ExprKind::And(a, b) => format!("({} && {})", t(a), t(b)),
        ExprKind::Or(a, b) => format!("({} || {})", t(a), t(b)),
        ExprKind::Cond(a, b, c) => format!("({} ? {} : {})", t(a), t(b), t(c)),
        ExprKind::Assign(pl, v) => format!("{} = {}", place(pl, p), t(v)),
        ExprKind::AssignOp(pl, op, v) => format!("{} {op:?}= {}", place(pl, p), t(v)),
        ExprKind::AppendStr(pl, v) => format!("{} .= {}", place(pl, p), t(v)),
        ExprKind::Crement {
            place: pl,
            delta,
            post,
        } => {
            let d = if *delta > 0 { "++" } else { "--" };
            if *post {
                format!("{}{d}", place(pl, p))
            } else {
                format!("{d}{}", place(pl, p))
            }
        }
        ExprKind::StatAdd(pl, v) => format!("{} <<< {}", place(pl, p), t(v)),
        ExprKind::StatGet {
            op,
            place: pl,
            args,
        } => {
            if args.is_empty() {
                format!("@{}({})", op.name(), place(pl, p))
            } else {
                format!("@{}({}, {args:?})", op.name(), place(pl, p))
            }
        }
        ExprKind::Format { fmt, args } => format!(
            "format({}{})",
            grammar::printer::quote(fmt),
            args.iter()
                .map(|a| format!(", {}", t(a)))
                .collect::<String>()
        ),
    }
}
