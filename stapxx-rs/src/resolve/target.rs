//! Target variables of function probes as plain stap.
//!
//! In `process("P").function("F")` (a uprobe at the function's probe
//! address, see [`crate::debuginfo::params`]):
//!
//! * `$param` in a register: `u_register("rdi")`, narrowed to the declared
//!   type (`int` keeps the low 32 bits, sign-extended);
//! * `$param` in memory: the existing read chain from its address, e.g.
//!   `user_int64(u_register("rsp") + 8)` for a seventh argument at entry;
//! * `$ptr->member...`: the pointer's value, then the `@cast`-style reads
//!   (`user_int32(u_register("rdi") + 8)`);
//! * `$$parms`, `$$locals`, `$$vars`: `sprintf("a=%#x b=%#x", ...)`, with
//!   `name=?` for values that cannot be read, as stap prints them.
//!
//! In `.return` probes `$return` is `returnval()` narrowed to the return
//! type (chains work as for pointer parameters) and `$$return` is
//! `sprintf("return=%#x", ...)`. Parameters there are their values at
//! entry, saved by a probe there (`handlers.rs`, as `@entry` is).
//! `$v$` pretty printing is `pretty.rs`'s, over the types noted here.

use super::casts::Source;
use super::pretty::ValueAt;
use super::reads::{call, num};
use super::{reads, Modules, Resolver, R};
use crate::debuginfo::params::{x86_64_register_name, FunctionInfo, ParamLocation};
use crate::debuginfo::shape::Shape;
use crate::debuginfo::{Access, Fetch, Module, Resolved as Chain, Step, TypeHandle, ValueKind};
use crate::probes::SiteKind;
use grammar::ast::{BinOp, Expr, ExprKind};
use grammar::{Diagnostic, Span};

/// What a target variable is read in: one function of one module.
struct FunctionSite<'a> {
    function: &'a str,
    is_return: bool,
    /// The module's load bias as seen from the probe (`-c`: no process
    /// yet), for variables at fixed addresses.
    bias: Option<Expr>,
}

/// Said after a variable the DWARF gives no value for at the probe
/// address: the way past it stap users know.
pub(super) const SKIP_HINT: &str = " (--skip-badvars reads it as 0)";

pub(super) fn bin(op: BinOp, lhs: Expr, rhs: Expr, span: Span) -> Expr {
    Expr {
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span,
    }
}

pub(super) fn string(s: &str, span: Span) -> Expr {
    Expr {
        kind: ExprKind::String(s.to_string()),
        span,
    }
}

/// `e + n` (`e - n` for a negative `n`, nothing for 0).
pub(super) fn plus(e: Expr, n: i64, span: Span) -> Expr {
    if let ExprKind::Number(a) = e.kind {
        return num(a.wrapping_add(n), span);
    }
    match n {
        0 => e,
        n if n < 0 && n != i64::MIN => bin(BinOp::Sub, e, num(-n, span), span),
        n => bin(BinOp::Add, e, num(n, span), span),
    }
}

/// A register's 64 bits narrowed to a `size`-byte integer.
pub(super) fn narrow(v: Expr, size: u8, signed: bool, span: Span) -> Expr {
    if size >= 8 {
        return v;
    }
    let bits = u32::from(size) * 8;
    if let ExprKind::Number(n) = v.kind {
        let shift = 64 - bits;
        return num(
            if signed {
                (n << shift) >> shift
            } else {
                n & ((1i64 << bits) - 1)
            },
            span,
        );
    }
    if signed {
        let up = bin(BinOp::Shl, v, num(i64::from(64 - bits), span), span);
        bin(BinOp::Shr, up, num(i64::from(64 - bits), span), span)
    } else {
        bin(BinOp::BitAnd, v, num((1i64 << bits) - 1, span), span)
    }
}

/// What a chain of steps from one variable turns into.
struct Var<'a> {
    display: String,
    ty: &'a TypeHandle,
    location: ParamLocation,
}

