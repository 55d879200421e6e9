//! DWARF location expressions evaluated symbolically: what a variable's
//! location (or a frame base) computes, in terms of the registers at the
//! probe address, constants, link-time addresses and reads of the target's
//! memory. The result is a [`ParamLocation`]; pass 2 turns it into plain
//! stap (`resolve/target.rs`), so any expression gcc writes for optimized
//! code (`DW_OP_breg5 0; DW_OP_lit7; DW_OP_mul; DW_OP_stack_value` for an
//! argument it folded into `argc * 7`) reads as stap would read it.
//!
//! Hand-written rather than gimli's `Evaluation`: that one computes values
//! from a live process's registers and memory, and a probe's registers and
//! memory are only known when it fires, in BPF; what is needed here is the
//! expression itself.

use gimli::Reader as _;

use super::dwarf::R;
use super::params::ParamLocation;

/// A value a location expression computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocExpr {
    Const(i64),
    /// A link-time address (`DW_OP_addr`): it moves with the module's load
    /// bias.
    Addr(u64),
    /// A register's value at the probe address plus an offset.
    Reg(u16, i64),
    Bin(LocOp, Box<LocExpr>, Box<LocExpr>),
    Neg(Box<LocExpr>),
    /// Bitwise complement.
    Not(Box<LocExpr>),
    /// `size` bytes of the target's memory at the address, zero-extended
    /// (`DW_OP_deref`, `DW_OP_deref_size`).
    Deref(u8, Box<LocExpr>),
}

/// The binary operations of DWARF's expression stack. Arithmetic is on
/// 64-bit two's complement values; `Shr` is logical, `Shra` arithmetic;
/// comparisons are signed and give 1 or 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Shra,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl LocExpr {
    pub(super) fn add(self, n: i64) -> LocExpr {
        match self {
            LocExpr::Const(c) => LocExpr::Const(c.wrapping_add(n)),
            LocExpr::Addr(a) => LocExpr::Addr(a.wrapping_add(n as u64)),
            LocExpr::Reg(r, o) => LocExpr::Reg(r, o.wrapping_add(n)),
            e => LocExpr::Bin(LocOp::Add, Box::new(e), Box::new(LocExpr::Const(n))),
        }
    }

    fn bin(op: LocOp, a: LocExpr, b: LocExpr) -> LocExpr {
        match (op, a, b) {
            // Offsets stay offsets: `breg6 -8; lit4; minus` is rbp - 12.
            (LocOp::Add, a, LocExpr::Const(n)) => a.add(n),
            (LocOp::Add, LocExpr::Const(n), b) => b.add(n),
            (LocOp::Sub, a, LocExpr::Const(n)) => a.add(n.wrapping_neg()),
            (op, a, b) => LocExpr::Bin(op, Box::new(a), Box::new(b)),
        }
    }
}

/// What an expression computes.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Empty expression.
    Empty,
    /// The object is in a register.
    Reg(u16),
    /// The object is in memory at that address.
    Mem(LocExpr),
    /// The object's value (`DW_OP_stack_value`).
    Value(LocExpr),
    /// `DW_OP_implicit_value`.
    Implicit(i64),
    Unsupported(String),
}

pub(super) struct EvalCtx<'a> {
    pub pc: u64,
    pub entry: u64,
    /// The CFA at `pc`.
    pub cfa: std::result::Result<LocExpr, String>,
    pub encoding: gimli::Encoding,
    /// `DW_OP_addrx`/`DW_OP_constx` through `.debug_addr`.
    pub address: &'a dyn Fn(gimli::DebugAddrIndex<usize>) -> gimli::Result<u64>,
}

/// A 1/2/4/8-byte block as a number in the reader's byte order.
pub(super) fn read_small(b: &R) -> Option<i64> {
    let mut b = b.clone();
    Some(match b.len() {
        1 => i64::from(b.read_u8().ok()?),
        2 => i64::from(b.read_u16().ok()?),
        4 => i64::from(b.read_u32().ok()?),
        8 => b.read_u64().ok()? as i64,
        _ => return None,
    })
}

