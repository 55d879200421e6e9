//! Target variables of SDT marker probes (`process("P").mark("name")`):
//! `$argN` from the note's argument specs, `$$name`, `$$provider`,
//! `$$parms`/`$$vars` (`arg1=0x.. arg2=0x..`), as plain stap reads:
//!
//! * a register operand: `u_register("rdi")`, shifted for `%ah`-style
//!   high bytes, narrowed to the argument's size and sign;
//! * memory `disp(base,index,scale)`: a `user_int32_error(...)` (and the
//!   like) of the registers' sum; an address without a base register
//!   (`sym(%rip)`, absolute) is a link-time address, moved by how far the
//!   module is loaded from its link address: `u_register("rip")` minus the
//!   marker's link-time pc, since the probe fires with `rip` on the marker;
//! * a constant (`$42`): the number.

use super::reads::{call, num, reader};
use super::target::{bin, narrow, plus, string};
use crate::debuginfo::sdt::{Arg, Marker, Operand};
use grammar::ast::{BinOp, Expr};
use grammar::Span;

/// `$name` in a marker probe. Inner error: it does not exist
/// here (`@defined` is 0).
pub fn marker_var(m: &Marker, name: &str, has_steps: bool, span: Span) -> Result<Expr, String> {
    if has_steps {
        return Err(format!(
            "'${name}' of SDT marker {}:{} has no type: use @cast to read through it",
            m.provider, m.name
        ));
    }
    match name {
        "$name" => return Ok(string(&m.name, span)),
        "$provider" => return Ok(string(&m.provider, span)),
        "$parms" | "$vars" => return Ok(parms(m, span)),
        _ => {}
    }
    let Some(n) = name
        .strip_prefix("arg")
        .and_then(|d| d.parse::<usize>().ok())
        .filter(|n| *n >= 1)
    else {
        return Err(format!(
            "SDT marker {}:{} has no '${name}' (it has $arg1..$arg{}, $$name, $$provider, $$parms)",
            m.provider,
            m.name,
            m.args.len()
        ));
    };
    if n > m.args.len() {
        return Err(format!(
            "SDT marker {}:{} has {} argument(s): there is no '$arg{n}'",
            m.provider,
            m.name,
            m.args.len()
        ));
    }
    let arg = m.arg(n - 1).map_err(|e| e.to_string())?;
    Ok(value(m, arg, span))
}

/// An argument's value as its spec says.
fn value(m: &Marker, arg: &Arg, span: Span) -> Expr {
    match &arg.operand {
        Operand::Constant(c) => narrow(num(*c, span), arg.size, arg.signed, span),
        Operand::Register(r) => {
            let mut v = call("u_register", vec![string(r.name, span)], span);
            if r.shift > 0 {
                v = bin(BinOp::Shr, v, num(i64::from(r.shift), span), span);
            }
            narrow(v, arg.size, arg.signed, span)
        }
        Operand::Memory {
            base, index, disp, ..
        } => {
            let mut addr = match base {
                Some(b) => plus(
                    call("u_register", vec![string(b.name, span)], span),
                    *disp,
                    span,
                ),
                // A link-time address: where the module is loaded decides.
                // Not the module's bias baked in at load time: with -c the
                // command has not run yet then, so no bias is known; the
                // marker's own runtime pc gives it in every process.
                None => plus(
                    bin(
                        BinOp::Sub,
                        call("u_register", vec![string("rip", span)], span),
                        num(m.pc as i64, span),
                        span,
                    ),
                    *disp,
                    span,
                ),
            };
            if let Some((ix, scale)) = index {
                let mut i = call("u_register", vec![string(ix.name, span)], span);
                if *scale != 1 {
                    i = bin(BinOp::Mul, i, num(i64::from(*scale), span), span);
                }
                addr = bin(BinOp::Add, addr, i, span);
            }
            call(reader(arg.size, arg.signed), vec![addr], span)
        }
    }
}

/// `$$parms`: `arg1=0x%x arg2=0x%x ...`, `argN=?` for one that cannot be
/// decoded.
fn parms(m: &Marker, span: Span) -> Expr {
    let mut format = String::new();
    let mut args = Vec::new();
    for i in 0..m.args.len() {
        if i > 0 {
            format.push(' ');
        }
        match m.arg(i) {
            Ok(a) => {
                format.push_str(&format!("arg{}=0x%x", i + 1));
                args.push(value(m, a, span));
            }
            Err(_) => format.push_str(&format!("arg{}=?", i + 1)),
        }
    }
    if args.is_empty() {
        return string(&format, span);
    }
    args.insert(0, string(&format, span));
    call("sprintf", args, span)
}
