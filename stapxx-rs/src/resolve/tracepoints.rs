//! Target variables of `kernel.trace(...)` probes as plain stap.
//!
//! * Typed events (a raw tracepoint program, see `probes/trace.rs`):
//!   `$prev` is argument 1 of the event's `TP_PROTO`, read from the
//!   program's context (`kernel_pointer(__stapxx_context() + 8)`) and
//!   narrowed to its type; `$prev->pid` follows the kernel's BTF types with
//!   `kernel_*` reads, as `$ptr->member` follows DWARF in uprobes.
//! * Record events (the `syscalls:*` ones): `$filename` is the record's
//!   field, `kernel_pointer(__stapxx_context() + 24)`; a `char[]` field or a
//!   `__data_loc` string gives its address (`kernel_string($comm)`).
//! * `$$parms`, `$$vars`: every argument (every non-common field) as
//!   `name=0x..`, strings as `name="..."`; `$$locals` is empty.
//! * Sites a `syscall.NAME` alias tagged with its system call
//!   (probes/syscall.rs): the call's parameters too, as stap reads them
//!   from the kernel function's DWARF: `$fd` at `sys_enter` is the
//!   register the syscall ABI passes it in, `kernel_long($regs + 112)`,
//!   narrowed to the parameter's C type; at `sys_exit` `$return` is the
//!   event's `ret`, and a parameter is its value at entry
//!   (resolve/handlers.rs). `$$parms` lists the parameters.
//!
//! `@cast(addr, "task_struct", "kernel")` follows the same BTF types
//! (see `casts.rs`).

use super::reads::{self, call, num, Memory};
use super::target::{narrow, plus, string};
use crate::debuginfo::{Step, ValueKind};
use crate::kernel_btf::{Kernel, PtRegsOffsets, TpArg};
use crate::probes::syscall::Syscall;
use crate::probes::trace::{RecordField, TpArgs, TracepointSite};
use grammar::ast::Expr;
use grammar::Span;

fn context(span: Span) -> Expr {
    call("__stapxx_context", vec![], span)
}

/// `$name` + `steps` in tracepoint `t`; Err: it does not resolve there.
pub(super) fn var(
    t: &TracepointSite,
    name: &str,
    steps: &[Step],
    indexes: &[Expr],
    amp: bool,
    span: Span,
) -> Result<Expr, String> {
    if let Some(kind) = name.strip_prefix('$') {
        if !steps.is_empty() || amp {
            return Err(format!("'$${kind}' is a string: it has no members"));
        }
        return context_string(t, kind, span);
    }
    if let Some(sc) = &t.syscall {
        if let Some(e) = syscall_var(t, sc, name, steps, indexes, amp, span) {
            return e;
        }
    }
    match &t.args {
        TpArgs::Typed(args) => {
            let Some(i) = args.iter().position(|a| a.name == name) else {
                return Err(unknown(name, t, args.iter().map(|a| a.name.as_str())));
            };
            let kernel = Kernel::get().ok_or("the kernel's BTF cannot be read")?;
            typed(kernel, &args[i], i, steps, indexes, amp, span)
        }
        TpArgs::Record(fields) => {
            let Some(f) = fields.iter().find(|f| f.name == name) else {
                return Err(unknown(name, t, fields.iter().map(|f| f.name.as_str())));
            };
            if !steps.is_empty() {
                return Err(format!(
                    "'${name}' of {}:{} is a field of the event's record ({}): it has no type to follow; use @cast",
                    t.category, t.name, f.decl
                ));
            }
            Ok(field(f, amp, span))
        }
    }
}

/// The kernel type of `$name` + `steps` in tracepoint `t`: its typed
/// arguments have one (record fields and system call parameters do not).
pub(super) fn var_type(
    t: &TracepointSite,
    name: &str,
    steps: &[Step],
) -> Option<crate::debuginfo::TypeHandle> {
    let TpArgs::Typed(args) = &t.args else {
        return None;
    };
    if t.syscall
        .as_ref()
        .is_some_and(|sc| sc.param(name).is_some())
    {
        return None;
    }
    let arg = args.iter().find(|a| a.name == name)?;
    let r = Kernel::get()?
        .resolver()
        .resolve(&Kernel::handle(arg.ty), false, steps, false)
        .ok()?;
    Some(r.value.handle)
}