pub(super) fn to_location(o: Outcome) -> ParamLocation {
    match o {
        Outcome::Empty => ParamLocation::OptimizedOut,
        Outcome::Reg(r) | Outcome::Value(LocExpr::Reg(r, 0)) => ParamLocation::Register(r),
        Outcome::Mem(LocExpr::Reg(r, o)) => ParamLocation::Memory {
            base_reg: r,
            offset: o,
        },
        Outcome::Mem(LocExpr::Addr(a)) => ParamLocation::Address(a),
        Outcome::Mem(LocExpr::Const(a)) => ParamLocation::Address(a as u64),
        Outcome::Mem(e) => ParamLocation::MemoryAt(e),
        Outcome::Value(LocExpr::Reg(r, o)) => ParamLocation::Computed {
            base_reg: r,
            offset: o,
        },
        Outcome::Value(LocExpr::Const(c)) | Outcome::Implicit(c) => ParamLocation::Constant(c),
        Outcome::Value(e) => ParamLocation::ValueOf(e),
        Outcome::Unsupported(why) => ParamLocation::Unsupported(why),
    }
}

/// Evaluates a location expression symbolically. `frame_base`: the
/// function's frame base (`None` while evaluating the frame base itself).
pub(super) fn eval(
    expr: gimli::Expression<R>,
    ctx: &EvalCtx<'_>,
    frame_base: Option<&std::result::Result<LocExpr, String>>,
) -> Outcome {
    use gimli::Operation as Op;
    let mut ops = expr.operations(ctx.encoding);
    let mut stack: Vec<LocExpr> = Vec::new();
    let mut done: Option<Outcome> = None;
    let unsupported = |s: &str| Outcome::Unsupported(s.to_string());
    let underflow = || Outcome::Unsupported("stack underflow".to_string());
    for _ in 0..256 {
        let op = match ops.next() {
            Ok(Some(op)) => op,
            Ok(None) => break,
            Err(e) => return Outcome::Unsupported(format!("bad location expression: {e}")),
        };
        if matches!(op, Op::Nop) {
            continue;
        }
        if done.is_some() {
            return match op {
                Op::Piece { .. } => unsupported("the value is split into pieces"),
                _ => unsupported("operations after a register or stack value"),
            };
        }
        if let Some(bop) = binary(&op) {
            let (Some(b), Some(a)) = (stack.pop(), stack.pop()) else {
                return underflow();
            };
            stack.push(LocExpr::bin(bop, a, b));
            continue;
        }
        match op {
            Op::Register { register } => done = Some(Outcome::Reg(register.0)),
            Op::RegisterOffset {
                register,
                offset,
                base_type,
            } => {
                if base_type.0 != 0 {
                    return unsupported("a typed register value");
                }
                stack.push(LocExpr::Reg(register.0, offset));
            }
            Op::FrameOffset { offset } => match frame_base {
                Some(Ok(fb)) => stack.push(fb.clone().add(offset)),
                Some(Err(why)) => return Outcome::Unsupported(why.clone()),
                None => return unsupported("DW_OP_fbreg in the frame base"),
            },
            Op::CallFrameCFA => match &ctx.cfa {
                Ok(c) => stack.push(c.clone()),
                Err(why) => return Outcome::Unsupported(why.clone()),
            },
            Op::UnsignedConstant { value } => stack.push(LocExpr::Const(value as i64)),
            Op::SignedConstant { value } => stack.push(LocExpr::Const(value)),
            Op::Address { address } => stack.push(LocExpr::Addr(address)),
            Op::AddressIndex { index } => match (ctx.address)(index) {
                Ok(a) => stack.push(LocExpr::Addr(a)),
                Err(e) => return Outcome::Unsupported(format!("bad address index: {e}")),
            },
            // DW_OP_constx: a constant kept in `.debug_addr` (it does not
            // move with the load bias).
            Op::ConstantIndex { index } => match (ctx.address)(index) {
                Ok(a) => stack.push(LocExpr::Const(a as i64)),
                Err(e) => return Outcome::Unsupported(format!("bad address index: {e}")),
            },
            Op::PlusConstant { value } => match stack.pop() {
                Some(s) => stack.push(s.add(value as i64)),
                None => return underflow(),
            },
            Op::Neg | Op::Not => match stack.pop() {
                Some(s) if matches!(op, Op::Neg) => stack.push(LocExpr::Neg(Box::new(s))),
                Some(s) => stack.push(LocExpr::Not(Box::new(s))),
                None => return underflow(),
            },
            Op::Deref {
                base_type,
                size,
                space,
            } => {
                if space || base_type.0 != 0 || !matches!(size, 1 | 2 | 4 | 8) {
                    return unsupported("a typed or address-space memory read in the location");
                }
                match stack.pop() {
                    Some(a) => stack.push(LocExpr::Deref(size, Box::new(a))),
                    None => return underflow(),
                }
            }
            // Stack shuffles.
            Op::Pick { index } => match stack.len().checked_sub(1 + usize::from(index)) {
                Some(i) => stack.push(stack[i].clone()),
                None => return underflow(),
            },
            Op::Drop => {
                if stack.pop().is_none() {
                    return underflow();
                }
            }
            Op::Swap => match stack.len() {
                n if n >= 2 => stack.swap(n - 1, n - 2),
                _ => return underflow(),
            },
            Op::Rot => match stack.len() {
                // (a b c -- c a b): the top moves under the next two.
                n if n >= 3 => stack[n - 3..].rotate_right(1),
                _ => return underflow(),
            },
            Op::StackValue => match stack.pop() {
                Some(s) => done = Some(Outcome::Value(s)),
                None => return underflow(),
            },
            Op::ImplicitValue { data } => match read_small(&data) {
                Some(n) => done = Some(Outcome::Implicit(n)),
                None => return unsupported("an implicit value of an odd size"),
            },
            Op::EntryValue { expression } => {
                if ctx.pc != ctx.entry {
                    return unsupported("DW_OP_entry_value away from the function entry");
                }
                let mut inner = gimli::Expression(expression).operations(ctx.encoding);
                match (inner.next(), inner.next()) {
                    (Ok(Some(Op::Register { register })), Ok(None))
                    | (
                        Ok(Some(Op::RegisterOffset {
                            register,
                            offset: 0,
                            ..
                        })),
                        Ok(None),
                    ) => stack.push(LocExpr::Reg(register.0, 0)),
                    _ => return unsupported("a DW_OP_entry_value of a complex expression"),
                }
            }
            Op::Piece { .. } => return unsupported("the value is split into pieces"),
            Op::ImplicitPointer { .. } => return unsupported("an implicit pointer"),
            Op::TLS => return unsupported("a thread-local variable"),
            Op::ParameterRef { .. } => {
                return unsupported(
                    "the caller passed it in a transformed form (DW_OP_GNU_parameter_ref)",
                )
            }
            Op::Bra { .. } | Op::Skip { .. } => {
                return unsupported("a branch in the location expression")
            }
            _ => return unsupported("an operation this translator does not evaluate"),
        }
    }
    if let Some(d) = done {
        return d;
    }
    match stack.pop() {
        Some(s) => Outcome::Mem(s),
        None => Outcome::Empty,
    }
}

