//! A resolved DWARF access as plain stap: `user_*` reads, additions and
//! shifts. Pass 2 rewrites every `@cast`/`@var` into this form, so `-p2`
//! prints a script anyone can read and later passes only see builtins.

use crate::debuginfo::{Access, Fetch, Resolved};
use grammar::ast::{BinOp, Expr, ExprKind};
use grammar::Span;

/// The builtin that gives a module's load bias at run time.
pub const MODULE_BIAS: &str = "__stapxx_module_bias";

pub(super) fn num(n: i64, span: Span) -> Expr {
    Expr {
        kind: ExprKind::Number(n),
        span,
    }
}

fn bin(op: BinOp, lhs: Expr, rhs: Expr, span: Span) -> Expr {
    // Fold constants so `&@cast(0, "T")->m` prints as a plain number.
    if let (ExprKind::Number(a), ExprKind::Number(b)) = (&lhs.kind, &rhs.kind) {
        let v = match op {
            BinOp::Add => Some(a.wrapping_add(*b)),
            BinOp::Mul => Some(a.wrapping_mul(*b)),
            _ => None,
        };
        if let Some(v) = v {
            return num(v, span);
        }
    }
    if op == BinOp::Add && rhs.kind == ExprKind::Number(0) {
        return lhs;
    }
    Expr {
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span,
    }
}

pub(super) fn call(name: &str, args: Vec<Expr>, span: Span) -> Expr {
    Expr {
        kind: ExprKind::Call {
            name: name.to_string(),
            args,
        },
        span,
    }
}

/// `user_uint64_error` and friends for a `size`-byte read: a fault while
/// dereferencing a target variable is a probe error, as in stap.
pub fn reader(size: u8, signed: bool) -> &'static str {
    match (size, signed) {
        (1, false) => "user_uint8_error",
        (1, true) => "user_int8_error",
        (2, false) => "user_uint16_error",
        (2, true) => "user_int16_error",
        (4, false) => "user_uint32_error",
        (4, true) => "user_int32_error",
        (_, false) => "user_uint64_error",
        (_, true) => "user_int64_error",
    }
}

/// Whose memory a chain reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// The probed process's: `user_*_error` reads.
    User,
    /// The kernel's (tracepoint arguments): `kernel_*` reads, which take
    /// no unsigned forms, so unsigned values are masked.
    Kernel,
}

/// A `size`-byte read of `addr` in `mem`.
pub fn read(mem: Memory, size: u8, signed: bool, addr: Expr, span: Span) -> Expr {
    match mem {
        Memory::User => call(reader(size, signed), vec![addr], span),
        Memory::Kernel => {
            let name = match (size, signed) {
                (1, _) => "kernel_char",
                (2, _) => "kernel_short",
                (4, _) => "kernel_int",
                (_, true) => "kernel_long",
                (_, false) => "kernel_pointer",
            };
            let v = call(name, vec![addr], span);
            if signed || size >= 8 {
                v
            } else {
                let mask = (1i64 << (8 * u32::from(size))) - 1;
                bin(BinOp::BitAnd, v, num(mask, span), span)
            }
        }
    }
}

/// The expression for `base` followed by `r`'s accesses and fetch;
/// `indexes[slot]` are the computed array indexes.
pub fn build(base: Expr, r: &Resolved, indexes: &[Expr], span: Span) -> Expr {
    build_in(Memory::User, base, &r.accesses, r.fetch, indexes, span)
}

/// [`build`] for a chain in `mem`.
pub fn build_in(
    mem: Memory,
    base: Expr,
    accesses: &[Access],
    fetch: Fetch,
    indexes: &[Expr],
    span: Span,
) -> Expr {
    let mut cur = base;
    for a in accesses {
        cur = match *a {
            Access::Add(n) => bin(BinOp::Add, cur, num(n, span), span),
            Access::AddScaled { slot, elem_size } => {
                let idx = indexes.get(slot).cloned().unwrap_or_else(|| num(0, span));
                let scaled = bin(BinOp::Mul, idx, num(elem_size as i64, span), span);
                bin(BinOp::Add, cur, scaled, span)
            }
            Access::Deref { size } => read(mem, size, false, cur, span),
        };
    }
    match fetch {
        Fetch::Address => cur,
        Fetch::Load {
            size,
            signed,
            bitfield: None,
        } => read(mem, size, signed, cur, span),
        Fetch::Load {
            size,
            signed,
            bitfield: Some(bf),
        } => bitfield(read(mem, size, false, cur, span), bf, signed, span),
    }
}

/// The bitfield `bf` of the loaded unit `raw` (zero-extended).
pub fn bitfield(raw: Expr, bf: crate::debuginfo::Bitfield, signed: bool, span: Span) -> Expr {
    let (shift, width) = (bf.shift as i64, bf.width as i64);
    if signed {
        // Move the field to the top, then shift back arithmetically.
        let up = bin(BinOp::Shl, raw, num(64 - shift - width, span), span);
        bin(BinOp::Shr, up, num(64 - width, span), span)
    } else {
        let down = if shift == 0 {
            raw
        } else {
            bin(BinOp::Shr, raw, num(shift, span), span)
        };
        let mask = if width >= 64 { -1 } else { (1i64 << width) - 1 };
        bin(BinOp::BitAnd, down, num(mask, span), span)
    }
}

/// `__stapxx_module_bias("path") + link_address`.
pub fn var_address(module: &str, link_address: u64, span: Span) -> Expr {
    let bias = call(
        MODULE_BIAS,
        vec![Expr {
            kind: ExprKind::String(module.to_string()),
            span,
        }],
        span,
    );
    bin(BinOp::Add, bias, num(link_address as i64, span), span)
}
