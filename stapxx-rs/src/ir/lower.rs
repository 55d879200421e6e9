//! Resolved AST -> typed [`ir`](super) program.
//!
//! Types are inferred by running the lowering to a fixed point: each round
//! lowers everything with what is known and fills in type slots; when a
//! round learns nothing new, a last strict round turns any still-unknown
//! slot into an error. Scripts are small, so rounds are cheap.

use super::types::{parse_format, unify, FormatPiece, Slot};
use super::*;
use crate::resolve::Resolved;
use grammar::ast::{self, AssignOp, BinOp, UnOp};
use grammar::Diagnostic;
use std::collections::HashMap;

type R<T> = Result<T, Diagnostic>;

/// Lower a resolved program to IR, inferring every type.
pub fn lower(res: &Resolved) -> R<Program> {
    let mut l = Lowering::new(res);
    for _ in 0..32 {
        l.changed = false;
        l.round()?;
        if !l.changed {
            break;
        }
    }
    l.strict = true;
    let program = l.round()?;
    check_recursion(&program)?;
    Ok(program)
}

struct GInfo {
    decl: ast::Global,
    ty: Slot,
    /// `Some` once the global is used as an array.
    keys: Option<Vec<Slot>>,
}

struct FInfo {
    func: ast::Function,
    ret: Slot,
    /// Parameters first, then locals as they are met.
    locals: Vec<(String, Slot)>,
}

/// Which type slot a place stands for.
#[derive(Clone, Copy)]
enum SlotRef {
    Local(usize),
    Global(usize),
    Elem(usize),
}

struct Ctx {
    /// Function being lowered (its locals live in `FInfo`), or a probe's index.
    func: Option<usize>,
    probe: usize,
    /// How many loops enclose the statement being lowered: `break` and
    /// `continue` need one, in host and kernel handlers alike.
    loops: u32,
}

struct Lowering<'a> {
    res: &'a Resolved,
    globals: Vec<GInfo>,
    gindex: HashMap<String, usize>,
    funcs: Vec<FInfo>,
    findex: HashMap<String, usize>,
    probe_locals: Vec<Vec<(String, Slot)>>,
    changed: bool,
    strict: bool,
}

impl<'a> Lowering<'a> {
    fn new(res: &'a Resolved) -> Lowering<'a> {
        let mut gindex = HashMap::new();
        let globals = res
            .globals
            .iter()
            .enumerate()
            .map(|(i, g)| {
                gindex.insert(g.name.clone(), i);
                let ty = match &g.init {
                    Some(ast::Literal::String(_)) => Some(Ty::Str),
                    Some(_) => Some(Ty::Long),
                    None => None,
                };
                GInfo {
                    decl: g.clone(),
                    ty,
                    keys: g.array.then(Vec::new),
                }
            })
            .collect();
        let mut findex = HashMap::new();
        let funcs = res
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| {
                findex.insert(f.name.clone(), i);
                FInfo {
                    func: f.clone(),
                    ret: f.ret.map(ty_of),
                    locals: f
                        .params
                        .iter()
                        .map(|p| (p.name.clone(), p.ty.map(ty_of)))
                        .collect(),
                }
            })
            .collect();
        Lowering {
            res,
            globals,
            gindex,
            funcs,
            findex,
            probe_locals: vec![Vec::new(); res.probes.len()],
            changed: false,
            strict: false,
        }
    }

