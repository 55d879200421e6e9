//! Pass 2, resolve: the parsed program against the target's debuginfo.
//!
//! Input: the parsed files (script first, then `@use` modules). Output: the
//! same program where
//! * every `@cast(...)`/`@var(...)` chain is an explicit read
//!   (`user_uint32(p + 12)`, see [`reads`]), `@var` addresses being
//!   `__stapxx_module_bias("module") + link address`;
//! * `@defined(...)` is 0 or 1, and `if`/`?:` on a constant keep only the
//!   branch taken (the other is never resolved, as in stap, so tapsets can
//!   test for members or variables that a build lacks);
//! * only the probes, and the functions and globals they reach, remain.
//!
//! Unresolved functions and calls with the wrong number of arguments are
//! reported here, with their location; so is a reachable embedded-C function.

pub mod aliases;
mod autocast;
mod casts;
mod cexpr;
mod cfuncs;
mod elide;
mod handlers;
mod kernel_timers;
mod locvalue;
pub mod marks;
pub mod modules;
mod overloads;
mod pretty;
mod queue;
pub mod reads;
pub mod target;
mod tracepoints;

use crate::debuginfo::{Index, Step};
use crate::probes::Site;
use grammar::ast::*;
use grammar::{Diagnostic, Span};
use handlers::entry_slot;
use modules::Modules;
use queue::skipped_warnings;
use std::collections::{BTreeSet, HashMap};

/// The resolved program: what later passes compile.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub globals: Vec<Global>,
    pub functions: Vec<Function>,
    pub probes: Vec<ResolvedProbe>,
    /// Aliases a wildcard matched that were left out, and why.
    pub warnings: Vec<Diagnostic>,
}

/// One handler: the sites it runs at (all of one executor and program
/// type) and its body, the point conditions folded in.
#[derive(Debug, Clone)]
pub struct ResolvedProbe {
    pub sites: Vec<Site>,
    /// The points as the script wrote them (the listing shows them).
    pub points: Vec<ProbePoint>,
    pub body: Block,
    pub span: Span,
}

