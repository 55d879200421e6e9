//! A DWARF location computed otherwise than "register + offset"
//! (`debuginfo/locexpr.rs`) as plain stap: registers through
//! `u_register`, link-time addresses moved by the module's bias, memory
//! reads through `user_*_error`, DWARF's operators through stap's.

use super::reads::{self, call, num, Memory};
use super::target::{bin, plus, string};
use crate::debuginfo::locexpr::{LocExpr, LocOp};
use crate::debuginfo::params::x86_64_register_name;
use grammar::ast::{BinOp, Expr, ExprKind, UnOp};
use grammar::Span;

/// `e` as a stap expression; `bias(a)` gives a link-time address as it is
/// at run time. An error says what cannot be read (a vector register, a
/// shift by a computed count).
pub(super) fn expr(
    e: &LocExpr,
    bias: &dyn Fn(u64) -> Expr,
    display: &str,
    span: Span,
) -> Result<Expr, String> {
    let go = |x: &LocExpr| expr(x, bias, display, span);
    Ok(match e {
        LocExpr::Const(c) => num(*c, span),
        LocExpr::Addr(a) => bias(*a),
        LocExpr::Reg(r, off) => match x86_64_register_name(*r) {
            Some(name) => plus(
                call("u_register", vec![string(name, span)], span),
                *off,
                span,
            ),
            None => {
                return Err(format!(
                    "'{display}' is computed from DWARF register {r}, which a probe cannot read"
                ))
            }
        },
        LocExpr::Neg(x) => unary(UnOp::Neg, go(x)?, span),
        LocExpr::Not(x) => unary(UnOp::BitNot, go(x)?, span),
        LocExpr::Deref(size, a) => reads::read(Memory::User, *size, false, go(a)?, span),
        LocExpr::Bin(LocOp::Shr, a, b) => {
            // DWARF's shift right is logical, stap's `>>` arithmetic: the
            // sign bits shifted in are masked off (for a constant count).
            let LocExpr::Const(n @ 0..=63) = **b else {
                return Err(format!(
                    "'{display}' is computed with a logical shift by a computed count"
                ));
            };
            let shifted = bin(BinOp::Shr, go(a)?, num(n, span), span);
            match n {
                0 => shifted,
                n => bin(
                    BinOp::BitAnd,
                    shifted,
                    num((1i64 << (64 - n)) - 1, span),
                    span,
                ),
            }
        }
        LocExpr::Bin(op, a, b) => {
            let op = match op {
                LocOp::Add => BinOp::Add,
                LocOp::Sub => BinOp::Sub,
                LocOp::Mul => BinOp::Mul,
                LocOp::Div => BinOp::Div,
                LocOp::Mod => BinOp::Mod,
                LocOp::And => BinOp::BitAnd,
                LocOp::Or => BinOp::BitOr,
                LocOp::Xor => BinOp::BitXor,
                LocOp::Shl => BinOp::Shl,
                LocOp::Shra | LocOp::Shr => BinOp::Shr,
                LocOp::Eq => BinOp::Eq,
                LocOp::Ne => BinOp::Ne,
                LocOp::Lt => BinOp::Lt,
                LocOp::Le => BinOp::Le,
                LocOp::Gt => BinOp::Gt,
                LocOp::Ge => BinOp::Ge,
            };
            bin(op, go(a)?, go(b)?, span)
        }
    })
}

fn unary(op: UnOp, e: Expr, span: Span) -> Expr {
    Expr {
        kind: ExprKind::Unary {
            op,
            operand: Box::new(e),
        },
        span,
    }
}