    fn round(&mut self) -> R<Program> {
        let mut functions = Vec::new();
        for fi in 0..self.funcs.len() {
            let func = self.funcs[fi].func.clone();
            let mut cx = Ctx {
                func: Some(fi),
                probe: 0,
                loops: 0,
            };
            let body = match &func.body {
                ast::FunctionBody::Script(b) => self.block(&mut cx, b)?,
                ast::FunctionBody::Embedded(_) => Vec::new(),
            };
            let f = &self.funcs[fi];
            let locals = self.finish_locals(&f.locals, func.span)?;
            functions.push(Function {
                name: func.name.clone(),
                params: func.params.len(),
                locals,
                ret: f.ret,
                body,
                span: func.span,
            });
        }
        let mut probes = Vec::new();
        for (pi, p) in self.res.probes.iter().enumerate() {
            let mut cx = Ctx {
                func: None,
                probe: pi,
                loops: 0,
            };
            let body = self.block(&mut cx, &p.body)?;
            let locals = self.finish_locals(&self.probe_locals[pi], p.span)?;
            probes.push(ProbeHandler {
                pp: p.sites.first().map(|s| s.pp()).unwrap_or_default(),
                exec: exec_of(&p.sites),
                sites: p.sites.clone(),
                locals,
                body,
                span: p.span,
            });
        }
        let mut globals = Vec::new();
        for g in &self.globals {
            let ty = self.known(g.ty, &format!("global '{}'", g.decl.name), g.decl.span)?;
            // `global a[N]` sizes a kernel map as MAXMAPENTRIES does: the
            // same bound (and no silent truncation to 32 bits).
            let max = crate::limits::limit("MAXMAPENTRIES").map_or(0, |l| l.max);
            if let Some(n) = g.decl.size.filter(|&n| n > max as i64) {
                return Err(Diagnostic::error(
                    g.decl.span,
                    format!(
                        "array '{}' is declared with {n} entries, more than the {max} an array may have",
                        g.decl.name
                    ),
                ));
            }
            let keys = match &g.keys {
                None => Vec::new(),
                Some(k) => {
                    if k.is_empty() && self.strict {
                        return Err(Diagnostic::error(
                            g.decl.span,
                            format!(
                                "array '{}' is never indexed, so its key types are unknown",
                                g.decl.name
                            ),
                        ));
                    }
                    let mut out = Vec::new();
                    for s in k {
                        out.push(self.known(
                            *s,
                            &format!("a key of array '{}'", g.decl.name),
                            g.decl.span,
                        )?);
                    }
                    out
                }
            };
            globals.push(GlobalVar {
                name: g.decl.name.clone(),
                ty,
                keys,
                size: g.decl.size,
                wrap: g.decl.wrap,
                init: g.decl.init.as_ref().map(|l| match l {
                    ast::Literal::Number(n) => Const::Long(*n),
                    ast::Literal::String(s) => Const::Str(s.clone()),
                }),
                span: g.decl.span,
            });
        }
        Ok(Program {
            globals,
            functions,
            probes,
        })
    }

    fn known(&self, s: Slot, what: &str, span: Span) -> R<Ty> {
        match s {
            Some(t) => Ok(t),
            None if self.strict => Err(Diagnostic::error(
                span,
                format!("unresolved type: nothing says whether {what} is a long or a string"),
            )),
            None => Ok(Ty::Long),
        }
    }

    fn finish_locals(&self, locals: &[(String, Slot)], span: Span) -> R<Vec<Local>> {
        locals
            .iter()
            .map(|(n, t)| {
                Ok(Local {
                    name: n.clone(),
                    // A local nothing types is never used as a value: long.
                    ty: t.unwrap_or(Ty::Long),
                })
            })
            .inspect(|_: &R<Local>| {
                let _ = span;
            })
            .collect()
    }

    // ------------------------------------------------------------ slots

    fn locals_mut(&mut self, cx: &Ctx) -> &mut Vec<(String, Slot)> {
        match cx.func {
            Some(f) => &mut self.funcs[f].locals,
            None => &mut self.probe_locals[cx.probe],
        }
    }

    fn local(&mut self, cx: &Ctx, name: &str) -> usize {
        let locals = self.locals_mut(cx);
        if let Some(i) = locals.iter().position(|(n, _)| n == name) {
            return i;
        }
        locals.push((name.to_string(), None));
        locals.len() - 1
    }

    fn slot(&mut self, cx: &Ctx, r: SlotRef) -> &mut Slot {
        match r {
            SlotRef::Local(i) => &mut self.locals_mut(cx)[i].1,
            SlotRef::Global(g) | SlotRef::Elem(g) => &mut self.globals[g].ty,
        }
    }

    fn unify_ref(&mut self, cx: &Ctx, r: SlotRef, t: Slot, what: &str, span: Span) -> R<()> {
        let changed = unify(self.slot(cx, r), t, what, span)?;
        self.changed |= changed;
        Ok(())
    }

    fn unify_slot(&mut self, s: &mut Slot, t: Slot, what: &str, span: Span) -> R<()> {
        let changed = unify(s, t, what, span)?;
        self.changed |= changed;
        Ok(())
    }

    // ------------------------------------------------------------ statements

    fn block(&mut self, cx: &mut Ctx, b: &ast::Block) -> R<Vec<Stmt>> {
        b.stmts.iter().map(|s| self.stmt(cx, s)).collect()
    }

    fn body(&mut self, cx: &mut Ctx, s: &ast::Stmt) -> R<Vec<Stmt>> {
        match &s.kind {
            ast::StmtKind::Block(b) => self.block(cx, b),
            _ => Ok(vec![self.stmt(cx, s)?]),
        }
    }

    /// A loop's body: `break`/`continue` may stand in it.
    fn loop_body(&mut self, cx: &mut Ctx, s: &ast::Stmt) -> R<Vec<Stmt>> {
        cx.loops += 1;
        let body = self.body(cx, s);
        cx.loops -= 1;
        body
    }

