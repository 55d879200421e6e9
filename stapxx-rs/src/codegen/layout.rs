//! Where things live at run time: the per-CPU frame (locals, temporaries,
//! strings) and the maps that hold globals.
//!
//! Every kernel probe handler and every script function gets its own region
//! of the frame. Recursion is refused (pass 3), so a function's locals can
//! sit at fixed offsets: a call passes arguments by writing the callee's
//! parameter slots, and the callee's string result stays in its return slot.
//!
//! A string slot is `[len: u64][bytes: MAXSTR]`, NUL-terminated within. The
//! frame ends with MAXSTR bytes of slack: appends write at `data + (len &
//! (MAXSTR-1))` with size `MAXSTR - that`, which the verifier can only bound
//! by `2 * MAXSTR`.

/// Fixed fields at the start of the frame.
pub const F_BUSY: i16 = 0;
pub const F_ERR: i16 = 8;
pub const F_FLAGS: i16 = 16;
pub const F_CTX: i16 = 24;
/// Eight u64 arguments for `bpf_snprintf`.
pub const F_ARGS: i16 = 32;
/// A copy of the probe context's `struct pt_regs` (21 registers), taken at
/// entry: the verifier does not let a context pointer be stored in a map, so
/// register reads (`u_register`, `uaddr`, `user_mode`) use this copy.
pub const F_REGS: i16 = 96;
pub const PT_REGS_SIZE: i32 = 21 * 8;
/// `ip` and `cs` in x86-64's `struct pt_regs`.
pub const PT_IP_OFF: i16 = 16 * 8;
pub const PT_CS_OFF: i16 = 17 * 8;
/// The interrupted kernel address when a sample hit kernel mode (`F_REGS`
/// then holds the task's user registers, as stap's `u_register`, `uaddr`
/// read them; `addr()` is this).
pub const F_KIP: i16 = 264;
/// Statements charged to this handler run so far, against MAXACTION
/// (`actions.rs`): one budget for the whole run, all its loops and calls.
pub const F_ACTIONS: i16 = 272;
/// The index of the probe handler running (the output path counts the
/// records it could not send per handler).
pub const F_PROBE: i16 = 280;
/// Start of a zeroed area of MAXSTR bytes (never written): the source for
/// zero-filling map keys.
pub const F_ZERO: u32 = 288;

/// Control flags in `F_FLAGS`.
pub const FLAG_NEXT: i32 = 1;
pub const FLAG_RETURN: i32 = 2;
pub const FLAG_LOOP_DONE: i32 = 4;
/// The probe interrupted kernel mode (`user_mode()` is 0).
pub const FLAG_KERNEL: i32 = 8;

/// Probe error kinds, counted in the errors map (index = kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ErrKind {
    None = 0,
    BadRead = 1,
    DivZero = 2,
    MaxAction = 3,
    MapFull = 4,
    Skipped = 5,
    Script = 6,
    EmptyAggregate = 7,
    /// A failed read that `--skip-badvars` turned into 0: counted, never
    /// an error (it does not abort the handler or end the session).
    SkippedRead = 8,
    /// `_stp_syscall_nr()` with no syscall registers set (`sregs.rs`).
    NoSyscallRegs = 9,
    /// `_stp_arg2()` with neither syscall nor user registers.
    NoArgRegs = 10,
    /// `_stp_arg2()` of an argument number that has no place.
    BadArgNum = 11,
    /// A `kernel_*` read (a kernel `@cast`, a tracepoint argument's chain)
    /// that faulted: kernel memory is read with `bpf_probe_read_kernel`,
    /// which, as stap's kernel reads since Linux 5.10, refuses user-space
    /// addresses too.
    KernelRead = 12,
}

/// Counter slots (a power of two: kinds are masked with `ERR_KINDS - 1`).
pub const ERR_KINDS: usize = 16;
/// `F_ERR` holds the kind in its low bits, the instruction tag (script
/// place) of the failure above them.
pub const ERR_KIND_BITS: i32 = 4;

impl ErrKind {
    pub fn message(i: usize) -> &'static str {
        match i {
            1 => "user memory read fault",
            2 => "division by 0",
            3 => "MAXACTION exceeded",
            4 => "array overflow, check MAXMAPENTRIES",
            5 => "probe skipped (nested on the same CPU)",
            6 => "error() called",
            7 => "empty aggregate",
            8 => "user memory read fault, 0 given (--skip-badvars)",
            9 => "Cannot access syscall number (no registers available)",
            10 => "cannot access function args in this context",
            11 => "cannot access arg: no such argument number (a system call has 1 to 6)",
            12 => "kernel memory read fault",
            _ => "unknown",
        }
    }

    /// Whether kind `i` is a probe error: it aborts the handler, counts
    /// toward MAXERRORS and can be caught (skipped probes and skipped
    /// reads are only counted).
    pub fn is_error(i: usize) -> bool {
        (1..=ErrKind::KernelRead as usize).contains(&i)
            && i != ErrKind::Skipped as usize
            && i != ErrKind::SkippedRead as usize
    }
}

/// A function's region: longs first (small offsets), then strings.
#[derive(Debug, Clone, Default)]
pub struct Region {
    /// Offset of the region in the frame.
    pub base: u32,
    pub long_locals: u32,
    pub str_locals: u32,
    /// High-water marks of temporaries.
    pub long_temps: u32,
    pub str_temps: u32,
}

impl Region {
    pub fn size(&self, strslot: u32) -> u32 {
        (self.long_locals + self.long_temps) * 8 + (self.str_locals + self.str_temps) * strslot
    }
}