/// Run pass 2 over the parsed files and the tapset library files they
/// pulled in. A function is the script's (or its modules') own, else a
/// builtin, else the library's: so an embedded-C tapset function we serve
/// as a builtin (`pid`, `_stp_arg2`) is the builtin.
pub fn resolve(
    files: &[File],
    library: &[File],
    alias_names: &[String],
    modules: &mut Modules,
    defines: &std::collections::BTreeMap<String, String>,
    skip_badvars: bool,
) -> Result<Resolved, Diagnostic> {
    let mut globals: HashMap<&str, &Global> = HashMap::new();
    let mut probes = Vec::new();
    let mut alias_defs = Vec::new();
    let script_count = files.len();
    let all: Vec<&File> = files.iter().chain(library).collect();
    let overloads = overloads::Overloads::new(&all, script_count);
    let functions = overloads.functions();
    for f in all.iter() {
        for item in &f.items {
            match item {
                Item::Function(_) => {}
                Item::Global(g) => {
                    globals.entry(g.name.as_str()).or_insert(g);
                }
                Item::Probe(p) => probes.push(p),
                Item::Alias(a) => alias_defs.push(a),
                Item::Embedded(e) => {
                    // Top-level C only matters where used; stap would compile
                    // it into the module. We keep going and refuse functions.
                    let _ = e;
                }
            }
        }
    }
    // Only the script's own probes run; a module's probes run too when the
    // module was pulled in (stap runs every probe of a used tapset).
    let mut r = Resolver {
        skip_badvars,
        badvars: Vec::new(),
        functions,
        modules,
        used_functions: BTreeSet::new(),
        queue: Vec::new(),
        resolved_functions: Vec::new(),
        sites: None,
        split: false,
        entries: Vec::new(),
        points: Vec::new(),
        kallsyms_started: false,
        usyms_started: false,
        written: Default::default(),
        defines: defines.clone(),
        autotypes: HashMap::new(),
        last_type: None,
        site_text_users: HashMap::new(),
        c_blocks: Vec::new(),
        c_constants: None,
        calls_site_text: false,
        last_value: None,
    };
    let hz = crate::kernel::kernel_hz();
    let mut out_probes = Vec::new();
    // Value tables of embedded-C formatters live in the library's C.
    let c_blocks: Vec<&str> = all
        .iter()
        .flat_map(|f| &f.items)
        .filter_map(|i| match i {
            Item::Embedded(e) => Some(e.code.as_str()),
            _ => None,
        })
        .collect();
    r.c_blocks = c_blocks.clone();
    let aliases = aliases::Aliases::new(alias_defs, alias_names);
    let mut skipped: Vec<(String, String, Diagnostic)> = Vec::new();
    let mut matched: HashMap<String, BTreeSet<String>> = HashMap::new();
    for p in probes {
        r.written = written_vars(&p.body);
        let mut cx = crate::probes::Cx {
            modules: &mut *r.modules,
            hz,
        };
        for derived in aliases.expand(&p.points, &p.body, &mut cx)? {
            let probe = Probe {
                body: derived.body,
                ..p.clone()
            };
            let mark = r.mark(&out_probes);
            let mut run = || -> R<()> {
                for group in crate::probes::groups(derived.sites.clone()) {
                    r.handler(&probe, group, &mut out_probes)?;
                }
                r.drain_queue(&c_blocks)
            };
            match (run(), &derived.via) {
                (Ok(()), Some(via)) => {
                    matched
                        .entry(via.pattern.clone())
                        .or_default()
                        .insert(via.alias.clone());
                }
                (Ok(()), None) => {}
                // One alias of those a wildcard matched that needs what we
                // cannot run here: the others still run (said below).
                (Err(e), Some(via)) => {
                    r.rollback(mark, &mut out_probes);
                    matched
                        .entry(via.pattern.clone())
                        .or_default()
                        .insert(via.alias.clone());
                    skipped.push((via.pattern.clone(), via.alias.clone(), e));
                }
                (Err(e), None) => return Err(e),
            }
        }
    }
    let mut warnings = skipped_warnings(&skipped, &matched);
    warnings.append(&mut r.badvars);
    // Each @entry value is stored by a probe on the function's entry, as
    // stap does, and read back in the return probe by thread id.
    let mut entry_globals = Vec::new();
    let mut done = 0;
    while done < r.entries.len() {
        let (sites, points, value, global) = r.entries[done].clone();
        done += 1;
        let span = value.span;
        r.sites = Some(sites.clone());
        r.autotypes.clear();
        let store = Expr {
            span,
            kind: ExprKind::Assign {
                op: AssignOp::Assign,
                lhs: Box::new(entry_slot(&global, span)),
                rhs: Box::new(value),
            },
        };
        let body = r.block(Block {
            stmts: vec![Stmt {
                kind: StmtKind::Expr(store),
                span,
            }],
            span,
        })?;
        out_probes.push(ResolvedProbe {
            sites,
            points,
            body,
            span,
        });
        entry_globals.push(Global {
            name: global,
            size: None,
            array: true,
            wrap: false,
            init: None,
            private: false,
            span,
        });
    }
    r.sites = None;
    r.drain_queue(&c_blocks)?;
    r.resolved_functions.sort_by(|a, b| a.name.cmp(&b.name));
    // Unread locals and statements without effect go, as stap elides
    // them; then the functions no handler calls any more.
    let global_names: std::collections::HashSet<&str> = globals
        .keys()
        .copied()
        .chain(entry_globals.iter().map(|g| g.name.as_str()))
        .collect();
    let mut elider = elide::Elider::new(&global_names, &r.resolved_functions);
    for p in &mut out_probes {
        elider.elide(&mut p.body);
    }
    elide::keep_called(
        &mut r.resolved_functions,
        out_probes.iter().map(|p| &p.body),
    );
    // Globals referenced anywhere that survived pruning.
    let mut used = BTreeSet::new();
    for p in &out_probes {
        collect_vars_block(&p.body, &mut used);
    }
    for f in &r.resolved_functions {
        if let FunctionBody::Script(b) = &f.body {
            collect_vars_block(b, &mut used);
        }
    }
    let mut out_globals: Vec<Global> = Vec::new();
    for f in &all {
        for item in &f.items {
            if let Item::Global(g) = item {
                if used.contains(&g.name) && !out_globals.iter().any(|x| x.name == g.name) {
                    out_globals.push(g.clone());
                }
            }
        }
    }
    let _ = globals;
    out_globals.extend(entry_globals);
    Ok(Resolved {
        globals: out_globals,
        functions: r.resolved_functions,
        probes: out_probes,
        warnings,
    })
}