    fn stmt(&mut self, cx: &mut Ctx, s: &ast::Stmt) -> R<Stmt> {
        let span = s.span;
        let kind = match &s.kind {
            ast::StmtKind::Block(b) => StmtKind::Block(self.block(cx, b)?),
            ast::StmtKind::Expr(e) => StmtKind::Expr(self.expr(cx, e, None)?.0),
            ast::StmtKind::If {
                cond,
                then,
                otherwise,
            } => StmtKind::If {
                cond: self.cond(cx, cond)?,
                then: self.body(cx, then)?,
                otherwise: match otherwise {
                    Some(o) => self.body(cx, o)?,
                    None => Vec::new(),
                },
            },
            ast::StmtKind::While { cond, body } => StmtKind::Loop {
                cond: Some(self.cond(cx, cond)?),
                body: self.loop_body(cx, body)?,
                step: None,
            },
            ast::StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                let init = match init {
                    Some(e) => Some(self.expr(cx, e, None)?.0),
                    None => None,
                };
                let lp = Stmt {
                    kind: StmtKind::Loop {
                        cond: match cond {
                            Some(c) => Some(self.cond(cx, c)?),
                            None => None,
                        },
                        body: self.loop_body(cx, body)?,
                        step: match step {
                            Some(e) => Some(self.expr(cx, e, None)?.0),
                            None => None,
                        },
                    },
                    span,
                };
                match init {
                    Some(i) => StmtKind::Block(vec![
                        Stmt {
                            kind: StmtKind::Expr(i),
                            span,
                        },
                        lp,
                    ]),
                    None => lp.kind,
                }
            }
            ast::StmtKind::Foreach(f) => StmtKind::Foreach(Box::new(self.foreach(cx, f, span)?)),
            ast::StmtKind::Delete(e) => match &e.kind {
                ast::ExprKind::Var(name) if self.gindex.contains_key(name) => {
                    let g = self.gindex[name];
                    if self.globals[g].keys.is_some() {
                        StmtKind::DeleteArray(GlobalId(g as u32))
                    } else {
                        StmtKind::Delete(Place::Global(GlobalId(g as u32)))
                    }
                }
                _ => {
                    let (place, _) = self.place(cx, e)?;
                    StmtKind::Delete(place)
                }
            },
            ast::StmtKind::Next => StmtKind::Next,
            ast::StmtKind::Break | ast::StmtKind::Continue if cx.loops == 0 => {
                let which = if matches!(s.kind, ast::StmtKind::Break) {
                    "break"
                } else {
                    "continue"
                };
                return Err(Diagnostic::error(span, format!("'{which}' outside a loop")));
            }
            ast::StmtKind::Break => StmtKind::Break,
            ast::StmtKind::Continue => StmtKind::Continue,
            ast::StmtKind::Return(e) => {
                let Some(fi) = cx.func else {
                    return Err(Diagnostic::error(
                        span,
                        "'return' outside a function (use 'next' in a probe)",
                    ));
                };
                match e {
                    Some(e) => {
                        let want = self.funcs[fi].ret;
                        let (v, t) = self.expr(cx, e, want)?;
                        let name = self.funcs[fi].func.name.clone();
                        let mut ret = self.funcs[fi].ret;
                        self.unify_slot(
                            &mut ret,
                            t,
                            &format!("the value of function '{name}'"),
                            e.span,
                        )?;
                        self.funcs[fi].ret = ret;
                        StmtKind::Return(Some(v))
                    }
                    None => StmtKind::Return(None),
                }
            }
            ast::StmtKind::Try { body, var, handler } => {
                let var = match var {
                    Some(v) => {
                        let i = self.local(cx, v);
                        self.unify_ref(cx, SlotRef::Local(i), Some(Ty::Str), v, span)?;
                        Some(LocalId(i as u32))
                    }
                    None => None,
                };
                StmtKind::Try {
                    body: self.block(cx, body)?,
                    var,
                    handler: self.block(cx, handler)?,
                }
            }
            ast::StmtKind::Embedded(e) => {
                return Err(Diagnostic::error(
                    e.span,
                    "embedded C code cannot run in eBPF",
                ))
            }
            ast::StmtKind::Empty => StmtKind::Block(Vec::new()),
        };
        Ok(Stmt { kind, span })
    }

    fn foreach(&mut self, cx: &mut Ctx, f: &ast::Foreach, span: Span) -> R<Foreach> {
        let name = match &f.array.kind {
            ast::ExprKind::Var(n) => n.clone(),
            _ => {
                return Err(Diagnostic::error(
                    f.array.span,
                    "foreach over an array slice or a histogram is not supported yet",
                ))
            }
        };
        let Some(&g) = self.gindex.get(&name) else {
            return Err(Diagnostic::error(
                f.array.span,
                format!("foreach over '{name}', which is not a global array"),
            ));
        };
        self.ensure_array(g, f.keys.len(), f.array.span)?;
        let mut keys = Vec::new();
        let mut sort = None;
        for (i, k) in f.keys.iter().enumerate() {
            let li = self.local(cx, &k.name);
            let kt = self.globals[g]
                .keys
                .as_ref()
                .and_then(|ks| ks.get(i).copied())
                .flatten();
            self.unify_ref(cx, SlotRef::Local(li), kt, &k.name, k.span)?;
            let lt = self.locals_mut(cx)[li].1;
            let mut ks = self.globals[g].keys.clone().unwrap_or_default();
            if let Some(s) = ks.get_mut(i) {
                self.unify_slot(s, lt, &format!("key {} of array '{name}'", i + 1), k.span)?;
            }
            self.globals[g].keys = Some(ks);
            keys.push(LocalId(li as u32));
            if let Some(d) = k.sort {
                sort = Some((i, d));
            }
        }
        if let Some(d) = f.value_sort {
            sort = Some((usize::MAX, d));
        }
        let sort_agg = match f.value_agg.as_deref() {
            None | Some("count") => SortAgg::Count,
            Some("sum") => SortAgg::Sum,
            Some("min") => SortAgg::Min,
            Some("max") => SortAgg::Max,
            Some("avg") => SortAgg::Avg,
            Some(other) => {
                return Err(Diagnostic::error(
                    span,
                    format!("foreach cannot sort on @{other}: @count, @sum, @min, @max or @avg"),
                ))
            }
        };
        if f.value_agg.is_some() && matches!(self.globals[g].ty, Some(t) if t != Ty::Stats) {
            return Err(Diagnostic::error(
                span,
                format!(
                    "'@{}' sorts a statistics array: '{name}' holds plain values",
                    f.value_agg.as_deref().unwrap_or("")
                ),
            ));
        }
        let value = match &f.value {
            Some(v) => {
                let li = self.local(cx, v);
                let gt = self.globals[g].ty;
                self.unify_ref(cx, SlotRef::Local(li), gt, v, span)?;
                Some(LocalId(li as u32))
            }
            None => None,
        };
        let limit = match &f.limit {
            Some(l) => Some(self.long(cx, l)?),
            None => None,
        };
        Ok(Foreach {
            array: GlobalId(g as u32),
            keys,
            value,
            sort,
            sort_agg,
            limit,
            body: self.loop_body(cx, &f.body)?,
        })
    }

    fn ensure_array(&mut self, g: usize, nkeys: usize, span: Span) -> R<()> {
        let name = self.globals[g].decl.name.clone();
        match &mut self.globals[g].keys {
            None => {
                self.globals[g].keys = Some(vec![None; nkeys]);
                self.changed = true;
            }
            Some(k) if k.is_empty() => {
                *k = vec![None; nkeys];
                self.changed = true;
            }
            Some(k) if k.len() != nkeys => {
                return Err(Diagnostic::error(
                    span,
                    format!(
                        "array '{name}' is used with {} key(s) elsewhere but {nkeys} here",
                        k.len()
                    ),
                ))
            }
            _ => {}
        }
        Ok(())
    }

    // ------------------------------------------------------------ expressions

    /// A condition or any value used as a number.
    fn cond(&mut self, cx: &mut Ctx, e: &ast::Expr) -> R<Expr> {
        self.long(cx, e)
    }

    fn long(&mut self, cx: &mut Ctx, e: &ast::Expr) -> R<Expr> {
        self.typed(cx, e, Ty::Long)
    }

    fn string(&mut self, cx: &mut Ctx, e: &ast::Expr) -> R<Expr> {
        self.typed(cx, e, Ty::Str)
    }

    /// Lower `e`, which must be of type `want`.
    fn typed(&mut self, cx: &mut Ctx, e: &ast::Expr, want: Ty) -> R<Expr> {
        let (v, t) = self.expr(cx, e, Some(want))?;
        match t {
            Some(t) if t != want => Err(Diagnostic::error(
                e.span,
                format!(
                    "type mismatch: expected a {}, found a {}",
                    want.name(),
                    t.name()
                ),
            )),
            _ => Ok(v),
        }
    }

    /// A place (`x`, `g`, `arr[k]`) and its type slot.
    fn place(&mut self, cx: &mut Ctx, e: &ast::Expr) -> R<(Place, SlotRef)> {
        match &e.kind {
            ast::ExprKind::Var(name) => {
                // A function's parameter hides a global of its name (stap
                // looks a name up in the function's locals and parameters
                // before the globals).
                let param = cx
                    .func
                    .is_some_and(|f| self.funcs[f].func.params.iter().any(|p| &p.name == name));
                if let Some(&g) = self.gindex.get(name).filter(|_| !param) {
                    if self.globals[g].keys.as_ref().is_some_and(|k| !k.is_empty()) && self.strict {
                        return Err(Diagnostic::error(
                            e.span,
                            format!("array '{name}' used without an index"),
                        ));
                    }
                    Ok((Place::Global(GlobalId(g as u32)), SlotRef::Global(g)))
                } else {
                    let i = self.local(cx, name);
                    Ok((Place::Local(LocalId(i as u32)), SlotRef::Local(i)))
                }
            }
            ast::ExprKind::Index { base, keys } => {
                let ast::ExprKind::Var(name) = &base.kind else {
                    return Err(Diagnostic::error(
                        e.span,
                        "only global arrays can be indexed here",
                    ));
                };
                let Some(&g) = self.gindex.get(name) else {
                    return Err(Diagnostic::error(
                        base.span,
                        format!("'{name}' is indexed but is not a global: arrays must be declared with 'global'"),
                    ));
                };
                let keys = self.keys(cx, g, keys, e.span)?;
                Ok((Place::Elem(GlobalId(g as u32), keys), SlotRef::Elem(g)))
            }
            _ => Err(Diagnostic::error(
                e.span,
                "this expression cannot be assigned to",
            )),
        }
    }

    fn keys(&mut self, cx: &mut Ctx, g: usize, keys: &[ast::Expr], span: Span) -> R<Vec<Expr>> {
        self.ensure_array(g, keys.len(), span)?;
        let name = self.globals[g].decl.name.clone();
        let mut out = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let want = self.globals[g].keys.as_ref().and_then(|ks| ks[i]);
            let (v, t) = self.expr(cx, k, want)?;
            let mut ks = self.globals[g].keys.clone().unwrap_or_default();
            self.unify_slot(
                &mut ks[i],
                t,
                &format!("key {} of array '{name}'", i + 1),
                k.span,
            )?;
            self.globals[g].keys = Some(ks);
            out.push(v);
        }
        Ok(out)
    }

    fn mk(&self, kind: ExprKind, ty: Slot, span: Span) -> (Expr, Slot) {
        (
            Expr {
                kind,
                ty: ty.unwrap_or(Ty::Long),
                span,
            },
            ty,
        )
    }

    fn expr(&mut self, cx: &mut Ctx, e: &ast::Expr, want: Slot) -> R<(Expr, Slot)> {
        let span = e.span;
        use ast::ExprKind as A;
        Ok(match &e.kind {
            A::Number(n) => self.mk(ExprKind::Long(*n), Some(Ty::Long), span),
            A::String(s) => self.mk(ExprKind::Str(s.clone()), Some(Ty::Str), span),
            A::Var(_) | A::Index { .. } => {
                let (place, r) = self.place(cx, e)?;
                self.unify_ref(cx, r, want, &describe(e), span)?;
                let t = *self.slot(cx, r);
                if t == Some(Ty::Stats) {
                    return Err(Diagnostic::error(
                        span,
                        "a statistic is read with @count, @sum, @min, @max, @avg or a histogram",
                    ));
                }
                if self.strict && t.is_none() {
                    return Err(Diagnostic::error(
                        span,
                        format!("unresolved type of {}", describe(e)),
                    ));
                }
                self.mk(ExprKind::Read(place), t, span)
            }
            A::Unary { op, operand } => {
                let v = Box::new(self.long(cx, operand)?);
                let kind = match op {
                    UnOp::Neg => ExprKind::Neg(v),
                    UnOp::BitNot => ExprKind::BitNot(v),
                    UnOp::Not => ExprKind::Not(v),
                    UnOp::Plus => return Ok((*v, Some(Ty::Long))),
                };
                self.mk(kind, Some(Ty::Long), span)
            }
            A::Binary { op, lhs, rhs } => self.binary(cx, *op, lhs, rhs, span)?,
            A::Ternary {
                cond,
                then,
                otherwise,
            } => {
                let c = self.cond(cx, cond)?;
                let (a, ta) = self.expr(cx, then, want)?;
                let (b, tb) = self.expr(cx, otherwise, ta.or(want))?;
                let mut t = ta;
                self.unify_slot(&mut t, tb, "the other branch of '?:'", otherwise.span)?;
                if let (Some(t), None) = (t, ta) {
                    // Re-lower the first branch now that its type is known.
                    let (a2, _) = self.expr(cx, then, Some(t))?;
                    return Ok(self.mk(
                        ExprKind::Cond(Box::new(c), Box::new(a2), Box::new(b)),
                        Some(t),
                        span,
                    ));
                }
                self.mk(
                    ExprKind::Cond(Box::new(c), Box::new(a), Box::new(b)),
                    t,
                    span,
                )
            }
            A::Assign { op, lhs, rhs } => self.assign(cx, *op, lhs, rhs, want, span)?,
            A::PreCrement { increment, operand } | A::PostCrement { increment, operand } => {
                let post = matches!(e.kind, A::PostCrement { .. });
                let (place, r) = self.place(cx, operand)?;
                self.unify_ref(cx, r, Some(Ty::Long), &describe(operand), span)?;
                let delta = if *increment { 1 } else { -1 };
                self.mk(
                    ExprKind::Crement { place, delta, post },
                    Some(Ty::Long),
                    span,
                )
            }
            A::In { keys, array } => {
                let name = match &array.kind {
                    ast::ExprKind::Var(n) => n.clone(),
                    _ => {
                        return Err(Diagnostic::error(
                            array.span,
                            "'in' over a slice is not supported yet",
                        ))
                    }
                };
                let Some(&g) = self.gindex.get(&name) else {
                    return Err(Diagnostic::error(
                        array.span,
                        format!("'{name}' is not a global array"),
                    ));
                };
                let keys = self.keys(cx, g, keys, span)?;
                self.mk(
                    ExprKind::Exists(GlobalId(g as u32), keys),
                    Some(Ty::Long),
                    span,
                )
            }
            A::Call { name, args } => self.call(cx, name, args, want, span)?,
            A::Stat { op, operand, args } => {
                let (place, r) = self.place(cx, operand)?;
                self.unify_ref(cx, r, Some(Ty::Stats), &describe(operand), span)?;
                let mut consts = Vec::new();
                for a in args {
                    match crate::resolve::const_value(a) {
                        Some(v) => consts.push(v),
                        None => {
                            return Err(Diagnostic::error(
                                a.span,
                                "histogram bounds must be constants",
                            ))
                        }
                    }
                }
                let ty = match op {
                    ast::StatOp::HistLog | ast::StatOp::HistLinear => Ty::Str,
                    _ => Ty::Long,
                };
                self.mk(
                    ExprKind::StatGet {
                        op: *op,
                        place,
                        args: consts,
                    },
                    Some(ty),
                    span,
                )
            }
            A::Wildcard => {
                return Err(Diagnostic::error(
                    span,
                    "'*' is only allowed in foreach and delete slices",
                ))
            }
            A::Dwarf(_) | A::AddrOf(_) | A::Defined(_) => {
                return Err(Diagnostic::error(
                    span,
                    "internal: DWARF value left after pass 2",
                ))
            }
            A::Entry(_) => return Err(Diagnostic::error(span, "@entry is not supported yet")),
            A::Perf(_) => return Err(Diagnostic::error(span, "@perf is not supported yet")),
            A::Const(_) | A::Embedded(_) => {
                return Err(Diagnostic::error(
                    span,
                    "C constants and embedded C cannot be used in eBPF",
                ))
            }
            A::AtCall { name, .. } => {
                return Err(Diagnostic::error(span, format!("@{name} is not supported")))
            }
        })
    }

    fn binary(
        &mut self,
        cx: &mut Ctx,
        op: BinOp,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
        span: Span,
    ) -> R<(Expr, Slot)> {
        if let Some(lop) = long_op(op) {
            let a = self.long(cx, lhs)?;
            let b = self.long(cx, rhs)?;
            return Ok(self.mk(
                ExprKind::Arith(lop, Box::new(a), Box::new(b)),
                Some(Ty::Long),
                span,
            ));
        }
        match op {
            BinOp::And | BinOp::Or => {
                let a = Box::new(self.cond(cx, lhs)?);
                let b = Box::new(self.cond(cx, rhs)?);
                let kind = if op == BinOp::And {
                    ExprKind::And(a, b)
                } else {
                    ExprKind::Or(a, b)
                };
                Ok(self.mk(kind, Some(Ty::Long), span))
            }
            BinOp::Concat => {
                let a = self.string(cx, lhs)?;
                let b = self.string(cx, rhs)?;
                Ok(self.mk(
                    ExprKind::Concat(Box::new(a), Box::new(b)),
                    Some(Ty::Str),
                    span,
                ))
            }
            BinOp::RegexMatch | BinOp::RegexNoMatch => {
                let subject = self.string(cx, lhs)?;
                let ast::ExprKind::String(pattern) = &rhs.kind else {
                    return Err(Diagnostic::error(
                        rhs.span,
                        "the right side of =~ must be a string literal",
                    ));
                };
                Ok(self.mk(
                    ExprKind::Regex {
                        subject: Box::new(subject),
                        pattern: pattern.clone(),
                        negate: op == BinOp::RegexNoMatch,
                    },
                    Some(Ty::Long),
                    span,
                ))
            }
            _ => {
                let cmp = match op {
                    BinOp::Eq => CmpOp::Eq,
                    BinOp::Ne => CmpOp::Ne,
                    BinOp::Lt => CmpOp::Lt,
                    BinOp::Le => CmpOp::Le,
                    BinOp::Gt => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                let (a, ta) = self.expr(cx, lhs, None)?;
                let (b, tb) = self.expr(cx, rhs, ta)?;
                let mut t = ta;
                self.unify_slot(&mut t, tb, "the other side of the comparison", rhs.span)?;
                let (a, b) = match (ta, t) {
                    (None, Some(t)) => (self.expr(cx, lhs, Some(t))?.0, b),
                    _ => (a, b),
                };
                Ok(self.mk(
                    ExprKind::Cmp(cmp, Box::new(a), Box::new(b)),
                    Some(Ty::Long),
                    span,
                ))
            }
        }
    }

    fn assign(
        &mut self,
        cx: &mut Ctx,
        op: AssignOp,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
        want: Slot,
        span: Span,
    ) -> R<(Expr, Slot)> {
        let (place, r) = self.place(cx, lhs)?;
        let what = describe(lhs);
        match op {
            AssignOp::Assign => {
                let cur = *self.slot(cx, r);
                if cur == Some(Ty::Stats) {
                    return Err(Diagnostic::error(
                        span,
                        format!("{what} is a statistic: add values with '<<<'"),
                    ));
                }
                let (v, t) = self.expr(cx, rhs, cur.or(want))?;
                self.unify_ref(cx, r, t, &what, span)?;
                let t = *self.slot(cx, r);
                Ok(self.mk(ExprKind::Assign(place, Box::new(v)), t, span))
            }
            AssignOp::StatAdd => {
                self.unify_ref(cx, r, Some(Ty::Stats), &what, span)?;
                let v = self.long(cx, rhs)?;
                Ok(self.mk(ExprKind::StatAdd(place, Box::new(v)), None, span))
            }
            AssignOp::Op(BinOp::Concat) => {
                self.unify_ref(cx, r, Some(Ty::Str), &what, span)?;
                let v = self.string(cx, rhs)?;
                Ok(self.mk(ExprKind::AppendStr(place, Box::new(v)), Some(Ty::Str), span))
            }
            AssignOp::Op(b) => {
                self.unify_ref(cx, r, Some(Ty::Long), &what, span)?;
                let v = self.long(cx, rhs)?;
                // Only arithmetic operators reach here (`.=` is handled above).
                let lop = long_op(b).unwrap_or(LongOp::Xor);
                Ok(self.mk(
                    ExprKind::AssignOp(place, lop, Box::new(v)),
                    Some(Ty::Long),
                    span,
                ))
            }
        }
    }

    fn call(
        &mut self,
        cx: &mut Ctx,
        name: &str,
        args: &[ast::Expr],
        _want: Slot,
        span: Span,
    ) -> R<(Expr, Slot)> {
        if let Some(&fi) = self.findex.get(name) {
            let mut out = Vec::new();
            for (i, a) in args.iter().enumerate() {
                let pt = self.funcs[fi].locals[i].1;
                let (v, t) = self.expr(cx, a, pt)?;
                let pname = self.funcs[fi].locals[i].0.clone();
                let mut slot = pt;
                self.unify_slot(
                    &mut slot,
                    t,
                    &format!("parameter '{pname}' of '{name}'"),
                    a.span,
                )?;
                self.funcs[fi].locals[i].1 = slot;
                out.push(v);
            }
            let ret = self.funcs[fi].ret;
            return Ok(self.mk(ExprKind::Call(FuncId(fi as u32), out), ret, span));
        }
        match name {
            "sprint" | "sprintln" => {
                // What print would print, as a string: one conversion per
                // argument by its type.
                let mut fmt = String::new();
                let mut out = Vec::new();
                for a in args {
                    let (v, _) = self.expr(cx, a, None)?;
                    fmt.push_str(if v.ty == Ty::Str { "%s" } else { "%d" });
                    out.push(v);
                }
                if name == "sprintln" {
                    fmt.push('\n');
                }
                Ok(self.mk(ExprKind::Format { fmt, args: out }, Some(Ty::Str), span))
            }
            "printf" | "sprintf" => {
                let Some(first) = args.first() else {
                    return Err(Diagnostic::error(
                        span,
                        format!("{name} needs a format string"),
                    ));
                };
                let ast::ExprKind::String(fmt) = &first.kind else {
                    return Err(Diagnostic::error(
                        first.span,
                        "the format must be a string literal",
                    ));
                };
                let f = self.format(cx, fmt, &args[1..], first.span, span)?;
                if name == "sprintf" {
                    Ok(self.mk(f, Some(Ty::Str), span))
                } else {
                    let arg = Expr {
                        kind: f,
                        ty: Ty::Str,
                        span,
                    };
                    Ok(self.mk(ExprKind::Builtin(Builtin::Print, vec![arg]), None, span))
                }
            }
            _ => {
                let Some(b) = Builtin::from_name(name) else {
                    return Err(Diagnostic::error(
                        span,
                        format!("unresolved function call: '{name}'"),
                    ));
                };
                let sig = b.signature();
                let min = sig.args.len() - sig.optional;
                if args.len() < min || (!sig.variadic && args.len() > sig.args.len()) {
                    return Err(Diagnostic::error(
                        span,
                        format!("wrong number of arguments to '{name}'"),
                    ));
                }
                let mut out = Vec::new();
                for (i, a) in args.iter().enumerate() {
                    let want = sig.args.get(i).copied().flatten();
                    let v = match want {
                        Some(t) => self.typed(cx, a, t)?,
                        None => self.expr(cx, a, None)?.0,
                    };
                    out.push(v);
                }
                Ok(self.mk(ExprKind::Builtin(b, out), sig.ret, span))
            }
        }
    }

    fn format(
        &mut self,
        cx: &mut Ctx,
        fmt: &str,
        args: &[ast::Expr],
        fmt_span: Span,
        span: Span,
    ) -> R<ExprKind> {
        let pieces = parse_format(fmt).map_err(|m| Diagnostic::error(fmt_span, m))?;
        let convs: Vec<_> = pieces
            .iter()
            .filter_map(|p| match p {
                FormatPiece::Conv(c) => Some(c),
                _ => None,
            })
            .collect();
        let wanted: usize = convs.iter().map(|c| c.arg_count()).sum();
        if wanted != args.len() {
            return Err(Diagnostic::error(
                span,
                format!(
                    "the format takes {wanted} argument(s) but {} follow",
                    args.len()
                ),
            ));
        }
        // A `*` width or precision is a long before the value.
        let mut out = Vec::new();
        let mut args = args.iter();
        for c in convs {
            for _ in 1..c.arg_count() {
                let a = args.next().expect("counted above");
                out.push(self.typed(cx, a, Ty::Long)?);
            }
            let a = args.next().expect("counted above");
            out.push(self.typed(cx, a, c.arg_type())?);
        }
        Ok(ExprKind::Format {
            fmt: fmt.to_string(),
            args: out,
        })
    }
}

