//! The syscall-register builtins in host probes (`begin`, `end`, timers):
//! stapxx-rs itself interrupted no system call and cannot read kernel
//! memory, so what stap would do in such a probe is what happens here:
//! `__set_syscall_pt_regs()` keeps the pointer for the rest of the run,
//! reads through it are errors, and without it the errors are stap's
//! "no registers available" ones. The kernel side is `codegen/sregs.rs`.

use super::values::Value;
use crate::codegen::layout::ErrKind;
use crate::ir::Builtin;

/// Builtin `b` with its arguments evaluated (`args`), `sregs` being the
/// run's syscall registers pointer (0: none). Err: the error's message.
pub(super) fn host(b: Builtin, args: &[i64], sregs: &mut u64) -> Result<Value, String> {
    let arg = |i: usize| args.get(i).copied().unwrap_or(0);
    let kernel_read = || {
        "the syscall registers are kernel memory: only kernel probes can read them (not begin, end or timer.s/ms)"
            .to_string()
    };
    Ok(Value::Long(match b {
        Builtin::SetSyscallRegs => {
            *sregs = arg(0) as u64;
            0
        }
        Builtin::SyscallNr if *sregs == 0 => {
            return Err(ErrKind::message(ErrKind::NoSyscallRegs as usize).into())
        }
        Builtin::SyscallNr => return Err(kernel_read()),
        // Without syscall registers stap reads a probed function's; a
        // host probe has none.
        Builtin::SyscallArg if *sregs == 0 => {
            return Err(ErrKind::message(ErrKind::NoArgRegs as usize).into())
        }
        Builtin::SyscallArg if !(1..=6).contains(&arg(0)) => {
            return Err(format!("cannot access arg({})", arg(0)))
        }
        Builtin::SyscallArg => return Err(kernel_read()),
        // stapxx-rs is a 64-bit task, and a host probe probes no app.
        Builtin::IsCompatTask | Builtin::Probing32bitApp => 0,
        Builtin::IntCast(bytes, signed) => cast(arg(0), bytes, signed),
        _ => return Err(format!("internal: {b:?} is no syscall-register builtin")),
    }))
}

/// `v` as a C integer of `bytes` bytes (`(int32_t)v`, `(unsigned short)v`).
pub fn cast(v: i64, bytes: u8, signed: bool) -> i64 {
    match (bytes, signed) {
        (1, true) => v as i8 as i64,
        (1, false) => v as u8 as i64,
        (2, true) => v as i16 as i64,
        (2, false) => v as u16 as i64,
        (4, true) => v as i32 as i64,
        (4, false) => v as u32 as i64,
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_as_c() {
        assert_eq!(cast(0xffff_ff9c, 4, true), -100);
        assert_eq!(cast(-100, 4, false), 0xffff_ff9c);
        assert_eq!(cast(0x1_8000, 2, true), -32768);
        assert_eq!(cast(-1, 2, false), 0xffff);
        assert_eq!(cast(0x180, 1, true), -128);
        assert_eq!(cast(-1, 8, false), -1);
    }

    #[test]
    fn no_registers_in_host_probes() {
        let mut sregs = 0;
        let err = |b, a: &[i64], s: &mut u64| host(b, a, s).unwrap_err();
        assert_eq!(
            err(Builtin::SyscallNr, &[], &mut sregs),
            "Cannot access syscall number (no registers available)"
        );
        assert_eq!(
            err(Builtin::SyscallArg, &[1, 1, 1, 0], &mut sregs),
            "cannot access function args in this context"
        );
        assert_eq!(
            host(Builtin::SetSyscallRegs, &[0x1000], &mut sregs),
            Ok(Value::Long(0))
        );
        assert_eq!(sregs, 0x1000);
        assert_eq!(
            err(Builtin::SyscallArg, &[7, 1, 1, 0], &mut sregs),
            "cannot access arg(7)"
        );
        assert!(err(Builtin::SyscallNr, &[], &mut sregs).contains("kernel memory"));
        assert_eq!(
            host(Builtin::IsCompatTask, &[], &mut sregs),
            Ok(Value::Long(0))
        );
    }
}