impl Resolver<'_, '_> {
    /// `$name` (or `$$parms` and friends when `name` starts with `$`)
    /// followed by `steps`. Outer error: a hard failure; inner: the name
    /// does not resolve here (`@defined` is 0).
    pub(super) fn target_var(
        &mut self,
        name: &str,
        steps: &[Step],
        indexes: &[Expr],
        amp: bool,
        span: Span,
    ) -> R<Result<Expr, String>> {
        let Some(sites) = self.sites.clone() else {
            return Ok(Err(format!(
                "target variable '${name}' used outside a function probe (in a script function)"
            )));
        };
        let mut out: Vec<(String, u64, Expr)> = Vec::new();
        // Why a function has no such variable, when one has none.
        let mut missing: Option<String> = None;
        // The value's type at each site (for pretty printing).
        let mut types: Vec<Option<ValueAt>> = Vec::new();
        for site in &sites {
            if let SiteKind::Tracepoint(tp) = &site.kind {
                // Task-filtered events have variables when their kind gives
                // them some (`process.syscall`), not `process.begin`.
                let has_vars =
                    !matches!(&tp.args, crate::probes::trace::TpArgs::Record(f) if f.is_empty());
                if tp.filter.is_none() || has_vars {
                    types.push(super::tracepoints::var_type(tp, name, steps).map(|handle| {
                        ValueAt {
                            source: Source::Kernel,
                            handle,
                        }
                    }));
                    match super::tracepoints::var(tp, name, steps, indexes, amp, span) {
                        Ok(e) => out.push((format!("{}:{}", tp.category, tp.name), 0, e)),
                        Err(msg) => return Ok(Err(msg)),
                    }
                    continue;
                }
            }
            let SiteKind::Uprobe(u) = &site.kind else {
                return Ok(Err(format!(
                    "target variable '${name}' used outside a function probe (probe {})",
                    site.point
                )));
            };
            if let Some(mk) = &u.marker {
                types.push(None);
                match super::marks::marker_var(mk, name, !steps.is_empty() || amp, span) {
                    Ok(e) => out.push((u.function.clone(), u.entry_address, e)),
                    Err(msg) => return Ok(Err(msg)),
                }
                continue;
            }
            // A PLT stub's `$$name` is the function it calls (stap's only
            // variable of `.plt` probes).
            if u.place == crate::probes::process::Place::Plt
                && name == "$name"
                && steps.is_empty()
                && !amp
            {
                types.push(None);
                out.push((
                    u.function.clone(),
                    u.entry_address,
                    string(&u.function, span),
                ));
                continue;
            }
            let Some(info) = &u.info else {
                // A function DWARF does not describe (`_init` in a
                // wildcard): its context strings are empty, as stap's.
                if name.starts_with('$') && steps.is_empty() && !amp {
                    types.push(None);
                    out.push((u.function.clone(), u.entry_address, string("", span)));
                    continue;
                }
                // Where the debug info was looked for (paths, debuginfod
                // servers), when the module has none at all.
                let why = match self
                    .modules
                    .get(Some(&u.module))
                    .map(|m| m.own_dwarf_error())
                {
                    Ok(Some(e)) => format!(": {e}"),
                    _ => " (install its debug info or rebuild with -g)".to_string(),
                };
                return Ok(Err(format!(
                    "target variable '${name}': {} has no DWARF for function '{}'{why}",
                    u.module, u.function
                )));
            };
            let bias = self.site_bias(u, &u.module);
            let m = match self.modules.get(Some(&u.module)) {
                Ok(m) => m,
                Err(e) => return Err(Diagnostic::error(span, e)),
            };
            let fs = FunctionSite {
                function: &u.function,
                is_return: u.is_return,
                bias,
            };
            types.push(var_type(m, info, name, steps).map(|handle| ValueAt {
                source: Source::User(Some(u.module.clone())),
                handle,
            }));
            match render(m, info, &fs, name, steps, indexes, amp, span)? {
                Ok(e) => out.push((info.name.clone(), info.probe_address, e)),
                Err(msg) => {
                    missing.get_or_insert(msg);
                }
            }
        }
        // One type for all the sites, or none (pretty printing then
        // splits the handler per site).
        self.last_value = types.first().cloned().flatten();
        if types.iter().any(|t| *t != self.last_value) {
            self.last_value = None;
        }
        if let Some(msg) = missing {
            // Some of the functions have it, some do not (`$oldmem` of
            // realloc in a probe on malloc too): as in stap, each site
            // decides for itself, so the handler is resolved once per site.
            if !out.is_empty() {
                self.split = true;
            }
            return Ok(Err(msg));
        }
        let Some((_, _, first)) = out.first() else {
            return Ok(Err(format!(
                "target variable '${name}': no function to read it in"
            )));
        };
        if out.iter().all(|(_, _, e)| e == first) {
            return Ok(Ok(first.clone()));
        }
        // The handler is resolved again, once per site.
        self.split = true;
        let names: Vec<String> = out
            .iter()
            .map(|(n, a, _)| format!("{n} at {a:#x}"))
            .collect();
        Ok(Err(format!(
            "target variable '${name}' is read differently in the functions this probe matches ({})",
            names.join(", ")
        )))
    }
}

