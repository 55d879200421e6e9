//! stap's pretty printing: a target value followed by `$` (or `$$`) is a
//! string, the value formatted by its type: `$n$`, `$n->in$$`,
//! `@cast(p, "struct node")$`, `@var("cfg")$`, `$return$`, and the
//! context strings `$$parms$`, `$$vars$`, `$$locals$`, `$$return$`.
//!
//! The rules are stap's (its `dwarf_pretty_print`), so the same script
//! prints the same text:
//!
//! * integers, `bool` and enums `%i` (signed) or `%u`; characters
//!   `'%#c'`; floating point `?`;
//! * a pointer to characters (and an array of them) the quoted string it
//!   points to (`user_string_quoted`, `kernel_string_quoted` for kernel
//!   types); other pointers `%p` (`void *` too); a function pointer at the
//!   top `<function>:%p`;
//! * a struct or union `{.a=..., .b=...}` with its members one level deep
//!   (`$`) or all levels (`$$`); below that `{...}`; anonymous members as
//!   `<union>=` (and, as stap spells them, `<class>=` for a struct);
//!   bitfields numerically; a struct only declared `{...}`;
//! * an array its first element, `[e, ...]` (`[...]` below the top with
//!   one `$`);
//! * at the top, a pointer is followed: `$p$` of a `struct node *` prints
//!   the node (stap's rule, and so also its quirk: `$ip$` of an `int *`
//!   prints the pointer's value with `%i`, and `$argv$` of a `char **`
//!   the quoted bytes where `argv` points);
//! * at most 32 values are read, then `...`;
//! * a member that cannot be read here (a location the probe cannot
//!   reach) prints `?`; a read that faults at run time makes the whole
//!   string `ERROR`.
//!
//! How: the value's type is the one the resolver found for its chain
//! (`ValueAt`, noted by `target.rs`, `cast_read` and `@var`), walked
//! with [`crate::debuginfo::shape`]; each leaf is the same value with the
//! member chain to it, resolved as any `$n->in->x` is. The format and the
//! leaves go into a function made for the value,
//! `try { return sprintf(...) } catch { return "ERROR" }`, as stap makes
//! one; its arguments are what must be evaluated once (a `@cast`'s
//! address, computed indexes). Character types wider than a byte are
//! printed as characters, not as UTF-16/32 strings (stap has
//! `user_string_quoted_utf16`, which we lack); C++ base classes are not
//! walked.

use super::casts::Source;
use super::target::string;
use super::{autocast, const_value, Resolver, R};
use crate::debuginfo::dwarf::TypeTag;
use crate::debuginfo::shape::{Shape, ShapeMember};
use crate::debuginfo::TypeHandle;
use crate::kernel_btf::Kernel;
use grammar::ast::*;
use grammar::Span;

/// The type of a resolved value and where its types come from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ValueAt {
    pub source: Source,
    pub handle: TypeHandle,
}

/// stap's bound on the values one pretty string reads (its `sprintf`'s).
const MAX_ARGS: usize = 32;

/// The names the made function gives what it is passed.
const POINTER: &str = "__pretty_pointer";
const PREFIX: &str = "__stapxx_pretty_";

/// One pretty string being built.
struct Out {
    fmt: String,
    args: Vec<Expr>,
    /// `$$`: every level.
    full: bool,
    /// The value the leaves start from, and its chain.
    base: DwarfBase,
    chain: Vec<Deref>,
    source: Source,
    span: Span,
}

