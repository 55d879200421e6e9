//! Byte-order conversions (`linux/inet.stp`'s `ntohs` ... `htonll`,
//! `linux/endian.stp`'s `big_endian2` ...): one C statement
//! `STAP_RETVALUE = [(TYPE)] FN([(TYPE)] STAP_ARG_x)` where FN is one of
//! the kernel's `be16_to_cpu`, `cpu_to_be32`, `le64_to_cpu`, ... or
//! `ntohs`/`ntohl`/`htons`/`htonl`. The argument is taken as an unsigned
//! value of FN's width; x86-64 is little-endian, so the big-endian forms
//! reverse its bytes and the little-endian ones keep them.

use super::B;
use grammar::ast::*;

/// The script body for a byte-order conversion, `None` when `code` is not
/// one.
pub(super) fn translate(b: &B, f: &Function, code: &str) -> Option<Block> {
    let c = super::one_statement(
        code,
        r"^STAP_RETVALUE\s*=\s*(?:\(\s*[\w\s]+\)\s*)?(\w+)\s*\(\s*(?:\(\s*[\w\s]+\)\s*)?STAP_ARG_(\w+)\s*\)$",
    )?;
    let (bits, swap) = conversion(&c[1])?;
    let param = f.params.iter().find(|p| p.name == c[2])?;
    let x = || b.convert(b.var(&param.name), bits, false);
    let value = if swap {
        let bytes = bits / 8;
        (0..bytes)
            .map(|i| {
                let byte = b.bin(
                    BinOp::BitAnd,
                    b.bin(BinOp::Shr, x(), b.num(i64::from(8 * i))),
                    b.num(0xff),
                );
                b.bin(BinOp::Shl, byte, b.num(i64::from(8 * (bytes - 1 - i))))
            })
            .reduce(|a, e| b.bin(BinOp::BitOr, a, e))?
    } else {
        x()
    };
    Some(b.body(vec![b.ret(value)]))
}

/// Width and whether the bytes are reversed, on a little-endian host.
fn conversion(name: &str) -> Option<(u32, bool)> {
    let named = match name {
        "ntohs" | "htons" => Some((16, true)),
        "ntohl" | "htonl" => Some((32, true)),
        _ => None,
    };
    if named.is_some() {
        return named;
    }
    let (order, bits) = if let Some(rest) = name.strip_prefix("cpu_to_") {
        (&rest[..2], &rest[2..])
    } else {
        let body = name.strip_suffix("_to_cpu")?;
        (body.get(..2)?, body.get(2..)?)
    };
    let bits: u32 = match bits {
        "16" => 16,
        "32" => 32,
        "64" => 64,
        _ => return None,
    };
    match order {
        "be" => Some((bits, true)),
        "le" => Some((bits, false)),
        _ => None,
    }
}
