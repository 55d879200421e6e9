//! The handlers of a probe: its sites grouped by kind (one handler per
//! group, or per site where the sites read a target variable or a site
//! fact differently), the point condition and a kind's guard folded into
//! the body, `@entry` values carried from entry to return, and the facts
//! of the site a handler runs at (`pp()`, `probefunc()`, load biases seen
//! from a probe's own `rip` when no process exists yet).

use super::{reads, ResolvedProbe, Resolver, R};
use crate::probes::{Site, SiteKind};
use grammar::ast::*;
use grammar::{Diagnostic, Span};

/// The return handler's local that holds an `@entry` value once taken
/// from `__stapxx_entryN` (see `take_entries`).
fn taken_local(global: &str) -> String {
    format!("{global}_taken")
}

/// `__stapxx_entryN[tid()]`
pub(super) fn entry_slot(global: &str, span: Span) -> Expr {
    Expr {
        span,
        kind: ExprKind::Index {
            base: Box::new(Expr {
                span,
                kind: ExprKind::Var(global.to_string()),
            }),
            keys: vec![Expr {
                span,
                kind: ExprKind::Call {
                    name: "tid".into(),
                    args: vec![],
                },
            }],
        },
    }
}

impl Resolver<'_, '_> {
    /// Is the handler being resolved at a return: a
    /// `process(..).function(..).return`, or a system call's exit reached
    /// through its `syscall.NAME.return` alias (probes/syscall.rs)?
    pub(super) fn in_return_probe(&self) -> bool {
        self.sites.as_ref().is_some_and(|sites| {
            !sites.is_empty()
                && sites.iter().all(|s| match &s.kind {
                    SiteKind::Uprobe(u) => u.is_return,
                    SiteKind::Tracepoint(t) => t.is_syscall_exit(),
                    _ => false,
                })
        })
    }

    /// Whether `$name` (`$$name` when it starts with `$`) is read at entry
    /// in this handler, as stap does in `.return` probes: a function's
    /// variables other than `$return`; a system call's parameters (and
    /// `$$parms`, `$$vars`), while its exit event's own variables (`$ret`)
    /// are read at the exit.
    pub(super) fn at_entry(&self, name: &str) -> bool {
        if !self.in_return_probe() || name == "return" || name.starts_with("$return") {
            return false;
        }
        self.sites.iter().flatten().all(|s| match &s.kind {
            SiteKind::Tracepoint(t) => t
                .syscall
                .as_ref()
                .is_some_and(|sc| sc.param(name).is_some() || name == "$parms" || name == "$vars"),
            _ => true,
        })
    }

    /// `pp()`, `ppfunc()`, `pn()` and, in function probes, `probefunc()`
    /// are facts of the site a kernel handler runs at: the site's point and
    /// function name, as text (`ppfunc()` and `pn()` in host handlers
    /// too). Sites that differ get one handler each (as for target
    /// variables). `None`: leave the call to the runtime (host handlers
    /// know their point; `probefunc()` of a sample is the symbol of the
    /// interrupted address).
    pub(super) fn site_text(&mut self, name: &str) -> Option<String> {
        let sites = self.sites.as_ref()?;
        let texts: Vec<String> = sites
            .iter()
            .map(|s| match (name, &s.kind) {
                // stap's rule, the one the builtin follows in script
                // functions: the name in the point's text ("" for marks
                // and PLT stubs, whose points name an address).
                ("ppfunc", _) => Some(crate::ir::builtins::ppfunc_of(&s.pp()).to_string()),
                ("pn", _) => Some(s.pn()),
                _ if s.prog_kind().is_none() => None,
                ("pp", _) => Some(s.pp()),
                ("probefunc", SiteKind::Uprobe(u)) => Some(match &u.info {
                    Some(i) => i.name.clone(),
                    None => u.function.clone(),
                }),
                _ => None,
            })
            .collect::<Option<Vec<String>>>()?;
        let first = texts.first()?.clone();
        if texts.iter().any(|t| *t != first) {
            self.split = true;
        }
        Some(first)
    }

