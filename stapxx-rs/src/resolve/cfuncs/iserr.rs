//! The kernel's error-pointer tests (`linux/kprocess.stp`'s `_IS_ERR`):
//! one C statement `STAP_RETVALUE = IS_ERR([(TYPE)]... STAP_ARG_x)`, or
//! `IS_ERR_OR_NULL`. A pointer is an error when it is one of the last
//! MAX_ERRNO (4095) values of the address space, `-4095 <= x < 0` as a
//! script's signed long.

use super::B;
use grammar::ast::*;

/// The kernel's MAX_ERRNO.
const MAX_ERRNO: i64 = 4095;

/// The script body for an error-pointer test, `None` when `code` is not one.
pub(super) fn translate(b: &B, f: &Function, code: &str) -> Option<Block> {
    let c = super::one_statement(
        code,
        r"^STAP_RETVALUE\s*=\s*(IS_ERR|IS_ERR_OR_NULL)\s*\(\s*(?:\(\s*[\w\s\*]+\)\s*)*STAP_ARG_(\w+)\s*\)$",
    )?;
    let param = f.params.iter().find(|p| p.name == c[2])?;
    let x = || b.var(&param.name);
    let err = b.bin(
        BinOp::And,
        b.bin(BinOp::Lt, x(), b.num(0)),
        b.bin(BinOp::Ge, x(), b.num(-MAX_ERRNO)),
    );
    let value = match &c[1] {
        "IS_ERR_OR_NULL" => b.bin(BinOp::Or, b.bin(BinOp::Eq, x(), b.num(0)), err),
        _ => err,
    };
    Some(b.body(vec![b.ret(value)]))
}
