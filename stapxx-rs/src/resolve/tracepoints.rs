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
//!
//! `@cast(addr, "task_struct", "kernel")` (also `"kernel<linux/sched.h>"`,
//! as stap writes it) follows the same BTF types, in any probe.

use super::reads::{self, call, num, Memory};
use super::target::{narrow, plus, string};
use crate::debuginfo::{Fetch, Step, ValueKind};
use crate::kernel_btf::{Kernel, TpArg};
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
    let event = format!("{}:{}", t.category, t.name);
    if let Some(kind) = name.strip_prefix('$') {
        if !steps.is_empty() || amp {
            return Err(format!("'$${kind}' is a string: it has no members"));
        }
        return context_string(t, kind, span);
    }
    match &t.args {
        TpArgs::Typed(args) => {
            let Some(i) = args.iter().position(|a| a.name == name) else {
                return Err(unknown(name, &event, args.iter().map(|a| a.name.as_str())));
            };
            let kernel = Kernel::get().ok_or("the kernel's BTF cannot be read")?;
            typed(kernel, &args[i], i, steps, indexes, amp, span)
        }
        TpArgs::Record(fields) => {
            let Some(f) = fields.iter().find(|f| f.name == name) else {
                return Err(unknown(
                    name,
                    &event,
                    fields.iter().map(|f| f.name.as_str()),
                ));
            };
            if !steps.is_empty() {
                return Err(format!(
                    "'${name}' of {event} is a field of the event's record ({}): it has no type to follow; use @cast",
                    f.decl
                ));
            }
            Ok(field(f, amp, span))
        }
    }
}

fn unknown<'a>(name: &str, event: &str, have: impl Iterator<Item = &'a str> + Clone) -> String {
    let near = crate::debuginfo::layout::nearest(name, have.clone(), 3);
    let all: Vec<&str> = have.collect();
    format!(
        "tracepoint {event} has no variable '${name}' (nearest: {}; it has {})",
        near.join(", "),
        if all.is_empty() {
            "none".to_string()
        } else {
            all.iter()
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    )
}

/// Argument `i` (`arg`) of a typed event, then `steps`.
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
    let value = reads::read(Memory::Kernel, 8, false, slot, span);
    if steps.is_empty() {
        if amp {
            return Err(format!(
                "'&${}': a tracepoint argument has no address",
                arg.name
            ));
        }
        let (kind, size, signed) = kernel.value_shape(arg.ty);
        return match kind {
            ValueKind::Struct | ValueKind::Union | ValueKind::Array | ValueKind::Void => {
                Err(format!(
                    "'${}' is a {}: not a number",
                    arg.name,
                    kernel.type_name(arg.ty)
                ))
            }
            _ => Ok(narrow(value, size.min(8) as u8, signed, span)),
        };
    }
    let mut k = kernel
        .resolve(arg.ty, steps)
        .map_err(|e| format!("'${}': {e}", arg.name))?;
    if amp {
        if matches!(
            k.fetch,
            Fetch::Load {
                bitfield: Some(_),
                ..
            }
        ) {
            return Err(format!("'&${}...': a bitfield has no address", arg.name));
        }
        k.fetch = Fetch::Address;
    }
    Ok(reads::build_in(
        Memory::Kernel,
        value,
        &k.accesses,
        k.fetch,
        indexes,
        span,
    ))
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

/// `$$parms` and friends.
fn context_string(t: &TracepointSite, kind: &str, span: Span) -> Result<Expr, String> {
    match kind {
        "parms" | "vars" => {}
        "locals" => return Ok(string("", span)),
        other => {
            return Err(format!(
                "unknown context variable '$${other}' in a tracepoint (it has $$vars, $$parms, $$locals)"
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
    match &t.args {
        TpArgs::Typed(list) => {
            let kernel = Kernel::get().ok_or("the kernel's BTF cannot be read")?;
            for (i, a) in list.iter().enumerate() {
                add(
                    &a.name,
                    "0x%x",
                    typed(kernel, a, i, &[], &[], false, span).ok(),
                );
            }
        }
        TpArgs::Record(fields) => {
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

/// `@cast`'s module names the kernel: `"kernel"` or `"kernel<header.h>"`.
pub(super) fn is_kernel_module(m: &str) -> bool {
    m == "kernel" || m.starts_with("kernel<")
}

/// `@cast(addr, ty, "kernel")` + `steps`; Err: it does not resolve.
pub(super) fn kernel_cast(
    addr: Expr,
    ty: &str,
    steps: &[Step],
    indexes: &[Expr],
    amp: bool,
    span: Span,
) -> Result<Expr, String> {
    let kernel =
        Kernel::get().ok_or("the kernel's BTF (/sys/kernel/btf/vmlinux) cannot be read")?;
    let id = kernel
        .find_type(ty)
        .ok_or_else(|| format!("type '{ty}' not found in the kernel's BTF"))?;
    let mut k = kernel
        .resolve_object(id, steps)
        .map_err(|e| format!("@cast(..., \"{ty}\", \"kernel\"): {e}"))?;
    if amp {
        if matches!(
            k.fetch,
            Fetch::Load {
                bitfield: Some(_),
                ..
            }
        ) {
            return Err("a bitfield has no address".into());
        }
        k.fetch = Fetch::Address;
    }
    Ok(reads::build_in(
        Memory::Kernel,
        addr,
        &k.accesses,
        k.fetch,
        indexes,
        span,
    ))
}
