//! What a function's machine code reads: the memory operands of its
//! instructions, each with the value its base register holds. The layout
//! checks ([`super::checks`]) compare these with what a candidate layout
//! says the function must read.
//!
//! The walk is linear over the function's bytes (`st_size` from the symbol
//! table), following no branch: the checked functions are small accessors,
//! and a check only asks whether an expected operand is *present*, so
//! instructions of paths not taken do no harm. Registers are tracked in
//! the simplest way that follows a pointer chain: the first argument
//! register (`rdi`) holds the first argument, a `mov` from `[r + d]` into a
//! register holds "what was loaded from `r + d`", a register-to-register
//! `mov` copies, anything else that writes a register forgets it, and a
//! call forgets the caller-saved ones.

use std::collections::HashMap;

use iced_x86::{Code, Decoder, DecoderOptions, FlowControl, Mnemonic, OpKind, Register};

/// A value a register holds during the walk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Value {
    /// The function's first argument.
    Arg0,
    /// What was loaded from `base + disp`.
    Load(Box<Value>, i64),
}

/// What a function's code reads and uses.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Memory operands `[base + disp]` whose base held a tracked value
    /// (`lea` included: it computes the same address).
    pub tracked: Vec<(Value, i64)>,
    /// The displacement of every memory operand, whatever its base.
    pub displacements: Vec<i64>,
}

impl Observed {
    pub(crate) fn reads(&self, base: &Value, disp: i64) -> bool {
        self.tracked.iter().any(|(b, d)| b == base && *d == disp)
    }
}

/// Registers a call may change (System V x86-64).
const CALLER_SAVED: [Register; 9] = [
    Register::RAX,
    Register::RCX,
    Register::RDX,
    Register::RSI,
    Register::RDI,
    Register::R8,
    Register::R9,
    Register::R10,
    Register::R11,
];

/// Walks the x86-64 code `bytes` of a function at link address `ip`.
pub(crate) fn observe(bytes: &[u8], ip: u64) -> Observed {
    let mut out = Observed::default();
    let mut regs: HashMap<Register, Value> = HashMap::new();
    regs.insert(Register::RDI, Value::Arg0);
    let mut decoder = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    for ins in &mut decoder {
        if ins.code() == Code::INVALID {
            break;
        }
        let mut loaded = None;
        for i in 0..ins.op_count() {
            if ins.op_kind(i) != OpKind::Memory {
                continue;
            }
            let disp = ins.memory_displacement64() as i64;
            out.displacements.push(disp);
            let base = ins.memory_base().full_register();
            if ins.memory_index() == Register::None {
                if let Some(v) = regs.get(&base) {
                    out.tracked.push((v.clone(), disp));
                    loaded = Some(Value::Load(Box::new(v.clone()), disp));
                }
            }
        }
        if ins.flow_control() == FlowControl::Call {
            for r in CALLER_SAVED {
                regs.remove(&r);
            }
            continue;
        }
        if ins.op_count() == 0 || ins.op_kind(0) != OpKind::Register {
            continue;
        }
        let dest = ins.op0_register().full_register();
        match ins.mnemonic() {
            // Compares and tests write no register.
            Mnemonic::Cmp | Mnemonic::Test => {}
            Mnemonic::Mov if ins.op_count() == 2 && ins.op_kind(1) == OpKind::Memory => {
                match loaded {
                    Some(v) => regs.insert(dest, v),
                    None => regs.remove(&dest),
                };
            }
            Mnemonic::Mov if ins.op_count() == 2 && ins.op_kind(1) == OpKind::Register => {
                match regs.get(&ins.op1_register().full_register()).cloned() {
                    Some(v) => regs.insert(dest, v),
                    None => regs.remove(&dest),
                };
            }
            _ => {
                regs.remove(&dest);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_pointer_chain() {
        // mov rax,[rdi+0x10]; movzx eax,byte [rax+0x91]; and eax,0xf; ret
        let code = [
            0x48, 0x8b, 0x47, 0x10, 0x0f, 0xb6, 0x80, 0x91, 0x00, 0x00, 0x00, 0x83, 0xe0, 0x0f,
            0xc3,
        ];
        let o = observe(&code, 0x1000);
        let g = Value::Load(Box::new(Value::Arg0), 0x10);
        assert!(o.reads(&Value::Arg0, 0x10));
        assert!(o.reads(&g, 0x91));
        assert!(!o.reads(&Value::Arg0, 0x91));
    }

    #[test]
    fn a_call_forgets_the_argument() {
        // call +0; mov rax,[rdi+0x8]
        let code = [0xe8, 0, 0, 0, 0, 0x48, 0x8b, 0x47, 0x08];
        let o = observe(&code, 0x1000);
        assert!(o.tracked.is_empty());
        assert_eq!(o.displacements, vec![8]);
    }

    #[test]
    fn a_32_bit_load_is_a_pointer_too() {
        // mov eax,[rdi+0x8]; mov rax,[rax+0x100]  (a 32-bit MRef, then a field)
        let code = [0x8b, 0x47, 0x08, 0x48, 0x8b, 0x80, 0x00, 0x01, 0x00, 0x00];
        let o = observe(&code, 0);
        assert!(o.reads(&Value::Load(Box::new(Value::Arg0), 8), 0x100));
    }
}