    /// Whether the script function `name` calls `pp()`, `ppfunc()`, `pn()`
    /// or `probefunc()`, itself or through the functions it calls.
    pub(super) fn reaches_site_text(&mut self, name: &str) -> bool {
        if let Some(&known) = self.site_text_users.get(name) {
            return known;
        }
        // Assumed not while it is looked at (recursion ends there).
        self.site_text_users.insert(name.to_string(), false);
        let Some(FunctionBody::Script(body)) = self.functions.get(name).map(|f| &f.body) else {
            return false;
        };
        let mut calls = Vec::new();
        grammar::visit::walk_block(body, &mut |e| {
            if let ExprKind::Call { name, args } = &e.kind {
                calls.push((name.clone(), args.is_empty()));
            }
        });
        let reaches = calls.into_iter().any(|(callee, no_args)| {
            (no_args && matches!(callee.as_str(), "pp" | "ppfunc" | "pn" | "probefunc"))
                || (callee != name && self.reaches_site_text(&callee))
        });
        self.site_text_users.insert(name.to_string(), reaches);
        reaches
    }

    /// Where module `path` is loaded, as an expression, when no process
    /// exists to read it from yet (`-c`): in a uprobe on that module the
    /// probe's own `rip` minus its link-time address. `None` when the
    /// load-time fact will do (or nothing better is known).
    pub(super) fn site_bias(
        &self,
        u: &crate::probes::process::UprobeSite,
        path: &str,
    ) -> Option<Expr> {
        if self.modules.has_process || u.is_return || u.module != path {
            return None;
        }
        let span = Span::default();
        let rip = reads::call(
            "u_register",
            vec![Expr {
                kind: ExprKind::String("rip".into()),
                span,
            }],
            span,
        );
        Some(Expr {
            kind: ExprKind::Binary {
                op: BinOp::Sub,
                lhs: Box::new(rip),
                rhs: Box::new(reads::num(u.address as i64, span)),
            },
            span,
        })
    }

    /// The run-time address of `link` in module `path`: from each site
    /// where the handler's sites can tell (sites that differ get one handler
    /// each), else from the load-time bias.
    pub(super) fn module_address(&mut self, path: &str, link: u64, span: Span) -> Expr {
        let per_site: Option<Vec<Expr>> = self.sites.as_ref().and_then(|sites| {
            sites
                .iter()
                .map(|s| match &s.kind {
                    SiteKind::Uprobe(u) => self.site_bias(u, path),
                    _ => None,
                })
                .collect()
        });
        match per_site {
            Some(v) if !v.is_empty() => {
                if v.iter().any(|e| *e != v[0]) {
                    self.split = true;
                }
                let b = v[0].clone();
                Expr {
                    kind: ExprKind::Binary {
                        op: BinOp::Add,
                        lhs: Box::new(b),
                        rhs: Box::new(reads::num(link as i64, span)),
                    },
                    span,
                }
            }
            _ => reads::var_address(path, link, span),
        }
    }

    /// The entry sites of the return sites being resolved.
    pub(super) fn entry_sites(&self) -> Vec<Site> {
        self.sites
            .iter()
            .flatten()
            .map(|s| {
                let mut s = s.clone();
                match &s.kind {
                    SiteKind::Uprobe(u) => s.kind = SiteKind::Uprobe(u.entry_site()),
                    SiteKind::Tracepoint(t) => {
                        if let Some(e) = t.syscall_entry() {
                            s.point = format!("kernel.trace(\"{}:{}\")", e.category, e.name);
                            s.kind = SiteKind::Tracepoint(e);
                        }
                    }
                    _ => {}
                }
                if let Some(p) = s.point.strip_suffix(".return") {
                    s.point = p.to_string();
                }
                s.condition = None;
                s
            })
            .collect()
    }

    /// `@entry(e)`: e evaluated when the function was entered.
    pub(super) fn entry(&mut self, inner: Expr, span: Span) -> R<Expr> {
        if !self.in_return_probe() {
            return Err(Diagnostic::error(
                span,
                "@entry(...) is only meaningful in a .return probe (process(...).function(...).return, syscall.NAME.return)",
            ));
        }
        let sites = self.entry_sites();
        let points = self
            .points
            .iter()
            .map(|p| {
                let mut p = p.clone();
                if p.components.last().is_some_and(|c| c.name == "return") {
                    p.components.pop();
                }
                p.condition = None;
                p
            })
            .collect();
        let global = format!("__stapxx_entry{}", self.entries.len());
        self.entries.push((sites, points, inner, global.clone()));
        Ok(Expr {
            span,
            kind: ExprKind::Var(taken_local(&global)),
        })
    }