struct Resolver<'a, 'm> {
    functions: HashMap<&'a str, &'a Function>,
    /// `-D NAME=VALUE`: `@const("MAXSTRINGLEN")` and the other limits
    /// the tapsets read are these (stap's runtime defines them).
    defines: std::collections::BTreeMap<String, String>,
    modules: &'m mut Modules,
    used_functions: BTreeSet<String>,
    queue: Vec<String>,
    resolved_functions: Vec<Function>,
    /// The sites of the handler being resolved (`None` in script
    /// functions): `$param` is read as each site's function has it.
    sites: Option<Vec<Site>>,
    /// Set when the sites read a target variable differently: the handler
    /// is then resolved once per site.
    split: bool,
    /// `@entry(e)` in `.return` probes: (the entry sites, e, the global
    /// that carries e's value from entry to return, keyed by thread).
    entries: Vec<Entry>,
    /// The points of the probe being resolved (for the listing).
    points: Vec<ProbePoint>,
    kallsyms_started: bool,
    /// The target's symbol tables are being read on another thread.
    usyms_started: bool,
    /// The variables the script's own body of the probe being resolved
    /// assigns (for `@probewrite`).
    written: std::collections::HashSet<String>,
    /// The typed pointers variables hold in the body being resolved
    /// (autocast.rs), and the type of the last typed value resolved.
    autotypes: HashMap<String, autocast::AutoType>,
    last_type: Option<autocast::AutoType>,
    /// Script functions that call `pp()`, `ppfunc()` or `probefunc()`,
    /// themselves or through others (decided once each).
    site_text_users: HashMap<String, bool>,
    /// The loaded files' top-level embedded C, and the integer constants
    /// it defines (read at the first `@const` the headers do not have).
    c_blocks: Vec<&'a str>,
    c_constants: Option<HashMap<String, i64>>,
    /// The handler being resolved calls such a function: its sites share
    /// a program only when their points read the same.
    calls_site_text: bool,
    /// The type of the last target value resolved, whatever it is (for
    /// pretty printing).
    last_value: Option<pretty::ValueAt>,
    /// `--skip-badvars`: a target value that does not resolve reads as 0,
    /// with a warning (stap's rule), instead of failing pass 2.
    skip_badvars: bool,
    badvars: Vec<Diagnostic>,
}

/// An `@entry(e)`: the entry sites, their points as written, e, and the
/// global that carries e's value from entry to return.
pub(super) type Entry = (Vec<Site>, Vec<ProbePoint>, Expr, String);

pub(super) type R<T> = Result<T, Diagnostic>;

impl Resolver<'_, '_> {
    fn block(&mut self, b: Block) -> R<Block> {
        let mut stmts = Vec::with_capacity(b.stmts.len());
        for s in b.stmts {
            if let Some(s) = self.stmt(s)? {
                stmts.push(s);
            }
        }
        Ok(Block {
            stmts,
            span: b.span,
        })
    }

    fn boxed(&mut self, s: Stmt) -> R<Box<Stmt>> {
        let span = s.span;
        Ok(Box::new(self.stmt(s)?.unwrap_or(Stmt {
            kind: StmtKind::Empty,
            span,
        })))
    }