impl Resolver<'_, '_> {
    /// `d`, which has a `$`/`$$` suffix, as a string. Err: it does not
    /// resolve here.
    pub(super) fn pretty(
        &mut self,
        d: DwarfValue,
        amp: bool,
        span: Span,
    ) -> R<Result<Expr, String>> {
        if amp {
            return Ok(Err(
                "cannot take the address of a pretty-printed value".into()
            ));
        }
        if let DwarfBase::Target(name) = &d.base {
            if let Some(kind) = name.strip_prefix('$') {
                return self.pretty_context(kind, d.pretty, span);
            }
        }
        // What the made function is passed: evaluated once, in the caller.
        let mut params: Vec<String> = Vec::new();
        let mut call_args: Vec<Expr> = Vec::new();
        let var = |name: &str| Expr {
            kind: ExprKind::Var(name.to_string()),
            span,
        };
        let base = match d.base {
            DwarfBase::Cast { addr, ty, module } => {
                call_args.push(self.expr(*addr)?);
                params.push(POINTER.into());
                DwarfBase::Cast {
                    addr: Box::new(var(POINTER)),
                    ty,
                    module,
                }
            }
            DwarfBase::Autocast(b) => {
                let Some(t) = self.known_type(&b) else {
                    return Ok(Err(autocast::untyped(&b)));
                };
                call_args.push(self.expr(*b)?);
                params.push(POINTER.into());
                self.autotypes.insert(POINTER.into(), t);
                DwarfBase::Autocast(Box::new(var(POINTER)))
            }
            other => other,
        };
        let mut chain = Vec::new();
        for step in d.chain {
            match step {
                Deref::Index(e) => {
                    let e = self.expr(e)?;
                    if const_value(&e).is_some() {
                        chain.push(Deref::Index(e));
                    } else {
                        let name = format!("__pretty_index{}", params.len());
                        call_args.push(e);
                        chain.push(Deref::Index(var(&name)));
                        params.push(name);
                    }
                }
                member => chain.push(member),
            }
        }
        // The value's type, as the resolver finds the value.
        self.last_value = None;
        let whole = DwarfValue {
            base: base.clone(),
            chain: chain.clone(),
            pretty: 0,
        };
        let read = self.try_dwarf(whole, false, span, false)?;
        let Some(at) = self.last_value.take() else {
            if self.sites.as_ref().is_some_and(|s| s.len() > 1) {
                // Typed differently at the sites: one handler each.
                self.split = true;
            }
            return Ok(Err(match read {
                Err(why) => why,
                Ok(_) => "this value has no C type to pretty-print it by (use @cast)".into(),
            }));
        };
        let mut out = Out {
            fmt: String::new(),
            args: Vec::new(),
            full: d.pretty > 1,
            base,
            chain,
            source: at.source.clone(),
            span,
        };
        self.value(&mut out, &at.handle, &[], true)?;
        let name = self.made_function(params, out.fmt, out.args, span);
        Ok(Ok(Expr {
            kind: ExprKind::Call {
                name,
                args: call_args,
            },
            span,
        }))
    }

    /// One value of type `ty` at `path` from the base (stap's `recurse`).
    fn value(&mut self, out: &mut Out, ty: &TypeHandle, path: &[Deref], top: bool) -> R<()> {
        match self.shape_of(&out.source, ty) {
            Some(Shape::Number { signed }) => {
                self.leaf(out, if signed { "%i" } else { "%u" }, path, false);
            }
            Some(Shape::Char { .. }) => {
                self.leaf(out, "'%#c'", path, false);
            }
            Some(Shape::Array { elem }) => {
                if !top && !out.full {
                    out.fmt.push_str("[...]");
                } else if !self.chars(out, &elem, path) {
                    out.fmt.push('[');
                    if out.args.len() < MAX_ARGS {
                        let mut at = path.to_vec();
                        at.push(Deref::Index(super::reads::num(0, out.span)));
                        self.value(out, &elem, &at, false)?;
                    }
                    out.fmt.push_str(", ...]");
                }
            }
            Some(Shape::Pointer { target }) => {
                let target = target
                    .filter(|t| !matches!(self.shape_of(&out.source, t), Some(Shape::Void) | None));
                match target {
                    Some(t) if self.chars(out, &t, path) => {}
                    Some(t) if top => self.value(out, &t, path, true)?,
                    _ => {
                        self.leaf(out, "%p", path, false);
                    }
                }
            }
            Some(Shape::Function) => {
                self.leaf(out, "<function>:%p", path, false);
            }
            Some(Shape::Aggregate { members, .. }) => match members {
                None => out.fmt.push_str("{...}"),
                Some(members) => {
                    out.fmt.push('{');
                    if top || out.full {
                        let mut count = 0;
                        self.members(out, &members, path, &mut count)?;
                    } else {
                        out.fmt.push_str("...");
                    }
                    out.fmt.push('}');
                }
            },
            Some(Shape::Float | Shape::Void | Shape::Other) | None => out.fmt.push('?'),
        }
        Ok(())
    }

