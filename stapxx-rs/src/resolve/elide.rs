//! The end of pass 2, as stap ends its own: assignments to a handler's
//! local variables that nothing reads are dropped (their value still
//! computed when computing it has an effect), then statements that have no
//! effect at all (a pure expression, an `if` whose branches became empty).
//!
//! This is what keeps a tapset alias cheap when a script uses one of its
//! variables: `syscall.connect` computes `uaddr_af`, `uaddr_ip`, ... from
//! eight calls of the sockaddr formatter, and a script printing `argstr`
//! needs one; every call would be compiled into the handler (functions are
//! inlined), past what one BPF program can hold. stap elides the same ones
//! (its `-u` keeps them; so does nothing here: this always runs).
//!
//! Pure: literals, variable and array reads, operators, `@count` and the
//! other statistic reads, builtins that give a value (reads of memory
//! included: their errors go with the value, as in stap), except the
//! `_warn` readers, and script functions that change no global and call
//! only pure things.

use std::collections::{HashMap, HashSet};

use grammar::ast::{AssignOp, Block, Expr, ExprKind, Function, FunctionBody, Stmt, StmtKind};

/// Elides the unread locals of handler bodies, given the program's
/// globals and functions (which functions are pure is decided once for
/// all handlers).
pub struct Elider<'a>(Purity<'a>);

impl<'a> Elider<'a> {
    pub fn new(globals: &'a HashSet<&'a str>, functions: &'a [Function]) -> Elider<'a> {
        Elider(Purity {
            globals,
            functions: functions.iter().map(|f| (f.name.as_str(), f)).collect(),
            known: HashMap::new(),
        })
    }

    /// Elide in `body` (a probe handler's).
    pub fn elide(&mut self, body: &mut Block) {
        // Each round can leave another variable unread (`a = x; b = a`).
        for _ in 0..16 {
            let reads = reads(body, self.0.globals);
            if !self.0.block(body, &reads) {
                break;
            }
        }
    }
}

/// How often each local is read: its occurrences less those that are the
/// target of a plain `=` (the walk meets a target as a variable too).
fn reads(body: &Block, globals: &HashSet<&str>) -> HashMap<String, isize> {
    let mut n: HashMap<String, isize> = HashMap::new();
    grammar::visit::walk_block(body, &mut |e| match &e.kind {
        ExprKind::Var(v) if !globals.contains(v.as_str()) => *n.entry(v.clone()).or_default() += 1,
        ExprKind::Assign {
            op: AssignOp::Assign,
            lhs,
            ..
        } => {
            if let ExprKind::Var(v) = &lhs.kind {
                *n.entry(v.clone()).or_default() -= 1;
            }
        }
        _ => {}
    });
    n
}

struct Purity<'a> {
    globals: &'a HashSet<&'a str>,
    functions: HashMap<&'a str, &'a Function>,
    /// Script functions decided so far.
    known: HashMap<String, bool>,
}