    /// `None` when the statement is pruned away entirely.
    fn stmt(&mut self, s: Stmt) -> R<Option<Stmt>> {
        let span = s.span;
        let kind = match s.kind {
            StmtKind::Block(b) => StmtKind::Block(self.block(b)?),
            StmtKind::Expr(e) => StmtKind::Expr(self.expr(e)?),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let cond = self.expr(cond)?;
                match const_value(&cond) {
                    Some(v) if v != 0 => return self.stmt(*then),
                    Some(_) => {
                        return match otherwise {
                            Some(o) => self.stmt(*o),
                            None => Ok(None),
                        }
                    }
                    None => StmtKind::If {
                        cond,
                        then: self.boxed(*then)?,
                        otherwise: match otherwise {
                            Some(o) => Some(self.boxed(*o)?),
                            None => None,
                        },
                    },
                }
            }
            StmtKind::While { cond, body } => StmtKind::While {
                cond: self.expr(cond)?,
                body: self.boxed(*body)?,
            },
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => StmtKind::For {
                init: self.opt(init)?,
                cond: self.opt(cond)?,
                step: self.opt(step)?,
                body: self.boxed(*body)?,
            },
            StmtKind::Foreach(f) => {
                let f = *f;
                StmtKind::Foreach(Box::new(Foreach {
                    array: self.expr(f.array)?,
                    limit: self.opt(f.limit)?,
                    body: *self.boxed(f.body)?,
                    ..f
                }))
            }
            StmtKind::Delete(e) => StmtKind::Delete(self.expr(e)?),
            StmtKind::Return(e) => StmtKind::Return(self.opt(e)?),
            StmtKind::Try { body, var, handler } => StmtKind::Try {
                body: self.block(body)?,
                var,
                handler: self.block(handler)?,
            },
            StmtKind::Embedded(e) => {
                return Err(Diagnostic::error(
                    e.span,
                    "embedded C code cannot run in eBPF (stapxx-rs has no kernel module)",
                ))
            }
            k @ (StmtKind::Next | StmtKind::Break | StmtKind::Continue | StmtKind::Empty) => k,
        };
        Ok(Some(Stmt { kind, span }))
    }

    fn opt(&mut self, e: Option<Expr>) -> R<Option<Expr>> {
        e.map(|e| self.expr(e)).transpose()
    }

    fn exprs(&mut self, es: Vec<Expr>) -> R<Vec<Expr>> {
        es.into_iter().map(|e| self.expr(e)).collect()
    }

    fn bx(&mut self, e: Expr) -> R<Box<Expr>> {
        Ok(Box::new(self.expr(e)?))
    }

    fn expr(&mut self, e: Expr) -> R<Expr> {
        let span = e.span;
        let kind = match e.kind {
            ExprKind::Dwarf(d) => return self.dwarf(*d, false, span),
            ExprKind::AddrOf(inner) => match inner.kind {
                ExprKind::Dwarf(d) => return self.dwarf(*d, true, span),
                _ => {
                    return Err(Diagnostic::error(
                        span,
                        "'&' takes the address of a @cast, @var or target variable only",
                    ))
                }
            },
            ExprKind::Defined(inner) => {
                let ok = self.defined(*inner)?;
                ExprKind::Number(ok as i64)
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                let cond = self.expr(*cond)?;
                match const_value(&cond) {
                    Some(v) if v != 0 => return self.expr(*then),
                    Some(_) => return self.expr(*otherwise),
                    None => ExprKind::Ternary {
                        cond: Box::new(cond),
                        then: self.bx(*then)?,
                        otherwise: self.bx(*otherwise)?,
                    },
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let lhs = self.expr(*lhs)?;
                // `0 && x` / `1 || x`: x is never evaluated, so not resolved.
                match (op, const_value(&lhs)) {
                    (BinOp::And, Some(0)) => ExprKind::Number(0),
                    (BinOp::Or, Some(v)) if v != 0 => ExprKind::Number(1),
                    _ => {
                        let rhs = self.expr(*rhs)?;
                        let folded = match (op, const_value(&lhs), const_value(&rhs)) {
                            (BinOp::And, Some(_), Some(b)) => Some((b != 0) as i64),
                            (BinOp::Or, Some(_), Some(b)) => Some((b != 0) as i64),
                            _ => None,
                        };
                        match folded {
                            Some(v) => ExprKind::Number(v),
                            None => ExprKind::Binary {
                                op,
                                lhs: Box::new(lhs),
                                rhs: Box::new(rhs),
                            },
                        }
                    }
                }
            }
            ExprKind::Unary { op, operand } => {
                let operand = self.expr(*operand)?;
                match (op, const_value(&operand)) {
                    (UnOp::Not, Some(v)) => ExprKind::Number((v == 0) as i64),
                    _ => ExprKind::Unary {
                        op,
                        operand: Box::new(operand),
                    },
                }
            }
            ExprKind::Call { name, args } => {
                // `is_return()`: whether the probe is at a return (a
                // uretprobe, a system call's exit), a fact of the sites.
                if args.is_empty() && name == "is_return" && self.sites.is_some() {
                    return Ok(Expr {
                        kind: ExprKind::Number(i64::from(self.in_return_probe())),
                        span,
                    });
                }
                // `registers_valid()`: the handler has the interrupted
                // registers (uprobes, perf samples; not tracepoints or
                // host probes), as stap's context has them or not.
                if args.is_empty() && name == "registers_valid" {
                    if let Some(sites) = &self.sites {
                        let has = !sites.is_empty()
                            && sites.iter().all(|s| {
                                matches!(
                                    s.kind,
                                    crate::probes::SiteKind::Uprobe(_)
                                        | crate::probes::SiteKind::Perf(_)
                                )
                            });
                        return Ok(Expr {
                            kind: ExprKind::Number(i64::from(has)),
                            span,
                        });
                    }
                }
                if args.is_empty() {
                    if let Some(text) = self.site_text(&name) {
                        return Ok(Expr {
                            kind: ExprKind::String(text),
                            span,
                        });
                    }
                }
                let args = self.exprs(args)?;
                // An overload by arity has a name of its own from here on.
                let name = overloads::by_arity(&self.functions, &name, args.len()).unwrap_or(name);
                self.check_call(&name, args.len(), span)?;
                // A function that prints the point (`trace()` calling
                // `ppfunc()`) is compiled into each handler that calls it:
                // one handler per point text, as for `pp()` itself.
                if self.reaches_site_text(&name) {
                    self.calls_site_text = true;
                    let _ = self.site_text("pp");
                    let _ = self.site_text("pn");
                }
                ExprKind::Call { name, args }
            }
            ExprKind::Index { base, keys } => ExprKind::Index {
                base: self.bx(*base)?,
                keys: self.exprs(keys)?,
            },
            ExprKind::Assign { op, lhs, rhs } => {
                // stap writes target variables in guru mode (-g); we
                // never write to the target.
                if let ExprKind::Dwarf(d) = &lhs.kind {
                    let what = match &d.base {
                        DwarfBase::Target(n) => format!("the target variable '${n}'"),
                        _ => "the target's memory".to_string(),
                    };
                    return Err(Diagnostic::error(
                        lhs.span,
                        format!("cannot write {what}: stapxx-rs only reads the traced program and the kernel, never changes them (stap writes them in guru mode, -g)"),
                    ));
                }
                let typed = op == AssignOp::Assign && autocast::typed_shape(&rhs);
                let target = match &lhs.kind {
                    ExprKind::Var(v) => Some(v.clone()),
                    _ => None,
                };
                // A variable's own type while its new value is resolved
                // (`pos = pos->next`).
                self.last_type = self.known_type(&rhs);
                let rhs = self.bx(*rhs)?;
                if let (true, Some(v), Some(t)) = (typed, target, self.last_type.take()) {
                    self.autotypes.insert(v, t);
                }
                ExprKind::Assign {
                    op,
                    lhs: self.bx(*lhs)?,
                    rhs,
                }
            }
            ExprKind::PreCrement { increment, operand } => ExprKind::PreCrement {
                increment,
                operand: self.bx(*operand)?,
            },
            ExprKind::PostCrement { increment, operand } => ExprKind::PostCrement {
                increment,
                operand: self.bx(*operand)?,
            },
            ExprKind::In { keys, array } => ExprKind::In {
                keys: self.exprs(keys)?,
                array: self.bx(*array)?,
            },
            ExprKind::Entry(inner) => return self.entry(*inner, span),
            ExprKind::Const(text) if crate::limits::limit(&text).is_some() => {
                ExprKind::Number(crate::limits::value(&self.defines, &text) as i64)
            }
            ExprKind::Const(text) => match crate::consts::at_const(&text) {
                Ok(v) => ExprKind::Number(v),
                Err(m) => match self.c_constant(&text) {
                    // (The tapsets' own C defines it.)
                    Some(v) => ExprKind::Number(v),
                    None => return Err(Diagnostic::error(span, m)),
                },
            },
            ExprKind::Stat { op, operand, args } => ExprKind::Stat {
                op,
                operand: self.bx(*operand)?,
                args: self.exprs(args)?,
            },
            // `@probewrite(v)`: whether the script's own probe body writes
            // v (tapset aliases store such variables back only then). A
            // constant, so the `if` around the store keeps no branch
            // whose calls would need resolving.
            ExprKind::AtCall { name, args } if name == "probewrite" => match args.as_slice() {
                [Expr {
                    kind: ExprKind::Var(v),
                    ..
                }] => ExprKind::Number(i64::from(self.written.contains(v))),
                _ => {
                    return Err(Diagnostic::error(
                        span,
                        "@probewrite takes one variable name",
                    ))
                }
            },
            ExprKind::AtCall { name, args } => ExprKind::AtCall {
                name,
                args: self.exprs(args)?,
            },
            ExprKind::Embedded(code) => {
                // `%{ /* pure */ _stp_is_compat_task() %}` (a tapset
                // macro's value): a call of a C function we serve as a
                // builtin is that builtin.
                let Some(name) = embedded_call(&code) else {
                    return Err(Diagnostic::error(
                        span,
                        "embedded C code cannot run in eBPF (stapxx-rs has no kernel module)",
                    ));
                };
                self.check_call(&name, 0, span)?;
                ExprKind::Call {
                    name,
                    args: Vec::new(),
                }
            }
            k => k,
        };
        Ok(Expr { kind, span })
    }

    fn check_call(&mut self, name: &str, nargs: usize, span: Span) -> R<()> {
        // A builtin stands for a tapset's embedded-C function of its name.
        let shadowed = |f: &&Function| {
            matches!(f.body, FunctionBody::Embedded(_))
                && crate::ir::builtins::Builtin::from_name(name).is_some()
        };
        if let Some(f) = self.functions.get(name).filter(|f| !shadowed(f)) {
            if f.params.len() != nargs {
                return Err(Diagnostic::error(
                    span,
                    format!(
                        "function '{name}' takes {} argument{}, given {nargs}",
                        f.params.len(),
                        if f.params.len() == 1 { "" } else { "s" }
                    ),
                ));
            }
            if self.used_functions.insert(name.to_string()) {
                self.queue.push(name.to_string());
            }
            return Ok(());
        }
        // The one table of builtins (ir/builtins.rs) says what exists and
        // how many arguments it takes.
        use crate::ir::builtins::{Builtin, FORMATTERS, STRINGIFIERS};
        if STRINGIFIERS.contains(&name) {
            return Ok(());
        }
        if FORMATTERS.contains(&name) {
            return if nargs == 0 {
                Err(Diagnostic::error(
                    span,
                    format!("{name} needs a format string"),
                ))
            } else {
                Ok(())
            };
        }
        let Some(b) = Builtin::from_name(name) else {
            let known: Vec<String> = self
                .functions
                .keys()
                .map(|k| k.to_string())
                .chain(Builtin::names().map(String::from))
                .collect();
            let near = crate::debuginfo::layout::nearest(name, known.iter().map(|s| s.as_str()), 3);
            return Err(Diagnostic::error(
                span,
                format!(
                    "unresolved function call: '{name}' is neither a script function nor a builtin{}",
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!(" (nearest: {})", near.join(", "))
                    }
                ),
            ));
        };
        let sig = b.signature();
        let min = sig.args.len() - sig.optional;
        if nargs < min || (!sig.variadic && nargs > sig.args.len()) {
            return Err(Diagnostic::error(
                span,
                format!("wrong number of arguments ({nargs}) to builtin '{name}'"),
            ));
        }
        // Reading /proc/kallsyms takes tens of ms: start it now, while the
        // rest of pass 2 runs, when a later pass will want it.
        if b.needs().kernel_symbols && self.modules.prefetch && !self.kallsyms_started {
            self.kallsyms_started = true;
            std::thread::spawn(crate::ksyms::KernelSymbols::get);
        }
        // Likewise the target's symbol tables (its executable's and every
        // mapped library's, a few ms), which pass 3 packs for the kernel.
        if b.needs().user_symbols && self.modules.prefetch && !self.usyms_started {
            self.usyms_started = true;
            if let Some(t) = self.modules.target().cloned() {
                std::thread::spawn(move || crate::kernel::symbol_table(&t));
            }
        }
        Ok(())
    }

    /// `@defined(x)`: whether x resolves. Names that do not exist give 0,
    /// and so does a file with no debug info anywhere (as in stap: a
    /// tapset then takes its other way, e.g. finding the LuaJIT VM without
    /// `globalL` in a stripped executable; a use outside `@defined` still
    /// gets the error with every place looked in). A missing file or
    /// broken DWARF is still an error.
    fn defined(&mut self, e: Expr) -> R<bool> {
        let span = e.span;
        let (d, amp) = match e.kind {
            ExprKind::Dwarf(d) => (*d, false),
            ExprKind::AddrOf(inner) => match inner.kind {
                ExprKind::Dwarf(d) => (*d, true),
                _ => return Ok(true),
            },
            // Anything else is defined when it resolves at all.
            _ => return Ok(self.expr(e).is_ok()),
        };
        match self.try_dwarf(d, amp, span, false)? {
            Ok(_) => Ok(true),
            Err(_) => Ok(false),
        }
    }

    fn dwarf(&mut self, d: DwarfValue, amp: bool, span: Span) -> R<Expr> {
        match self.try_dwarf(d, amp, span, true)? {
            Ok(e) => Ok(e),
            Err(msg) if self.skip_badvars => {
                let msg = msg.strip_suffix(target::SKIP_HINT).unwrap_or(&msg);
                let w = Diagnostic::warning(span, format!("{msg}: read as 0 (--skip-badvars)"));
                // A handler resolved once per site meets it once each.
                if !self.badvars.contains(&w) {
                    self.badvars.push(w);
                }
                Ok(reads::num(0, span))
            }
            Err(msg) => Err(Diagnostic::error(span, msg)),
        }
    }

    /// Outer error: a hard failure. Inner error: the name does not resolve.
    /// `reading`: the value is used (not only tested by `@defined`).
    fn try_dwarf(
        &mut self,
        d: DwarfValue,
        amp: bool,
        span: Span,
        reading: bool,
    ) -> R<Result<Expr, String>> {
        // In a `.return` probe a variable's pretty string is made at
        // entry (below), as stap saves it.
        let at_entry = matches!(&d.base, DwarfBase::Target(n) if self.at_entry(n));
        if d.pretty > 0 && !at_entry {
            return self.pretty(d, amp, span);
        }
        let pretty = d.pretty;
        // The chain as written, for a `.return` probe's entry capture.
        let chain_back = d.chain.clone();
        // Member chain -> steps; computed indexes resolved first.
        let mut steps = Vec::new();
        let mut indexes = Vec::new();
        for step in d.chain {
            match step {
                Deref::Member { name, .. } => steps.push(Step::Member(name)),
                Deref::Index(e) => {
                    let e = self.expr(e)?;
                    match const_value(&e) {
                        Some(n) => steps.push(Step::Index(Index::Const(n))),
                        None => {
                            steps.push(Step::Index(Index::Dynamic(indexes.len())));
                            indexes.push(e);
                        }
                    }
                }
            }
        }
        match d.base {
            DwarfBase::Cast { addr, ty, module } => {
                let addr = self.expr(*addr)?;
                let cast = casts::resolve(
                    self.modules,
                    module.as_deref(),
                    self.sites.as_deref(),
                    &ty,
                    &steps,
                    amp,
                );
                self.cast_read(cast, &ty, addr, &indexes, span, reading)
            }
            DwarfBase::Var { name, module } => {
                // No module: the probed one's, as for `@cast`.
                let module = module
                    .or_else(|| casts::probed_module(self.sites.as_deref()).map(str::to_string));
                let m = match self.modules.get(module.as_deref()) {
                    Ok(m) => m,
                    Err(e) => return Err(Diagnostic::error(span, e)),
                };
                let path = m.target_path().display().to_string();
                match m.resolve_var(&name, &steps, amp) {
                    Ok(v) => {
                        self.last_value = Some(pretty::ValueAt {
                            source: casts::Source::User(module.clone()),
                            handle: v.resolved.value.handle.clone(),
                        });
                        let link = v.variable.link_address;
                        let base = self.module_address(&path, link, span);
                        Ok(Ok(reads::build(base, &v.resolved, &indexes, span)))
                    }
                    Err(e) if Modules::is_unknown_here(&e) => Ok(Err(e.to_string())),
                    Err(e) => Err(Diagnostic::error(span, e.to_string())),
                }
            }
            // In a `.return` probe a parameter means its value at entry.
            DwarfBase::Target(name) if self.at_entry(&name) => {
                // Whether the entry sites have it, each for itself (a probe
                // on malloc and realloc returns: only realloc's has
                // `$oldmem`), so `@defined` is right per site.
                let entry_sites = self.entry_sites();
                let saved = self.sites.replace(entry_sites);
                let at_entry = self.target_var(&name, &steps, &indexes, amp, span);
                self.sites = saved;
                if let Err(msg) = at_entry? {
                    return Ok(Err(msg));
                }
                let original = Expr {
                    span,
                    kind: ExprKind::Dwarf(Box::new(DwarfValue {
                        base: DwarfBase::Target(name),
                        chain: chain_back,
                        pretty,
                    })),
                };
                let original = if amp {
                    Expr {
                        span,
                        kind: ExprKind::AddrOf(Box::new(original)),
                    }
                } else {
                    original
                };
                Ok(Ok(self.entry(original, span)?))
            }
            DwarfBase::Target(name) => self.target_var(&name, &steps, &indexes, amp, span),
            DwarfBase::Autocast(base) => {
                let Some(ty) = self.known_type(&base) else {
                    return Ok(Err(autocast::untyped(&base)));
                };
                let addr = self.expr(*base)?;
                let cast = autocast::resolve(self.modules, &ty, &steps, amp);
                self.cast_read(cast, ty.pointee(), addr, &indexes, span, reading)
            }
        }
    }
}