/// The long operation of an arithmetic or bitwise binary operator.
fn long_op(o: BinOp) -> Option<LongOp> {
    Some(match o {
        BinOp::Add => LongOp::Add,
        BinOp::Sub => LongOp::Sub,
        BinOp::Mul => LongOp::Mul,
        BinOp::Div => LongOp::Div,
        BinOp::Mod => LongOp::Mod,
        BinOp::Shl => LongOp::Shl,
        BinOp::Shr => LongOp::Shr,
        BinOp::BitAnd => LongOp::And,
        BinOp::BitOr => LongOp::Or,
        BinOp::BitXor => LongOp::Xor,
        _ => return None,
    })
}

fn describe(e: &ast::Expr) -> String {
    match &e.kind {
        ast::ExprKind::Var(n) => format!("'{n}'"),
        ast::ExprKind::Index { base, .. } => match &base.kind {
            ast::ExprKind::Var(n) => format!("an element of '{n}'"),
            _ => "an element".into(),
        },
        _ => "this value".into(),
    }
}

fn ty_of(t: ast::TypeName) -> Ty {
    match t {
        ast::TypeName::Long => Ty::Long,
        ast::TypeName::String => Ty::Str,
    }
}

/// Host probes: begin/end/error and the wall-clock timers (sites with no
/// BPF program type); all else runs in the kernel. Pass 2 groups a probe's
/// sites so that one handler's are all of one kind.
pub fn exec_of(sites: &[crate::probes::Site]) -> Exec {
    if sites.iter().all(|s| s.prog_kind().is_none()) {
        Exec::Host
    } else {
        Exec::Kernel
    }
}