/// The type of `$name` + `steps` in one function (`$return`: its
/// return type), wherever the variable is.
fn var_type(m: &Module, info: &FunctionInfo, name: &str, steps: &[Step]) -> Option<TypeHandle> {
    let ty = match name {
        "return" => info.return_type.as_ref()?,
        _ => &info.variable(name)?.ty,
    };
    Some(m.resolve_from(ty, steps, false).ok()?.value.handle)
}

/// One function's reading of `$name` + `steps`.
#[allow(clippy::too_many_arguments)]
fn render(
    m: &Module,
    info: &FunctionInfo,
    site: &FunctionSite<'_>,
    name: &str,
    steps: &[Step],
    indexes: &[Expr],
    amp: bool,
    span: Span,
) -> R<Result<Expr, String>> {
    let is_x86_64 = m
        .elf()
        .object()
        .is_ok_and(|o| object::Object::architecture(&o) == object::Architecture::X86_64);
    if !is_x86_64 {
        return Ok(Err(format!(
            "target variable '${name}': reading registers is supported on x86-64 only"
        )));
    }
    let fname = &info.name;
    if let Some(kind) = name.strip_prefix('$') {
        if !steps.is_empty() || amp {
            return Ok(Err(format!("'$${kind}' is a string: it has no members")));
        }
        return context_string(m, info, site, kind, span);
    }
    if name == "return" {
        if !site.is_return {
            return Ok(Err(format!(
                "'$return' is only available in .return probes (probe of function '{fname}')"
            )));
        }
        let Some(ty) = &info.return_type else {
            return Ok(Err(format!(
                "function '{fname}' returns void: there is no '$return'"
            )));
        };
        let v = Var {
            display: "$return".into(),
            ty,
            location: ParamLocation::Register(0),
        };
        return value_chain(
            m,
            &v,
            call("returnval", vec![], span),
            steps,
            indexes,
            amp,
            span,
        );
    }
    let Some(var) = info.variable(name) else {
        let mut known: Vec<&str> = info
            .params
            .iter()
            .chain(&info.locals)
            .map(|v| v.name.as_str())
            .collect();
        known.dedup();
        return Ok(Err(format!(
            "target variable '${name}' not found in function '{fname}'{}",
            if known.is_empty() {
                String::new()
            } else {
                format!("; it has: {}", known.join(", "))
            }
        )));
    };
    if site.is_return {
        return Ok(Err(format!(
            "'${name}' in a .return probe is its value at the function's entry (@entry): not supported yet; read it in a .function(\"{}\") probe",
            site.function
        )));
    }
    let v = Var {
        display: format!("${name}"),
        ty: &var.ty,
        location: var.location.clone(),
    };
    read_var(m, info, site, &v, steps, indexes, amp, span)
}

/// `u_register("name")` for a DWARF register number.
fn register(regno: u16, display: &str, span: Span) -> Result<Expr, String> {
    match x86_64_register_name(regno) {
        Some(r) => Ok(call("u_register", vec![string(r, span)], span)),
        None => Err(format!(
            "'{display}' is in DWARF register {regno}, which a probe cannot read"
        )),
    }
}