impl Resolver<'_, '_> {
    /// An integer constant the loaded files' embedded C defines.
    fn c_constant(&mut self, name: &str) -> Option<i64> {
        let blocks = &self.c_blocks;
        self.c_constants
            .get_or_insert_with(|| crate::consts::from_embedded_c(blocks))
            .get(name)
            .copied()
    }

    /// The reads of a resolved cast chain from `addr` (`ty` names the type
    /// in the error of a kernel read where none can be made); its type is
    /// noted for autocast.
    fn cast_read(
        &mut self,
        cast: Result<casts::Cast, casts::Failure>,
        ty: &str,
        addr: Expr,
        indexes: &[Expr],
        span: Span,
        reading: bool,
    ) -> R<Result<Expr, String>> {
        match cast {
            Ok(c) => {
                if reading && c.memory == reads::Memory::Kernel && c.reads() {
                    self.kernel_read(ty, span)?;
                }
                self.last_type = autocast::of_cast(&c);
                self.last_value = Some(pretty::ValueAt {
                    source: c.source.clone(),
                    handle: c.chain.value.handle.clone(),
                });
                Ok(Ok(reads::build_in(
                    c.memory,
                    addr,
                    &c.chain.accesses,
                    c.chain.fetch,
                    indexes,
                    span,
                )))
            }
            Err(casts::Failure::Unknown(m)) => Ok(Err(m)),
            Err(casts::Failure::Hard(m)) => Err(Diagnostic::error(span, m)),
        }
    }
}