    /// The members of an aggregate, `.name=value` each (stap's
    /// `recurse_struct_members`): anonymous ones print their own braces
    /// and are reached by their members' names.
    fn members(
        &mut self,
        out: &mut Out,
        members: &[ShapeMember],
        path: &[Deref],
        count: &mut usize,
    ) -> R<()> {
        for m in members {
            *count += 1;
            if *count > 1 {
                out.fmt.push_str(", ");
            }
            if out.args.len() >= MAX_ARGS {
                out.fmt.push_str("...");
                break;
            }
            let mut at = path.to_vec();
            match &m.name {
                Some(name) => {
                    out.fmt.push('.');
                    out.fmt.push_str(name);
                    at.push(Deref::Member {
                        name: name.clone(),
                        span: out.span,
                    });
                }
                None => match self.shape_of(&out.source, &m.ty) {
                    Some(Shape::Aggregate {
                        tag: TypeTag::Union,
                        ..
                    }) => out.fmt.push_str("<union>"),
                    // stap's spelling (the two are swapped there).
                    Some(Shape::Aggregate {
                        tag: TypeTag::Struct,
                        ..
                    }) => out.fmt.push_str("<class>"),
                    Some(Shape::Aggregate {
                        tag: TypeTag::Class,
                        ..
                    }) => out.fmt.push_str("<struct>"),
                    _ => {}
                },
            }
            out.fmt.push('=');
            if m.bitfield {
                match self.shape_of(&out.source, &m.ty) {
                    Some(Shape::Number { signed: true } | Shape::Char { .. }) => {
                        self.leaf(out, "%i", &at, false);
                    }
                    Some(Shape::Number { signed: false }) => {
                        self.leaf(out, "%u", &at, false);
                    }
                    _ => out.fmt.push('?'),
                }
            } else {
                self.value(out, &m.ty, &at, false)?;
            }
        }
        Ok(())
    }

    /// A value of type `elem` (what `path` points to or holds) as the
    /// quoted string there, when `elem` is a one-byte character (stap's
    /// `print_chars`).
    fn chars(&mut self, out: &mut Out, elem: &TypeHandle, path: &[Deref]) -> bool {
        if !matches!(
            self.shape_of(&out.source, elem),
            Some(Shape::Char { size: 1 })
        ) {
            return false;
        }
        self.leaf(out, "%s", path, true);
        true
    }

    /// The value at `path` as `conv`, or `?` when it cannot be read here
    /// (stap's `push_deref`). `quoted`: it is the address of a string.
    fn leaf(&mut self, out: &mut Out, conv: &str, path: &[Deref], quoted: bool) -> bool {
        let mut chain = out.chain.clone();
        chain.extend(path.iter().cloned());
        let d = DwarfValue {
            base: out.base.clone(),
            chain,
            pretty: 0,
        };
        let e = match self.try_dwarf(d, false, out.span, true) {
            Ok(Ok(e)) => e,
            _ => {
                out.fmt.push('?');
                return false;
            }
        };
        let e = if quoted {
            let reader = match out.source {
                Source::Kernel => "kernel_string_quoted",
                Source::User(_) => "user_string_quoted",
            };
            super::reads::call(reader, vec![e], out.span)
        } else {
            e
        };
        out.fmt.push_str(conv);
        out.args.push(e);
        true
    }

    /// The shape of `ty` in its source's types; `None`: it cannot be
    /// looked at.
    fn shape_of(&mut self, source: &Source, ty: &TypeHandle) -> Option<Shape> {
        match source {
            Source::Kernel => Kernel::get()?.resolver().shape(ty).ok(),
            Source::User(m) => {
                let m = self.modules.get(m.as_deref()).ok()?;
                m.resolver().ok()?.shape(ty).ok()
            }
        }
    }

    /// `$$parms$`, `$$vars$`, `$$locals$`, `$$return$`: each variable's
    /// pretty string, `name=...` (`name=?` where it cannot be).
    fn pretty_context(&mut self, kind: &str, depth: u8, span: Span) -> R<Result<Expr, String>> {
        let names = match self.context_names(kind) {
            Ok(n) => n,
            Err(why) => return Ok(Err(why)),
        };
        let mut fmt = String::new();
        let mut args = Vec::new();
        for name in names {
            if !fmt.is_empty() {
                fmt.push(' ');
            }
            fmt.push_str(&name);
            let d = DwarfValue {
                base: DwarfBase::Target(name),
                chain: Vec::new(),
                pretty: depth,
            };
            match self.pretty(d, false, span)? {
                Ok(e) => {
                    fmt.push_str("=%s");
                    args.push(e);
                }
                Err(_) => fmt.push_str("=?"),
            }
        }
        if args.is_empty() {
            return Ok(Ok(string(&fmt, span)));
        }
        args.insert(0, string(&fmt, span));
        Ok(Ok(super::reads::call("sprintf", args, span)))
    }