/// In a site tagged with system call `sc`: `$return` at its exit, or one
/// of its parameters at its entry. None: neither (the event's own
/// variables may still have the name).
fn syscall_var(
    t: &TracepointSite,
    sc: &Syscall,
    name: &str,
    steps: &[Step],
    indexes: &[Expr],
    amp: bool,
    span: Span,
) -> Option<Result<Expr, String>> {
    if name == "return" {
        if !t.is_syscall_exit() {
            return Some(Err(format!(
                "'$return' is only available in .return probes (system call {})",
                sc.name
            )));
        }
        // The exit event's `ret` (its typed argument or record field).
        return Some(var(t, "ret", steps, indexes, amp, span));
    }
    let (i, p) = sc.param(name)?;
    Some(if !steps.is_empty() {
        Err(format!(
            "'${name}' of {} is a system call parameter ({}): it has no type to follow; use @cast",
            sc.signature(),
            p.decl
        ))
    } else if amp {
        Err(format!(
            "'&${name}': a system call parameter has no address"
        ))
    } else if t.is_syscall_exit() {
        // (A .return probe reads it at entry, see resolve/handlers.rs;
        // this is an exit site in a handler that also has entry sites.)
        Err(format!(
            "'${name}' of {} is read at the call's entry: not in a probe on its entry and its exit at once",
            sc.signature()
        ))
    } else {
        param(t, i, p, span)
    })
}

/// Parameter `i` (`p`) of the call, at its entry: the field of its own
/// `sys_enter_NAME` record, else the register the syscall ABI passes it
/// in, from raw_syscalls' `regs` (the same registers the tapsets read with
/// `__set_syscall_pt_regs($regs)` and `_stp_arg2`) or, without the
/// kernel's BTF, its record's `args` array.
fn param(t: &TracepointSite, i: usize, p: &RecordField, span: Span) -> Result<Expr, String> {
    let raw = match &t.args {
        _ if t.category == "syscalls" => return Ok(field(p, false, span)),
        TpArgs::Typed(args) => {
            let r = args
                .iter()
                .position(|a| a.name == "regs")
                .ok_or_else(|| format!("tracepoint {}:{} has no '$regs'", t.category, t.name))?;
            let off = PtRegsOffsets::get()
                .and_then(|o| o.syscall_arg(i as i64 + 1))
                .ok_or_else(|| {
                    format!(
                        "'${}' is argument {} of a system call: not in a register the kernel's BTF places",
                        p.name,
                        i + 1
                    )
                })?;
            let regs = reads::read(
                Memory::Kernel,
                8,
                false,
                plus(context(span), 8 * r as i64, span),
                span,
            );
            reads::read(
                Memory::Kernel,
                8,
                false,
                plus(regs, i64::from(off), span),
                span,
            )
        }
        TpArgs::Record(fields) => {
            let a = fields
                .iter()
                .find(|f| f.name == "args" && f.array && f.size >= 8 * (i as u32 + 1))
                .ok_or_else(|| {
                    format!(
                        "tracepoint {}:{} has no argument {} of a system call",
                        t.category,
                        t.name,
                        i + 1
                    )
                })?;
            let at = plus(context(span), i64::from(a.offset) + 8 * i as i64, span);
            reads::read(Memory::Kernel, 8, false, at, span)
        }
    };
    let (n, signed) = p.value;
    Ok(narrow(raw, n, signed, span))
}

/// The nearest-names error: the event's own variables, then, in a site
/// tagged with a system call, the call's parameters (and `$return` at its
/// exit).
fn unknown<'a>(name: &str, t: &TracepointSite, own: impl Iterator<Item = &'a str>) -> String {
    let params: Vec<&str> = t
        .syscall
        .iter()
        .flat_map(|sc| sc.params.iter().map(|p| p.name.as_str()))
        .collect();
    let mut have: Vec<&str> = own.filter(|n| !params.contains(n)).collect();
    if t.is_syscall_exit() {
        have.push("return");
    }
    let near = crate::debuginfo::layout::nearest(name, have.iter().chain(&params).copied(), 3);
    let list = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut all = if have.is_empty() {
        "none".to_string()
    } else {
        list(&have)
    };
    if let Some(sc) = &t.syscall {
        all.push_str(&match params.is_empty() {
            true => format!(", and system call {} has no parameters", sc.name),
            false => format!(
                ", and system call {}'s parameters {}",
                sc.name,
                list(&params)
            ),
        });
    }
    format!(
        "tracepoint {}:{} has no variable '${name}' (nearest: {}; it has {all})",
        t.category,
        t.name,
        near.join(", ")
    )
}

