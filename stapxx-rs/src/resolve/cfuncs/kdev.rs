//! The kernel's device-number macros (`linux/dev.stp`'s `MAJOR`, `MINOR`,
//! `MKDEV`, `usrdev2kerndev`): one C statement `STAP_RETVALUE =
//! NAME(STAP_ARG_a[, STAP_ARG_b])`, the macro as `linux/kdev_t.h` defines
//! it: 20 minor bits in the kernel's `dev_t`, and the user-space encoding
//! (`new_decode_dev`) split into 12 major and 20 minor bits around them.

use super::B;
use grammar::ast::*;

const MINORBITS: i64 = 20;
const MINORMASK: i64 = (1 << MINORBITS) - 1;

/// The script body for a device-number macro, `None` when `code` is not one.
pub(super) fn translate(b: &B, f: &Function, code: &str) -> Option<Block> {
    let c = super::one_statement(
        code,
        r"^STAP_RETVALUE\s*=\s*(MAJOR|MINOR|MKDEV|new_decode_dev)\s*\(\s*STAP_ARG_(\w+)\s*(?:,\s*STAP_ARG_(\w+)\s*)?\)$",
    )?;
    let arg = |i: usize| -> Option<Expr> {
        let name = c.get(i)?.as_str();
        f.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| b.var(&p.name))
    };
    let mkdev =
        |ma: Expr, mi: Expr| b.bin(BinOp::BitOr, b.bin(BinOp::Shl, ma, b.num(MINORBITS)), mi);
    let value = match (&c[1], c.get(3).is_some()) {
        ("MAJOR", false) => b.bin(
            BinOp::BitAnd,
            b.bin(BinOp::Shr, arg(2)?, b.num(MINORBITS)),
            b.num(0xffff_ffff >> MINORBITS),
        ),
        ("MINOR", false) => b.bin(BinOp::BitAnd, arg(2)?, b.num(MINORMASK)),
        ("MKDEV", true) => mkdev(arg(2)?, arg(3)?),
        ("new_decode_dev", false) => {
            let dev = || arg(2);
            let major = b.bin(
                BinOp::Shr,
                b.bin(BinOp::BitAnd, dev()?, b.num(0xfff00)),
                b.num(8),
            );
            let minor = b.bin(
                BinOp::BitOr,
                b.bin(BinOp::BitAnd, dev()?, b.num(0xff)),
                b.bin(
                    BinOp::BitAnd,
                    b.bin(BinOp::Shr, dev()?, b.num(12)),
                    b.num(0xfff00),
                ),
            );
            mkdev(major, minor)
        }
        _ => return None,
    };
    Some(b.body(vec![b.ret(value)]))
}