    /// The variables a context string lists at this handler's sites, all
    /// alike (else the handler is split per site).
    fn context_names(&mut self, kind: &str) -> Result<Vec<String>, String> {
        use crate::probes::trace::TpArgs;
        use crate::probes::SiteKind;
        let sites = self.sites.clone().unwrap_or_default();
        let mut lists: Vec<Vec<String>> = Vec::new();
        for site in &sites {
            let names: Vec<String> = match &site.kind {
                SiteKind::Uprobe(u) if u.marker.is_some() => {
                    return Err(format!(
                        "'$${kind}$': a marker's arguments have no C type to pretty-print them by (use $${kind})"
                    ))
                }
                SiteKind::Uprobe(u) => {
                    // A function DWARF does not describe lists nothing.
                    let Some(info) = &u.info else {
                        lists.push(Vec::new());
                        continue;
                    };
                    let params = info.params.iter().map(|v| v.name.clone());
                    let locals = info.locals.iter().map(|v| v.name.clone());
                    match kind {
                        "parms" => params.collect(),
                        "locals" => locals.collect(),
                        "vars" => params.chain(locals).collect(),
                        "return" if !u.is_return => {
                            return Err(format!(
                                "'$$return$' is only available in .return probes (probe of function '{}')",
                                info.name
                            ))
                        }
                        "return" => info.return_type.iter().map(|_| "return".into()).collect(),
                        other => return Err(unknown_context(other)),
                    }
                }
                SiteKind::Tracepoint(tp) => match (kind, &tp.args) {
                    ("parms" | "vars", TpArgs::Typed(args)) => {
                        args.iter().map(|a| a.name.clone()).collect()
                    }
                    ("parms" | "vars", TpArgs::Record(fields)) => {
                        fields.iter().map(|f| f.name.clone()).collect()
                    }
                    ("locals", _) => Vec::new(),
                    ("return", _) => {
                        return Err("'$$return$' is only available in .return probes".into())
                    }
                    (other, _) => return Err(unknown_context(other)),
                },
                _ => {
                    return Err(format!(
                        "'$${kind}$' used outside a function or tracepoint probe (probe {})",
                        site.point
                    ))
                }
            };
            lists.push(names);
        }
        let Some(first) = lists.first().cloned() else {
            return Err(format!("'$${kind}$' used outside a probe"));
        };
        if lists.iter().any(|l| *l != first) {
            self.split = true;
        }
        Ok(first)
    }

    /// The function that formats one pretty value, made once per distinct
    /// body: `try { return sprintf(fmt, args) } catch { return "ERROR" }`.
    fn made_function(
        &mut self,
        params: Vec<String>,
        fmt: String,
        args: Vec<Expr>,
        span: Span,
    ) -> String {
        let stmt = |kind| Stmt { kind, span };
        let ret = |e: Expr| stmt(StmtKind::Return(Some(e)));
        let mut sargs = vec![string(&fmt, span)];
        sargs.extend(args);
        let body = Block {
            stmts: vec![stmt(StmtKind::Try {
                body: Block {
                    stmts: vec![ret(super::reads::call("sprintf", sargs, span))],
                    span,
                },
                var: None,
                handler: Block {
                    stmts: vec![ret(string("ERROR", span))],
                    span,
                },
            })],
            span,
        };
        let params: Vec<Param> = params
            .into_iter()
            .map(|name| Param {
                name,
                ty: Some(TypeName::Long),
                span,
            })
            .collect();
        let mut f = Function {
            name: String::new(),
            ret: Some(TypeName::String),
            params,
            body: FunctionBody::Script(body),
            private: false,
            span,
        };
        // The same text (whatever the spans) is the same function.
        let text = listing(&f);
        if let Some(same) = self
            .resolved_functions
            .iter()
            .filter(|g| g.name.starts_with(PREFIX))
            .find(|g| {
                listing(&Function {
                    name: String::new(),
                    ..(*g).clone()
                }) == text
            })
        {
            return same.name.clone();
        }
        // Numbered in the order made; a rollback or a split drops the
        // latest ones only, so the count of those left is a free number.
        let made = self
            .resolved_functions
            .iter()
            .filter(|g| g.name.starts_with(PREFIX))
            .count();
        f.name = format!("{PREFIX}{made}");
        self.resolved_functions.push(f.clone());
        f.name
    }
}

/// A function as the `-p2` listing prints it.
fn listing(f: &Function) -> String {
    grammar::printer::print_file(&File {
        id: grammar::FileId(0),
        items: vec![Item::Function(f.clone())],
    })
}

fn unknown_context(kind: &str) -> String {
    format!("unknown context variable '$${kind}' (stap has $$vars, $$parms, $$locals and $$return)")
}