/// Kernel probes cannot recurse (BPF has a fixed call depth and no
/// recursion); refuse any cycle reachable from one.
fn check_recursion(p: &Program) -> R<()> {
    let mut calls: Vec<Vec<usize>> = vec![Vec::new(); p.functions.len()];
    for (i, f) in p.functions.iter().enumerate() {
        visit_calls(&f.body, &mut |c| calls[i].push(c));
    }
    for probe in p.probes.iter().filter(|p| p.exec == Exec::Kernel) {
        let mut roots = Vec::new();
        visit_calls(&probe.body, &mut |c| roots.push(c));
        for r in roots {
            let mut stack = vec![(r, vec![r])];
            while let Some((f, path)) = stack.pop() {
                for &c in &calls[f] {
                    if path.contains(&c) {
                        return Err(Diagnostic::error(
                            p.functions[c].span,
                            format!(
                                "function '{}' is recursive; recursion cannot run in an eBPF probe",
                                p.functions[c].name
                            ),
                        ));
                    }
                    let mut np = path.clone();
                    np.push(c);
                    stack.push((c, np));
                }
            }
        }
    }
    Ok(())
}

fn visit_calls(stmts: &[Stmt], f: &mut dyn FnMut(usize)) {
    for s in stmts {
        print::walk_stmt(s, &mut |e| {
            if let ExprKind::Call(id, _) = &e.kind {
                f(id.0 as usize);
            }
        });
    }
}