fn resolve_chain(
    m: &Module,
    ty: &TypeHandle,
    steps: &[Step],
    amp: bool,
    span: Span,
) -> R<Result<Chain, String>> {
    match m.resolve_from(ty, steps, amp) {
        Ok(c) => Ok(Ok(c)),
        Err(e) if Modules::is_unresolved(&e) => Ok(Err(e.to_string())),
        Err(e) => Err(Diagnostic::error(span, e.to_string())),
    }
}

/// The variable's value (or address, or chain) wherever it is.
#[allow(clippy::too_many_arguments)]
fn read_var(
    m: &Module,
    info: &FunctionInfo,
    site: &FunctionSite<'_>,
    v: &Var<'_>,
    steps: &[Step],
    indexes: &[Expr],
    amp: bool,
    span: Span,
) -> R<Result<Expr, String>> {
    let display = &v.display;
    let fname = &info.name;
    // A link-time address as it is in the running process.
    let biased = |a: u64| match &site.bias {
        Some(b) => bin(BinOp::Add, b.clone(), num(a as i64, span), span),
        None => reads::var_address(&m.target_path().display().to_string(), a, span),
    };
    let base = match &v.location {
        ParamLocation::OptimizedOut => {
            // Which of the function's copies, as stap's message says, and
            // the way past it a user has (stap's `--skip-badvars`).
            let copy = match info.call_line.filter(|_| info.inlined) {
                Some(l) => format!("the copy of function '{fname}' inlined at line {l}"),
                None => format!("function '{fname}'"),
            };
            return Ok(Err(format!(
                "'{display}' is optimized out at the probe address {:#x} of {copy}{SKIP_HINT}",
                info.probe_address
            )));
        }
        ParamLocation::Unsupported(why) => {
            return Ok(Err(format!(
                "cannot read '{display}' in function '{fname}': {why}"
            )))
        }
        ParamLocation::Memory { base_reg, offset } => match register(*base_reg, display, span) {
            Ok(r) => plus(r, *offset, span),
            Err(e) => return Ok(Err(e)),
        },
        ParamLocation::Address(a) => biased(*a),
        ParamLocation::MemoryAt(e) => match super::locvalue::expr(e, &biased, display, span) {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        },
        ParamLocation::ValueOf(e) => {
            let value = match super::locvalue::expr(e, &biased, display, span) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            return value_chain(m, v, value, steps, indexes, amp, span);
        }
        ParamLocation::Register(r) => {
            let value = match register(*r, display, span) {
                Ok(e) => e,
                Err(e) => return Ok(Err(e)),
            };
            return value_chain(m, v, value, steps, indexes, amp, span);
        }
        ParamLocation::Computed { base_reg, offset } => {
            let value = match register(*base_reg, display, span) {
                Ok(e) => plus(e, *offset, span),
                Err(e) => return Ok(Err(e)),
            };
            return value_chain(m, v, value, steps, indexes, amp, span);
        }
        ParamLocation::Constant(c) => {
            return value_chain(m, v, num(*c, span), steps, indexes, amp, span)
        }
    };
    // In memory: the same reads as an @var at that address.
    Ok(resolve_chain(m, v.ty, steps, amp, span)?.map(|c| reads::build(base, &c, indexes, span)))
}

