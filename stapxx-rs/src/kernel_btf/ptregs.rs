//! Where the registers are in the running kernel's `struct pt_regs`, from
//! its BTF: the syscall-register builtins (`_stp_syscall_nr()`,
//! `_stp_arg2()`, `codegen/sregs.rs`) read a system call's saved registers
//! through a `pt_regs` pointer the script hands them, and the offsets come
//! from the kernel, not from a layout typed in here.

use super::{BtfGraph, Kernel};
use std::sync::OnceLock;

/// Byte offsets of the x86-64 `struct pt_regs` members the syscall
/// builtins read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtRegsOffsets {
    /// The system call number as the task entered (`orig_ax`).
    pub orig_ax: u32,
    pub di: u32,
    pub si: u32,
    pub dx: u32,
    pub cx: u32,
    pub r10: u32,
    pub r8: u32,
    pub r9: u32,
    pub sp: u32,
}

impl PtRegsOffsets {
    /// This kernel's offsets (read once), if its BTF is available.
    pub fn get() -> Option<PtRegsOffsets> {
        static CACHE: OnceLock<Option<PtRegsOffsets>> = OnceLock::new();
        *CACHE.get_or_init(|| PtRegsOffsets::from_graph(Kernel::get()?.graph()))
    }

    pub fn from_btf(btf: &[u8]) -> Option<PtRegsOffsets> {
        PtRegsOffsets::from_graph(&BtfGraph::from_btf(btf)?)
    }

    fn from_graph(t: &BtfGraph<'_>) -> Option<PtRegsOffsets> {
        let at = |m: &str| t.member_offset("pt_regs", m);
        Some(PtRegsOffsets {
            orig_ax: at("orig_ax")?,
            di: at("di")?,
            si: at("si")?,
            dx: at("dx")?,
            cx: at("cx")?,
            r10: at("r10")?,
            r8: at("r8")?,
            r9: at("r9")?,
            sp: at("sp")?,
        })
    }

    /// Where argument `n` (1 to 6) of a 64-bit system call is: the
    /// kernel's syscall ABI (di, si, dx, r10, r8, r9; r10 stands for cx,
    /// which the `syscall` instruction overwrites).
    pub fn syscall_arg(&self, n: i64) -> Option<u32> {
        Some(match n {
            1 => self.di,
            2 => self.si,
            3 => self.dx,
            4 => self.r10,
            5 => self.r8,
            6 => self.r9,
            _ => return None,
        })
    }

    /// Where argument `n` (1 to 6) of a function call is in user code: the
    /// System V ABI (di, si, dx, cx, r8, r9); later ones are on the stack.
    pub fn call_arg(&self, n: i64) -> Option<u32> {
        Some(match n {
            4 => self.cx,
            _ => return self.syscall_arg(n),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running kernel's layout is x86-64's (the ptrace ABI fixes it);
    /// skipped where the kernel has no BTF, except in CI.
    #[test]
    fn this_kernels_pt_regs() {
        let Some(o) = PtRegsOffsets::get() else {
            assert!(std::env::var("CI").is_err(), "no kernel BTF");
            return;
        };
        assert_eq!(
            (o.r10, o.r9, o.r8, o.cx, o.dx, o.si, o.di, o.orig_ax, o.sp),
            (56, 64, 72, 88, 96, 104, 112, 120, 152)
        );
        assert_eq!(o.syscall_arg(4), Some(56));
        assert_eq!(o.call_arg(4), Some(88));
        assert_eq!(o.call_arg(1), Some(112));
        assert_eq!(o.syscall_arg(0), None);
        assert_eq!(o.syscall_arg(7), None);
    }
}