/// The value of a constant expression, if it is one.
pub fn const_value(e: &Expr) -> Option<i64> {
    match &e.kind {
        ExprKind::Number(n) => Some(*n),
        ExprKind::Unary {
            op: UnOp::Neg,
            operand,
        } => const_value(operand).map(|v| v.wrapping_neg()),
        ExprKind::Unary {
            op: UnOp::Not,
            operand,
        } => const_value(operand).map(|v| (v == 0) as i64),
        ExprKind::Unary {
            op: UnOp::BitNot,
            operand,
        } => const_value(operand).map(|v| !v),
        _ => None,
    }
}

/// Every variable name a block mentions, the names `foreach` and `catch`
/// bind included.
fn collect_vars_block(b: &Block, out: &mut BTreeSet<String>) {
    grammar::visit::walk_block(b, &mut |e| {
        if let ExprKind::Var(v) = &e.kind {
            out.insert(v.clone());
        }
    });
    let mut bound = std::collections::HashSet::new();
    grammar::visit::bound_names(b, &mut bound);
    out.extend(bound);
}

/// The `-p2` listing: globals, then functions, then probes, each probe
/// preceded by the sites it was matched to (as `stap -p2` lists the probe
/// points it derived).
pub fn print(resolved: &Resolved) -> String {
    let file = File {
        id: grammar::FileId(0),
        items: resolved
            .globals
            .iter()
            .cloned()
            .map(Item::Global)
            .chain(resolved.functions.iter().cloned().map(Item::Function))
            .collect(),
    };
    let mut out = grammar::printer::print_file(&file);
    for p in &resolved.probes {
        out.push_str("# sites:\n");
        for s in &p.sites {
            out.push_str("#   ");
            out.push_str(&s.describe());
            out.push('\n');
        }
        // Only the points this handler's sites came from; a site reached
        // through an alias came from the points as written.
        let mut points: Vec<ProbePoint> = p
            .points
            .iter()
            .map(|x| ProbePoint {
                condition: None,
                ..x.clone()
            })
            .filter(|x| {
                let text = grammar::printer::point(&ProbePoint {
                    optional: false,
                    sufficient: false,
                    ..x.clone()
                });
                p.sites.iter().any(|s| s.point == text)
            })
            .collect();
        if points.is_empty() {
            points = p.points.clone();
        }
        let probe = File {
            id: grammar::FileId(0),
            items: vec![Item::Probe(Probe {
                points,
                body: p.body.clone(),
                private: false,
                span: p.span,
            })],
        };
        out.push_str(&grammar::printer::print_file(&probe));
    }
    out
}

/// The builtin an embedded-C expression calls, when all it does is call a
/// C function of no arguments that is also one of our builtins (comments
/// aside): `%{ /* pure */ _stp_is_compat_task() %}`.
fn embedded_call(code: &str) -> Option<String> {
    let mut text = String::new();
    let mut rest = code;
    while let Some(start) = rest.find("/*") {
        text.push_str(&rest[..start]);
        let end = rest[start + 2..].find("*/")? + start + 4;
        rest = &rest[end..];
    }
    text.push_str(rest);
    let call = text.trim().trim_end_matches(';').trim();
    let name = call.strip_suffix("()")?.trim_end();
    let ident = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (ident && crate::ir::builtins::Builtin::from_name(name).is_some()).then(|| name.to_string())
}

/// The variables a probe body assigns or increments.
fn written_vars(body: &Block) -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    grammar::visit::walk_block(body, &mut |e| {
        let target = match &e.kind {
            ExprKind::Assign { lhs, .. } => lhs,
            ExprKind::PreCrement { operand, .. } | ExprKind::PostCrement { operand, .. } => operand,
            _ => return,
        };
        if let ExprKind::Var(v) = &target.kind {
            out.insert(v.clone());
        }
    });
    out
}