    /// The return handler takes its `@entry` values (those from `mark` on)
    /// out of their maps first thing, whatever path it takes later: as a
    /// kretprobe's instance data, each value lives from one entry to its
    /// return, so a long session does not fill the map with threads' old
    /// values.
    fn take_entries(&self, mark: usize, span: Span) -> Vec<Stmt> {
        let mut out = Vec::new();
        for (.., global) in &self.entries[mark..] {
            out.push(Stmt {
                kind: StmtKind::Expr(Expr {
                    span,
                    kind: ExprKind::Assign {
                        op: AssignOp::Assign,
                        lhs: Box::new(Expr {
                            span,
                            kind: ExprKind::Var(taken_local(global)),
                        }),
                        rhs: Box::new(entry_slot(global, span)),
                    },
                }),
                span,
            });
            out.push(Stmt {
                kind: StmtKind::Delete(entry_slot(global, span)),
                span,
            });
        }
        out
    }

    /// One handler of a probe over `sites`. Where the sites read a target
    /// variable from different places (inlined copies, several functions),
    /// each site gets its own reading, as stap compiles one handler per
    /// probe point; sites whose bodies come out the same share one.
    pub(super) fn handler(
        &mut self,
        p: &Probe,
        sites: Vec<Site>,
        out: &mut Vec<ResolvedProbe>,
    ) -> R<()> {
        let sites = self.timers_in_kernel(&p.body, sites);
        let mark = self.entries.len();
        let made = self.resolved_functions.len();
        self.split = false;
        self.calls_site_text = false;
        let body = self.handler_body(p, &sites);
        if !self.split || sites.len() < 2 {
            out.push(ResolvedProbe {
                body: body?,
                sites,
                points: p.points.clone(),
                span: p.span,
            });
            return Ok(());
        }
        self.entries.truncate(mark);
        // Functions made for pretty strings of the body resolved for all
        // the sites at once.
        self.resolved_functions.truncate(made);
        let mut parts: Vec<ResolvedProbe> = Vec::new();
        for site in sites {
            self.split = false;
            let body = self.handler_body(p, std::slice::from_ref(&site))?;
            // (Known once a body resolves: the first may have stopped
            // before the call.)
            let by_point = self.calls_site_text;
            let same = |q: &&mut ResolvedProbe| {
                q.body == body && (!by_point || q.sites[0].pp() == site.pp())
            };
            match parts.iter_mut().find(same) {
                Some(q) => q.sites.push(site),
                None => parts.push(ResolvedProbe {
                    body,
                    sites: vec![site],
                    points: p.points.clone(),
                    span: p.span,
                }),
            }
        }
        out.extend(parts);
        Ok(())
    }

    /// The body for `sites`, under their guard and point condition
    /// (`if (guard && c)`).
    fn handler_body(&mut self, p: &Probe, sites: &[Site]) -> R<Block> {
        self.sites = Some(sites.to_vec());
        self.points = p.points.clone();
        let mark = self.entries.len();
        self.autotypes.clear();
        let mut body = self.block(p.body.clone())?;
        let taken = self.take_entries(mark, body.span);
        let first = sites.first();
        let cond = match (
            first.and_then(|s| s.guard().cloned()),
            first.and_then(|s| s.condition.clone()),
        ) {
            (None, None) => {
                body.stmts.splice(0..0, taken);
                return Ok(body);
            }
            (Some(g), None) => g,
            (None, Some(c)) => c,
            (Some(g), Some(c)) => Expr {
                span: c.span,
                kind: ExprKind::Binary {
                    op: BinOp::And,
                    lhs: Box::new(g),
                    rhs: Box::new(c),
                },
            },
        };
        let cond = self.expr(cond)?;
        let span = body.span;
        Ok(Block {
            stmts: taken
                .into_iter()
                .chain([Stmt {
                    kind: StmtKind::If {
                        cond,
                        then: Box::new(Stmt {
                            kind: StmtKind::Block(body),
                            span,
                        }),
                        otherwise: None,
                    },
                    span,
                }])
                .collect(),
            span,
        })
    }
}