/// A variable whose value (not address) is known: a register, a computed
/// value or a constant.
fn value_chain(
    m: &Module,
    v: &Var<'_>,
    value: Expr,
    steps: &[Step],
    indexes: &[Expr],
    amp: bool,
    span: Span,
) -> R<Result<Expr, String>> {
    let display = &v.display;
    if steps.is_empty() && amp {
        return Ok(Err(format!(
            "cannot take the address of '{display}': it is not in memory here"
        )));
    }
    let c = match resolve_chain(m, v.ty, steps, amp, span)? {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    if steps.is_empty() {
        return Ok(match c.fetch {
            Fetch::Load {
                size,
                signed,
                bitfield: None,
            } => Ok(narrow(value, size, signed, span)),
            _ => Err(format!(
                "'{display}' ({}) is held in registers: reading a struct or array value is not supported",
                c.value.name
            )),
        });
    }
    // The chain starts by following the variable as a pointer: that read
    // is the value we already have.
    match c.accesses.split_first() {
        Some((Access::Deref { .. }, rest)) => {
            let c = Chain {
                accesses: rest.to_vec(),
                ..c
            };
            Ok(Ok(reads::build(value, &c, indexes, span)))
        }
        _ => Ok(in_register(value, &c, span).ok_or_else(|| {
            format!("'{display}' is held in registers and is not a pointer: its members cannot be read beyond its first 8 bytes")
        })),
    }
}

/// A member of a struct or union held whole in one register (a small
/// struct passed by value): its bytes are bits of the register.
fn in_register(value: Expr, c: &Chain, span: Span) -> Option<Expr> {
    let off = c.constant_offset()?;
    let Fetch::Load {
        size,
        signed,
        bitfield,
    } = c.fetch
    else {
        return None;
    };
    if off < 0 || off as u64 + u64::from(size) > 8 {
        return None;
    }
    let shifted = match off {
        0 => value,
        n => bin(BinOp::Shr, value, num(n * 8, span), span),
    };
    Some(match bitfield {
        None => narrow(shifted, size, signed, span),
        Some(bf) => reads::bitfield(narrow(shifted, size, false, span), bf, signed, span),
    })
}

/// `$$parms`, `$$locals`, `$$vars`, `$$return` as stap prints them.
fn context_string(
    m: &Module,
    info: &FunctionInfo,
    site: &FunctionSite<'_>,
    kind: &str,
    span: Span,
) -> R<Result<Expr, String>> {
    let fname = &info.name;
    let vars: Vec<_> = match kind {
        "parms" => info.params.iter().collect(),
        "locals" => info.locals.iter().collect(),
        "vars" => info.params.iter().chain(&info.locals).collect(),
        "return" => {
            if !site.is_return {
                return Ok(Err(format!(
                    "'$$return' is only available in .return probes (probe of function '{fname}')"
                )));
            }
            let Some(ty) = &info.return_type else {
                return Ok(Ok(string("", span)));
            };
            let v = Var {
                display: "$return".into(),
                ty,
                location: ParamLocation::Register(0),
            };
            return Ok(
                match value_chain(m, &v, call("returnval", vec![], span), &[], &[], false, span)? {
                    Ok(e) if scalar(m, ty) => Ok(call(
                        "sprintf",
                        vec![string("return=%#x", span), e],
                        span,
                    )),
                    _ => Ok(string("return=?", span)),
                },
            );
        }
        other => {
            return Ok(Err(format!(
                "unknown context variable '$${other}' (stap has $$vars, $$parms, $$locals and $$return)"
            )))
        }
    };
    if site.is_return {
        return Ok(Err(format!(
            "'$${kind}' in a .return probe needs the values at the function's entry: not supported yet"
        )));
    }
    let mut format = String::new();
    let mut args = Vec::new();
    for var in vars {
        if !format.is_empty() {
            format.push(' ');
        }
        let v = Var {
            display: format!("${}", var.name),
            ty: &var.ty,
            location: var.location.clone(),
        };
        // Aggregates are not read, whatever their location (stap's
        // placeholders).
        let placeholder = match m.resolver().and_then(|r| r.shape(&var.ty)) {
            Ok(Shape::Aggregate { .. }) => Some("={...}"),
            Ok(Shape::Array { .. }) => Some("=[...]"),
            _ => None,
        };
        if let Some(p) = placeholder {
            format.push_str(&var.name);
            format.push_str(p);
            continue;
        }
        match read_var(m, info, site, &v, &[], &[], false, span)? {
            Ok(e) if scalar(m, &var.ty) => {
                format.push_str(&var.name);
                format.push_str("=%#x");
                args.push(e);
            }
            _ => {
                format.push_str(&var.name);
                format.push_str("=?");
            }
        }
    }
    if args.is_empty() {
        return Ok(Ok(string(&format, span)));
    }
    args.insert(0, string(&format, span));
    Ok(Ok(call("sprintf", args, span)))
}

/// Whether a value of type `ty` prints as a number.
fn scalar(m: &Module, ty: &TypeHandle) -> bool {
    m.resolve_from(ty, &[], false).is_ok_and(|c| {
        matches!(
            c.value.kind,
            ValueKind::Integer
                | ValueKind::Bool
                | ValueKind::Char
                | ValueKind::Enum
                | ValueKind::Pointer
        )
    })
}
