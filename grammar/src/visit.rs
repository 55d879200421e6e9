//! Read-only walks over the syntax tree: every expression under a block,
//! outermost first. Passes that only need to *find* things (the tapset
//! library's "which names does this file use", reachability checks) use
//! these instead of each writing its own traversal.

use crate::ast::*;

/// Call `f` on every expression under `b`, outermost first.
pub fn walk_block(b: &Block, f: &mut dyn FnMut(&Expr)) {
    for s in &b.stmts {
        walk_stmt(s, f);
    }
}

pub fn walk_stmt(s: &Stmt, f: &mut dyn FnMut(&Expr)) {
    match &s.kind {
        StmtKind::Block(b) => walk_block(b, f),
        StmtKind::Expr(e) | StmtKind::Delete(e) | StmtKind::Return(Some(e)) => walk_expr(e, f),
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            walk_expr(cond, f);
            walk_stmt(then, f);
            if let Some(o) = otherwise {
                walk_stmt(o, f);
            }
        }
        StmtKind::While { cond, body } => {
            walk_expr(cond, f);
            walk_stmt(body, f);
        }
        StmtKind::For {
            init,
            cond,
            step,
            body,
        } => {
            for e in [init, cond, step].into_iter().flatten() {
                walk_expr(e, f);
            }
            walk_stmt(body, f);
        }
        StmtKind::Foreach(fe) => {
            walk_expr(&fe.array, f);
            if let Some(l) = &fe.limit {
                walk_expr(l, f);
            }
            walk_stmt(&fe.body, f);
        }
        StmtKind::Try { body, handler, .. } => {
            walk_block(body, f);
            walk_block(handler, f);
        }
        StmtKind::Return(None)
        | StmtKind::Next
        | StmtKind::Break
        | StmtKind::Continue
        | StmtKind::Embedded(_)
        | StmtKind::Empty => {}
    }
}

pub fn walk_expr(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match &e.kind {
        ExprKind::Index { base, keys } => {
            walk_expr(base, f);
            keys.iter().for_each(|k| walk_expr(k, f));
        }
        ExprKind::Call { args, .. } | ExprKind::AtCall { args, .. } => {
            args.iter().for_each(|a| walk_expr(a, f))
        }
        ExprKind::Unary { operand, .. }
        | ExprKind::PreCrement { operand, .. }
        | ExprKind::PostCrement { operand, .. } => walk_expr(operand, f),
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Assign { lhs, rhs, .. } => {
            walk_expr(lhs, f);
            walk_expr(rhs, f);
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            walk_expr(cond, f);
            walk_expr(then, f);
            walk_expr(otherwise, f);
        }
        ExprKind::In { keys, array } => {
            keys.iter().for_each(|k| walk_expr(k, f));
            walk_expr(array, f);
        }
        ExprKind::Dwarf(d) => {
            match &d.base {
                DwarfBase::Cast { addr, .. } => walk_expr(addr, f),
                DwarfBase::Autocast(inner) => walk_expr(inner, f),
                DwarfBase::Target(_) | DwarfBase::Var { .. } => {}
            }
            for step in &d.chain {
                if let Deref::Index(i) = step {
                    walk_expr(i, f);
                }
            }
        }
        ExprKind::AddrOf(a) | ExprKind::Defined(a) | ExprKind::Entry(a) => walk_expr(a, f),
        ExprKind::Stat { operand, args, .. } => {
            walk_expr(operand, f);
            args.iter().for_each(|a| walk_expr(a, f));
        }
        ExprKind::Number(_)
        | ExprKind::String(_)
        | ExprKind::Var(_)
        | ExprKind::Wildcard
        | ExprKind::Perf(_)
        | ExprKind::Const(_)
        | ExprKind::Embedded(_) => {}
    }
}

/// Every expression of one top-level item: a probe's or alias's bodies and
/// point conditions, a function's body, a global's nothing.
pub fn walk_item(item: &Item, f: &mut dyn FnMut(&Expr)) {
    let points = |pts: &[ProbePoint], f: &mut dyn FnMut(&Expr)| {
        for p in pts {
            if let Some(c) = &p.condition {
                walk_expr(c, f);
            }
        }
    };
    match item {
        Item::Probe(p) => {
            points(&p.points, f);
            walk_block(&p.body, f);
        }
        Item::Alias(a) => {
            points(&a.points, f);
            for b in a.prologue.iter().chain(&a.epilogue) {
                walk_block(b, f);
            }
        }
        Item::Function(func) => {
            if let FunctionBody::Script(b) = &func.body {
                walk_block(b, f);
            }
        }
        Item::Global(_) | Item::Embedded(_) => {}
    }
}

/// The variables a `foreach` (keys, value) or `catch (msg)` binds under
/// `b`: locals, whatever globals exist.
pub fn bound_names(b: &Block, out: &mut std::collections::HashSet<String>) {
    fn stmt(s: &Stmt, out: &mut std::collections::HashSet<String>) {
        match &s.kind {
            StmtKind::Block(b) => bound_names(b, out),
            StmtKind::If {
                then, otherwise, ..
            } => {
                stmt(then, out);
                if let Some(o) = otherwise {
                    stmt(o, out);
                }
            }
            StmtKind::While { body, .. } | StmtKind::For { body, .. } => stmt(body, out),
            StmtKind::Foreach(fe) => {
                out.extend(fe.value.iter().cloned());
                out.extend(fe.keys.iter().map(|k| k.name.clone()));
                stmt(&fe.body, out);
            }
            StmtKind::Try { body, var, handler } => {
                out.extend(var.iter().cloned());
                bound_names(body, out);
                bound_names(handler, out);
            }
            _ => {}
        }
    }
    for s in &b.stmts {
        stmt(s, out);
    }
}