impl Purity<'_> {
    /// Rewrite the statements of `b`; whether anything changed.
    fn block(&mut self, b: &mut Block, reads: &HashMap<String, isize>) -> bool {
        let mut changed = false;
        let mut out = Vec::with_capacity(b.stmts.len());
        for mut s in std::mem::take(&mut b.stmts) {
            changed |= self.stmt(&mut s, reads);
            if empty(&s) {
                changed = true;
            } else {
                out.push(s);
            }
        }
        b.stmts = out;
        changed
    }

    fn stmt(&mut self, s: &mut Stmt, reads: &HashMap<String, isize>) -> bool {
        match &mut s.kind {
            StmtKind::Expr(e) => {
                if let ExprKind::Assign {
                    op: AssignOp::Assign,
                    lhs,
                    rhs,
                } = &mut e.kind
                {
                    if let ExprKind::Var(v) = &lhs.kind {
                        if !self.globals.contains(v.as_str())
                            && reads.get(v).is_some_and(|&n| n <= 0)
                        {
                            let rhs = std::mem::replace(
                                rhs.as_mut(),
                                Expr {
                                    kind: ExprKind::Number(0),
                                    span: e.span,
                                },
                            );
                            s.kind = if self.pure(&rhs) {
                                StmtKind::Empty
                            } else {
                                StmtKind::Expr(rhs)
                            };
                            return true;
                        }
                    }
                }
                if let StmtKind::Expr(e) = &s.kind {
                    if self.pure(e) {
                        s.kind = StmtKind::Empty;
                        return true;
                    }
                }
                false
            }
            StmtKind::Block(b) => self.block(b, reads),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let mut changed = self.stmt(then, reads);
                if let Some(o) = otherwise {
                    changed |= self.stmt(o, reads);
                    if empty(o) {
                        *otherwise = None;
                        changed = true;
                    }
                }
                if empty(then) && otherwise.is_none() && self.pure(cond) {
                    s.kind = StmtKind::Empty;
                    return true;
                }
                changed
            }
            StmtKind::While { body, .. } | StmtKind::For { body, .. } => self.stmt(body, reads),
            StmtKind::Foreach(f) => self.stmt(&mut f.body, reads),
            StmtKind::Try { body, handler, .. } => {
                let changed = self.block(body, reads) | self.block(handler, reads);
                if body.stmts.is_empty() {
                    // Nothing can fail: the handler never runs.
                    s.kind = StmtKind::Empty;
                    return true;
                }
                changed
            }
            _ => false,
        }
    }

    /// No effect but its value (and the errors computing it may raise).
    fn pure(&mut self, e: &Expr) -> bool {
        self.effects(e, false)
    }

    /// `locals_ok`: assignments to locals count as no effect (inside a
    /// function body, whose locals are its own).
    fn effects(&mut self, e: &Expr, locals_ok: bool) -> bool {
        let mut ok = true;
        let mut calls = Vec::new();
        grammar::visit::walk_expr(e, &mut |x| match &x.kind {
            ExprKind::Assign { lhs, .. }
            | ExprKind::PreCrement { operand: lhs, .. }
            | ExprKind::PostCrement { operand: lhs, .. } => {
                let local =
                    matches!(&lhs.kind, ExprKind::Var(v) if !self.globals.contains(v.as_str()));
                if !(locals_ok && local) {
                    ok = false;
                }
            }
            ExprKind::Call { name, .. } => calls.push(name.clone()),
            ExprKind::Dwarf(_)
            | ExprKind::AddrOf(_)
            | ExprKind::Defined(_)
            | ExprKind::Entry(_)
            | ExprKind::AtCall { .. }
            | ExprKind::Embedded(_) => ok = false,
            _ => {}
        });
        ok && calls.iter().all(|c| self.pure_call(c))
    }

    fn pure_call(&mut self, name: &str) -> bool {
        if let Some(&f) = self.functions.get(name) {
            if let Some(&k) = self.known.get(name) {
                return k;
            }
            // Assumed not while it is looked at (recursion ends there).
            self.known.insert(name.to_string(), false);
            let pure = match &f.body {
                FunctionBody::Script(b) => self.body_pure(b),
                _ => false,
            };
            self.known.insert(name.to_string(), pure);
            return pure;
        }
        if matches!(name, "sprintf" | "sprint" | "sprintln") {
            return true;
        }
        match crate::ir::builtins::Builtin::from_name(name) {
            Some(b) => b.signature().ret.is_some() && !name.ends_with("_warn"),
            None => false,
        }
    }

    /// A function body that changes nothing but its own locals.
    fn body_pure(&mut self, b: &Block) -> bool {
        b.stmts.iter().all(|s| self.stmt_pure(s))
    }

    fn stmt_pure(&mut self, s: &Stmt) -> bool {
        match &s.kind {
            StmtKind::Expr(e) | StmtKind::Return(Some(e)) => self.effects(e, true),
            StmtKind::Block(b) => self.body_pure(b),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.effects(cond, true)
                    && self.stmt_pure(then)
                    && otherwise.as_deref().is_none_or(|o| self.stmt_pure(o))
            }
            StmtKind::While { cond, body } => self.effects(cond, true) && self.stmt_pure(body),
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                [init, cond, step]
                    .into_iter()
                    .flatten()
                    .all(|e| self.effects(e, true))
                    && self.stmt_pure(body)
            }
            StmtKind::Try { body, handler, .. } => self.body_pure(body) && self.body_pure(handler),
            StmtKind::Return(None) | StmtKind::Empty => true,
            // foreach over a global, delete, next, embedded C: effects
            // (or too much to decide); break and continue too, so that a
            // function using them outside a loop is still compiled and
            // told as the error it is.
            _ => false,
        }
    }
}

fn empty(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Empty => true,
        StmtKind::Block(b) => b.stmts.iter().all(empty),
        _ => false,
    }
}

/// Keep the functions some handler in `bodies` calls, directly or through
/// other functions.
pub fn keep_called<'b>(functions: &mut Vec<Function>, bodies: impl Iterator<Item = &'b Block>) {
    let mut called: HashSet<String> = HashSet::new();
    let mut todo: Vec<String> = Vec::new();
    let note = |b: &Block, todo: &mut Vec<String>| {
        grammar::visit::walk_block(b, &mut |e| {
            if let ExprKind::Call { name, .. } = &e.kind {
                todo.push(name.clone());
            }
        })
    };
    for b in bodies {
        note(b, &mut todo);
    }
    while let Some(n) = todo.pop() {
        if !called.insert(n.clone()) {
            continue;
        }
        if let Some(FunctionBody::Script(b)) =
            functions.iter().find(|f| f.name == n).map(|f| &f.body)
        {
            note(b, &mut todo);
        }
    }
    functions.retain(|f| called.contains(&f.name));
}