/// The binary operation `op` is, if it is one.
fn binary(op: &gimli::Operation<R>) -> Option<LocOp> {
    use gimli::Operation as Op;
    Some(match op {
        Op::Plus => LocOp::Add,
        Op::Minus => LocOp::Sub,
        Op::Mul => LocOp::Mul,
        Op::Div => LocOp::Div,
        Op::Mod => LocOp::Mod,
        Op::And => LocOp::And,
        Op::Or => LocOp::Or,
        Op::Xor => LocOp::Xor,
        Op::Shl => LocOp::Shl,
        Op::Shr => LocOp::Shr,
        Op::Shra => LocOp::Shra,
        Op::Eq => LocOp::Eq,
        Op::Ne => LocOp::Ne,
        Op::Lt => LocOp::Lt,
        Op::Le => LocOp::Le,
        Op::Gt => LocOp::Gt,
        Op::Ge => LocOp::Ge,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8], pc: u64, cfa: LocExpr, frame_base: Option<LocExpr>) -> ParamLocation {
        let data: std::sync::Arc<[u8]> = std::sync::Arc::from(bytes);
        let expr = gimli::Expression(R::new(data, gimli::RunTimeEndian::Little));
        let address = |i: gimli::DebugAddrIndex<usize>| Ok(0x1000 + i.0 as u64 * 8);
        let ctx = EvalCtx {
            pc,
            entry: 0x100,
            cfa: Ok(cfa),
            encoding: gimli::Encoding {
                format: gimli::Format::Dwarf32,
                version: 5,
                address_size: 8,
            },
            address: &address,
        };
        let fb = frame_base.map(Ok);
        to_location(eval(expr, &ctx, fb.as_ref()))
    }

    #[test]
    fn expressions() {
        let entry_cfa = || LocExpr::Reg(7, 8);
        // DW_OP_reg5 (rdi)
        assert_eq!(
            run(&[0x55], 0x100, entry_cfa(), None),
            ParamLocation::Register(5)
        );
        // DW_OP_regx 14
        assert_eq!(
            run(&[0x90, 14], 0x100, entry_cfa(), None),
            ParamLocation::Register(14)
        );
        // DW_OP_fbreg -20 with frame base DW_OP_call_frame_cfa (rsp + 8).
        assert_eq!(
            run(&[0x91, 0x6c], 0x100, entry_cfa(), Some(entry_cfa())),
            ParamLocation::Memory {
                base_reg: 7,
                offset: -12
            }
        );
        // After the prologue the CFA is rbp + 16.
        assert_eq!(
            run(&[0x91, 0x6c], 0x108, entry_cfa(), Some(LocExpr::Reg(6, 16))),
            ParamLocation::Memory {
                base_reg: 6,
                offset: -4
            }
        );
        // DW_OP_call_frame_cfa itself.
        assert_eq!(
            run(&[0x9c], 0x100, entry_cfa(), None),
            ParamLocation::Memory {
                base_reg: 7,
                offset: 8
            }
        );
        // DW_OP_breg7 +8 (a stack argument at entry).
        assert_eq!(
            run(&[0x77, 0x08], 0x100, entry_cfa(), None),
            ParamLocation::Memory {
                base_reg: 7,
                offset: 8
            }
        );
        // DW_OP_breg3 +16; DW_OP_stack_value: the value is rbx + 16.
        assert_eq!(
            run(&[0x73, 0x10, 0x9f], 0x100, entry_cfa(), None),
            ParamLocation::Computed {
                base_reg: 3,
                offset: 16
            }
        );
        // DW_OP_entry_value(DW_OP_reg5); DW_OP_stack_value: rdi at the entry ...
        let ev = [0xa3, 0x01, 0x55, 0x9f];
        assert_eq!(
            run(&ev, 0x100, entry_cfa(), None),
            ParamLocation::Register(5)
        );
        // ... and unknown elsewhere.
        assert!(matches!(
            run(&ev, 0x104, entry_cfa(), None),
            ParamLocation::Unsupported(_)
        ));
        // DW_OP_lit3; DW_OP_stack_value / DW_OP_const1s -2; DW_OP_stack_value
        assert_eq!(
            run(&[0x33, 0x9f], 0x100, entry_cfa(), None),
            ParamLocation::Constant(3)
        );
        assert_eq!(
            run(&[0x09, 0xfe, 0x9f], 0x100, entry_cfa(), None),
            ParamLocation::Constant(-2)
        );
        // DW_OP_implicit_value 4 bytes
        assert_eq!(
            run(&[0x9e, 4, 0x78, 0x56, 0x34, 0x12], 0x100, entry_cfa(), None),
            ParamLocation::Constant(0x1234_5678)
        );
        // DW_OP_addr 0x4010 (a static local) / DW_OP_addrx 2
        assert_eq!(
            run(
                &[0x03, 0x10, 0x40, 0, 0, 0, 0, 0, 0],
                0x100,
                entry_cfa(),
                None
            ),
            ParamLocation::Address(0x4010)
        );
        assert_eq!(
            run(&[0xa1, 2], 0x100, entry_cfa(), None),
            ParamLocation::Address(0x1010)
        );
        // DW_OP_breg6 -8; DW_OP_lit4; DW_OP_minus -> memory at rbp - 12
        assert_eq!(
            run(&[0x76, 0x78, 0x34, 0x1c], 0x100, entry_cfa(), None),
            ParamLocation::Memory {
                base_reg: 6,
                offset: -12
            }
        );
        // DW_OP_breg5 0; DW_OP_lit7; DW_OP_mul; DW_OP_stack_value: an
        // argument gcc folded into `argc * 7`.
        let reg = |r: u16| Box::new(LocExpr::Reg(r, 0));
        assert_eq!(
            run(&[0x75, 0, 0x37, 0x1e, 0x9f], 0x100, entry_cfa(), None),
            ParamLocation::ValueOf(LocExpr::Bin(
                LocOp::Mul,
                reg(5),
                Box::new(LocExpr::Const(7))
            ))
        );
        // DW_OP_addr 0x4020; DW_OP_deref; DW_OP_stack_value: a global's value.
        assert_eq!(
            run(
                &[0x03, 0x20, 0x40, 0, 0, 0, 0, 0, 0, 0x06, 0x9f],
                0x100,
                entry_cfa(),
                None
            ),
            ParamLocation::ValueOf(LocExpr::Deref(8, Box::new(LocExpr::Addr(0x4020))))
        );
        // DW_OP_addr 0x4020; DW_OP_stack_value: a pointer to a static (moves
        // with the load bias, unlike a constant).
        assert_eq!(
            run(
                &[0x03, 0x20, 0x40, 0, 0, 0, 0, 0, 0, 0x9f],
                0x100,
                entry_cfa(),
                None
            ),
            ParamLocation::ValueOf(LocExpr::Addr(0x4020))
        );
        // DW_OP_breg0 0; DW_OP_deref_size 4; DW_OP_plus_uconst 8: in memory
        // 8 bytes past where a 32-bit value read through rax points.
        assert_eq!(
            run(&[0x70, 0, 0x94, 4, 0x23, 8], 0x100, entry_cfa(), None),
            ParamLocation::MemoryAt(LocExpr::Bin(
                LocOp::Add,
                Box::new(LocExpr::Deref(4, reg(0))),
                Box::new(LocExpr::Const(8))
            ))
        );
        // DW_OP_breg3 0; DW_OP_breg4 0; DW_OP_plus; DW_OP_stack_value
        assert_eq!(
            run(&[0x73, 0, 0x74, 0, 0x22, 0x9f], 0x100, entry_cfa(), None),
            ParamLocation::ValueOf(LocExpr::Bin(LocOp::Add, reg(3), reg(4)))
        );
        // Stack shuffles: lit1 lit2 swap minus -> 2 - 1; lit1 lit2 lit3 rot
        // drop drop -> 3 (rot puts the top under the two below);
        // lit5 lit6 over minus -> 6 - 5.
        assert_eq!(
            run(&[0x31, 0x32, 0x16, 0x1c, 0x9f], 0x100, entry_cfa(), None),
            ParamLocation::Constant(1)
        );
        assert_eq!(
            run(
                &[0x31, 0x32, 0x33, 0x17, 0x13, 0x13, 0x9f],
                0x100,
                entry_cfa(),
                None
            ),
            ParamLocation::Constant(3)
        );
        assert_eq!(
            run(&[0x35, 0x36, 0x14, 0x1c, 0x9f], 0x100, entry_cfa(), None),
            ParamLocation::Constant(1)
        );
        // A branch is not followed.
        assert!(matches!(
            run(&[0x31, 0x28, 0, 0, 0x9f], 0x100, entry_cfa(), None),
            ParamLocation::Unsupported(_)
        ));
        // Empty: optimized out.
        assert_eq!(
            run(&[], 0x100, entry_cfa(), None),
            ParamLocation::OptimizedOut
        );
        // DW_OP_reg5; DW_OP_piece 8; DW_OP_reg4; DW_OP_piece 8: unsupported.
        assert!(matches!(
            run(&[0x55, 0x93, 8, 0x54, 0x93, 8], 0x100, entry_cfa(), None),
            ParamLocation::Unsupported(_)
        ));
        // DW_OP_fbreg without a frame base.
        assert!(matches!(
            run(&[0x91, 0x6c], 0x100, entry_cfa(), None),
            ParamLocation::Unsupported(_)
        ));
        // Truncated input never panics.
        for bytes in [
            &[0x91][..],
            &[0xa3, 0x05, 0x55],
            &[0x03, 0x10],
            &[0x1c],
            &[0x9f],
        ] {
            assert!(matches!(
                run(bytes, 0x100, entry_cfa(), None),
                ParamLocation::Unsupported(_)
            ));
        }
    }
}