/// Argument `i` (`arg`) of a typed event, then `steps`: the argument is
/// the object of its type in slot `i` of the context, so a chain on it is
/// resolved as any chain on a kernel object.
fn typed(
    kernel: &Kernel,
    arg: &TpArg,
    i: usize,
    steps: &[Step],
    indexes: &[Expr],
    amp: bool,
    span: Span,
) -> Result<Expr, String> {
    let slot = plus(context(span), 8 * i as i64, span);
    if steps.is_empty() && amp {
        return Err(format!(
            "'&${}': a tracepoint argument has no address",
            arg.name
        ));
    }
    let r = kernel
        .resolver()
        .resolve(&Kernel::handle(arg.ty), false, steps, amp)
        .map_err(|e| format!("'${}': {e}", arg.name))?;
    if !steps.is_empty() {
        return Ok(reads::build_in(
            Memory::Kernel,
            slot,
            &r.accesses,
            r.fetch,
            indexes,
            span,
        ));
    }
    // The argument itself: the slot's 64 bits narrowed to its type.
    let v = &r.value;
    match v.kind {
        ValueKind::Struct | ValueKind::Union | ValueKind::Array | ValueKind::Void => {
            Err(format!("'${}' is a {}: not a number", arg.name, v.name))
        }
        _ => {
            let value = reads::read(Memory::Kernel, 8, false, slot, span);
            Ok(narrow(value, v.size.min(8) as u8, v.signed, span))
        }
    }
}

/// A record field's value (or address).
fn field(f: &RecordField, amp: bool, span: Span) -> Expr {
    let at = plus(context(span), i64::from(f.offset), span);
    if f.data_loc {
        // The low 16 bits of the u32 are where the data is in the record.
        let loc = reads::read(Memory::Kernel, 4, false, at, span);
        let off = super::target::bin(grammar::ast::BinOp::BitAnd, loc, num(0xffff, span), span);
        return super::target::bin(grammar::ast::BinOp::Add, context(span), off, span);
    }
    if f.array || amp {
        return at;
    }
    let raw = reads::read(Memory::Kernel, f.size.min(8) as u8, f.signed, at, span);
    let (n, signed) = f.value;
    if u32::from(n) < f.size || signed != f.signed {
        narrow(raw, n, signed, span)
    } else {
        raw
    }
}

/// `$$parms` and friends; in a site tagged with a system call they list
/// its parameters, and its exit has `$$return`.
fn context_string(t: &TracepointSite, kind: &str, span: Span) -> Result<Expr, String> {
    match kind {
        "parms" | "vars" => {}
        "locals" => return Ok(string("", span)),
        "return" if t.is_syscall_exit() => {
            let ret = var(t, "return", &[], &[], false, span)?;
            return Ok(call("sprintf", vec![string("return=0x%x", span), ret], span));
        }
        other => {
            return Err(format!(
                "unknown context variable '$${other}' in a tracepoint (it has $$vars, $$parms, $$locals{})",
                if t.is_syscall_exit() { ", $$return" } else { "" }
            ))
        }
    }
    let mut format = String::new();
    let mut args = Vec::new();
    let mut add = |name: &str, fmt: &str, e: Option<Expr>| {
        if !format.is_empty() {
            format.push(' ');
        }
        match e {
            Some(e) => {
                format.push_str(&format!("{name}={fmt}"));
                args.push(e);
            }
            None => format.push_str(&format!("{name}=?")),
        }
    };
    match (&t.syscall, &t.args) {
        // (At the exit, a .return probe reads them at entry.)
        (Some(sc), _) if t.is_syscall_exit() => {
            return Err(format!(
                "'$${kind}' of {} is read at the call's entry: not in a probe on its entry and its exit at once",
                sc.signature()
            ))
        }
        (Some(sc), _) => {
            for (i, p) in sc.params.iter().enumerate() {
                add(&p.name, "0x%x", param(t, i, p, span).ok());
            }
        }
        (None, TpArgs::Typed(list)) => {
            let kernel = Kernel::get().ok_or("the kernel's BTF cannot be read")?;
            for (i, a) in list.iter().enumerate() {
                add(
                    &a.name,
                    "0x%x",
                    typed(kernel, a, i, &[], &[], false, span).ok(),
                );
            }
        }
        (None, TpArgs::Record(fields)) => {
            for f in fields.iter().filter(|f| !f.is_common()) {
                let is_string = (f.array || f.data_loc) && f.decl.contains("char");
                if is_string {
                    let s = call("kernel_string", vec![field(f, false, span)], span);
                    add(&f.name, "\"%s\"", Some(s));
                } else if f.array {
                    add(&f.name, "0x%x", None);
                } else {
                    add(&f.name, "0x%x", Some(field(f, false, span)));
                }
            }
        }
    }
    if args.is_empty() {
        return Ok(string(&format, span));
    }
    let mut all = vec![string(&format, span)];
    all.extend(args);
    Ok(call("sprintf", all, span))
}
