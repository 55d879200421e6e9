//! The builtin functions scripts call, with stap's names and types: the
//! one table of builtins. Per builtin: its name ([`Builtin::from_name`]),
//! its signature ([`Builtin::signature`], which pass 2 checks calls
//! against), the load-time facts it needs ([`Builtin::needs`]); its host
//! implementation is the match in `runtime/interp.rs`, its kernel one the
//! match in `codegen/expr.rs`/`codegen/strings.rs`, both keyed by this enum.
//! `printf`/`sprintf` (format strings, checked when lowered) are the
//! [`FORMATTERS`].

use super::Ty;

/// What a user read does when the memory cannot be read, by the name the
/// script calls it with: `user_long` gives 0, `user_long_warn` warns and
/// gives 0, `user_long_error` (and the reads `@cast`/`$var` become) is a
/// probe error, or 0 with `--skip-badvars`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    Zero,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    // Context.
    Pid,
    Tid,
    Ppid,
    Uid,
    /// `gid()`: the current task's real group id.
    Gid,
    Execname,
    Cpu,
    Target,
    UserMode,
    Addr,
    Uaddr,
    Probefunc,
    Pp,
    /// `ppfunc()`: the function name in `pp()`'s text (see [`ppfunc_of`]).
    Ppfunc,
    /// `pn()`: the script-level point after wildcard expansion
    /// ([`crate::probes::Site::pn`]).
    Pn,
    // Time.
    GettimeofdayS,
    GettimeofdayMs,
    GettimeofdayUs,
    GettimeofdayNs,
    LocalClockNs,
    LocalClockUs,
    LocalClockMs,
    LocalClockS,
    Jiffies,
    // Symbols.
    Usymname,
    /// `ubacktrace()`: the user stack as hex addresses (`codegen/unwind.rs`).
    Ubacktrace,
    /// `__stapxx_ubacktrace_from(pc, sp, fp)`: the same from given
    /// registers (what stap's `print_ubacktrace(pc, sp, fp)` prints; the
    /// luajit tapset's way past JIT-compiled code).
    UbacktraceFrom,
    /// `ucallers(n)`: its first n+1 addresses.
    Ucallers,
    /// `print_ubacktrace()` / `print_ubacktrace_brief()` (brief: true):
    /// the user stack, symbolized by the host.
    PrintUbacktrace(bool),
    /// `sprint_ubacktrace()`.
    SprintUbacktrace,
    /// `print_ustack(s)` / `print_usyms(s)`: hex addresses, symbolized.
    PrintUstack,
    /// `sprint_ustack(s)` / `sprint_usyms(s)`.
    SprintUstack,
    /// `usymdata(addr)`: `name+off/size [module]`.
    Usymdata,
    /// `tokenize(input, delim)`: the next non-empty token (host probes).
    Tokenize,
    /// `backtrace()`: the kernel stack as hex addresses (`codegen/kstack.rs`).
    Backtrace,
    /// `print_backtrace()`: the kernel stack, symbolized by the host.
    PrintBacktrace,
    /// `print_stack(s)` / `print_syms(s)`: kernel hex addresses, symbolized.
    PrintStack,
    /// `sprint_stack(s)` / `sprint_syms(s)` / `sprint_backtrace()` /
    /// `symdata(addr)`: kernel symbols as text (host probes).
    SprintStack,
    SprintBacktrace,
    Symdata,
    Symname,
    Umodname,
    /// The runtime load bias of a module (pass 2's `@var` addresses).
    ModuleBias,
    /// `u_register("rdi")`: a user-space register of the probed context.
    URegister,
    /// `returnval()`: the return register in a `.return` probe.
    Returnval,
    // User memory.
    UserString,
    UserStringN,
    UserStringWarn,
    UserStringNWarn,
    UserStringQuoted,
    /// `user_buffer_quoted(addr, inlen, outlen)`; with `true`, the
    /// `_error` form (a fault is a probe error, not the address).
    UserBufferQuoted(bool),
    UserInt8(Fault),
    UserUint8(Fault),
    UserInt16(Fault),
    UserUint16(Fault),
    UserInt32(Fault),
    UserUint32(Fault),
    UserInt64(Fault),
    UserUint64(Fault),
    // Kernel memory (a fault is a probe error).
    /// `kernel_char/short/int/long/pointer`: (bytes, signed).
    KernelRead(u8, bool),
    KernelString,
    KernelStringN,
    /// `kernel_string_quoted(addr)`: quoted, or the address on a fault.
    KernelStringQuoted,
    /// `string_quoted(s)`: `s` quoted as `kernel_string_quoted` quotes
    /// (stap's is embedded C over the same quoting).
    StringQuoted,
    /// `sprint_loadavg()`: the three load averages as `/proc/loadavg`
    /// shows them (host probes: the kernel's `avenrun` is not reachable
    /// from BPF here).
    SprintLoadavg,
    /// `get_loadavg_index(i)`: the integer part of load average i.
    GetLoadavgIndex,
    /// `text_str(s)`: `s` escaped as `string_quoted` escapes, no quotes.
    TextStr,
    /// `text_strn(s, len, quoted)`: in at most `len` bytes, quoted or not.
    TextStrn,
    /// The probe's context pointer: a tracepoint's record or arguments
    /// (pass 2 reads tracepoint variables from it).
    Context,
    /// `task_current()`: the current task's `task_struct` address.
    TaskCurrent,
    // Strings.
    Strlen,
    Substr,
    Isinstr,
    Strtol,
    StringOf,
    /// `str_replace(s, old, new)`: every `old` replaced.
    StrReplace,
    /// `mem_page_size()`: this machine's page size.
    MemPageSize,
    // Private helpers of our `tapsets/linux/task.stp` (see `task_info.rs`).
    /// `__stapxx_on_host()`: 1 in begin/end/timer probes, 0 in kernel ones.
    OnHost,
    /// `__stapxx_verbose()`: how many `-v` were given (tapsets print
    /// their diagnostics with it, as the luajit walker's counters).
    Verbose,
    /// `__stapxx_proc_comm(pid)`: `/proc/PID/comm` (host probes; "" in
    /// kernel probes, which never reach it).
    ProcComm,
    /// `__stapxx_pidns_inum()`: the inode number of stapxx-rs's own pid
    /// namespace, stap's "target namespace" for `task_ns_pid()`.
    PidnsInum,
    /// `__stapxx_host_id(n)`: stapxx-rs's own uid, gid, euid, egid, session,
    /// process group and process id (n = 0..6), for our
    /// `tapsets/linux/context.stp`; known when the programs are built.
    HostId,
    /// `tz_gmtoff()`, `tz_name()`: the local time zone when the session
    /// started (seconds west of UTC; its abbreviation), as staprun passes
    /// them (`runtime::host::timezone`).
    TzGmtoff,
    TzName,
    /// `__stapxx_random_u32()`: a pseudo-random 32-bit number (the kernel's
    /// `bpf_get_prandom_u32()`; the host's getrandom()), for our
    /// `tapsets/random.stp`.
    RandomU32,
    // Output and control.
    Print,
    Println,
    Printd,
    Printdln,
    Warn,
    Error,
    Exit,
    /// `system(cmd)`: the host runs `cmd` through `/bin/sh` once what the
    /// probes printed before it is out, and does not wait for it.
    System,
    Abs,
    Min,
    Max,
    // Constants data (consts.rs, valtable.rs).
    /// `errno_str(e)`: the errno name of |e|, or "".
    ErrnoStr,
    /// `errno_p(e)`: |e| when it is a known errno, else 0.
    ErrnoP,
    /// `__stapxx_lookup_str(v, base, "table")`: `_stp_lookup_str2`.
    LookupStr,
    /// `__stapxx_lookup_or_str(v, base, "table")`: `_stp_lookup_or_str2`.
    LookupOrStr,
    // A system call's registers (stap's CONTEXT->sregs; codegen/sregs.rs,
    // runtime/sregs.rs).
    /// `__set_syscall_pt_regs(r)`: the `pt_regs` the handler run reads.
    SetSyscallRegs,
    /// `_stp_syscall_nr()`: their `orig_ax`.
    SyscallNr,
    /// `_stp_arg2(n, sign_extend, truncate, force64)`: argument n.
    SyscallArg,
    /// `_stp_is_compat_task()`, `probing_32bit_app()`: always 0 (64-bit).
    IsCompatTask,
    Probing32bitApp,
    /// `__int32`, `__ushort`, `_stp_sign_extend8`...: the value cast to a
    /// C integer of (bytes, signed).
    IntCast(u8, bool),
}

/// The builtins whose first argument is a format string.
pub const FORMATTERS: &[&str] = &["printf", "sprintf"];

/// `sprint(...)`/`sprintln(...)`: their arguments as `print` would print
/// them, as a string (lowered to a `sprintf` on the arguments' types).
pub const STRINGIFIERS: &[&str] = &["sprint", "sprintln"];

/// Whether a function name is one of ours: what scripts and tapsets may
/// call without defining, and what shadows a tapset library function.
pub fn is_builtin(name: &str) -> bool {
    Builtin::from_name(name).is_some() || FORMATTERS.contains(&name) || STRINGIFIERS.contains(&name)
}

/// Load-time facts a builtin's kernel code needs (see `loadinfo.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The target's packed symbol table.
    pub user_symbols: bool,
    /// `/proc/kallsyms`, packed.
    pub kernel_symbols: bool,
    /// `task_struct` offsets from the kernel's BTF.
    pub task_offsets: bool,
    /// The target's file mappings.
    pub mappings: bool,
    /// `struct pt_regs` offsets from the kernel's BTF.
    pub pt_regs: bool,
    /// The target's unwind table (`crate::unwind`).
    pub unwind: bool,
    /// The probe context kept for `bpf_get_stack` (kernel stacks).
    pub kernel_stack: bool,
}

/// Argument types (`None`: any of long/string) and result type
/// (`None`: no value).
pub struct Signature {
    pub args: &'static [Option<Ty>],
    /// How many trailing arguments may be left out.
    pub optional: usize,
    /// Any number of further arguments of any type.
    pub variadic: bool,
    pub ret: Option<Ty>,
}

const L: Option<Ty> = Some(Ty::Long);
const S: Option<Ty> = Some(Ty::Str);
const ANY: Option<Ty> = None;

fn sig(args: &'static [Option<Ty>], ret: Option<Ty>) -> Signature {
    Signature {
        args,
        optional: 0,
        variadic: false,
        ret,
    }
}

impl Builtin {
    /// The builtin a script's function name means, if any.
    pub fn from_name(name: &str) -> Option<Builtin> {
        use Builtin::*;
        Some(match name {
            "pid" => Pid,
            "tid" => Tid,
            "ppid" => Ppid,
            "uid" => Uid,
            "gid" => Gid,
            "execname" => Execname,
            "cpu" => Cpu,
            "target" => Target,
            "user_mode" => UserMode,
            "addr" => Addr,
            "uaddr" => Uaddr,
            "probefunc" => Probefunc,
            "pp" => Pp,
            "ppfunc" => Ppfunc,
            "pn" => Pn,
            "gettimeofday_s" => GettimeofdayS,
            "gettimeofday_ms" => GettimeofdayMs,
            "gettimeofday_us" => GettimeofdayUs,
            "gettimeofday_ns" => GettimeofdayNs,
            "local_clock_ns" => LocalClockNs,
            "local_clock_us" => LocalClockUs,
            "local_clock_ms" => LocalClockMs,
            "local_clock_s" => LocalClockS,
            "jiffies" => Jiffies,
            "usymname" => Usymname,
            "ubacktrace" => Ubacktrace,
            "__stapxx_ubacktrace_from" => UbacktraceFrom,
            "ucallers" => Ucallers,
            "print_ubacktrace" => PrintUbacktrace(false),
            "print_ubacktrace_brief" => PrintUbacktrace(true),
            "sprint_ubacktrace" => SprintUbacktrace,
            "print_ustack" | "print_usyms" => PrintUstack,
            "sprint_ustack" | "sprint_usyms" => SprintUstack,
            "usymdata" => Usymdata,
            "tokenize" => Tokenize,
            "backtrace" => Backtrace,
            "print_backtrace" => PrintBacktrace,
            "print_stack" | "print_syms" => PrintStack,
            "sprint_stack" | "sprint_syms" => SprintStack,
            "sprint_backtrace" => SprintBacktrace,
            "symdata" => Symdata,
            "symname" => Symname,
            "umodname" => Umodname,
            "__stapxx_module_bias" => ModuleBias,
            "u_register" => URegister,
            "returnval" => Returnval,
            "user_string" => UserString,
            "user_string_n" => UserStringN,
            "user_string_warn" => UserStringWarn,
            "user_string_n_warn" => UserStringNWarn,
            "user_string_quoted" => UserStringQuoted,
            "user_buffer_quoted" => UserBufferQuoted(false),
            "user_buffer_quoted_error" => UserBufferQuoted(true),
            "kernel_char" => KernelRead(1, true),
            "kernel_short" => KernelRead(2, true),
            "kernel_int" => KernelRead(4, true),
            "kernel_long" => KernelRead(8, true),
            "kernel_pointer" => KernelRead(8, false),
            "kernel_string" => KernelString,
            "kernel_string_n" => KernelStringN,
            "kernel_string_quoted" => KernelStringQuoted,
            "string_quoted" => StringQuoted,
            "text_str" => TextStr,
            "sprint_loadavg" => SprintLoadavg,
            "get_loadavg_index" => GetLoadavgIndex,
            "text_strn" => TextStrn,
            "__stapxx_context" => Context,
            "task_current" => TaskCurrent,
            _ if user_read(name).is_some() => user_read(name)?,
            "strlen" => Strlen,
            "substr" => Substr,
            "isinstr" => Isinstr,
            "strtol" => Strtol,
            "str_replace" => StrReplace,
            "mem_page_size" => MemPageSize,
            "__stapxx_on_host" => OnHost,
            "__stapxx_verbose" => Verbose,
            "__stapxx_proc_comm" => ProcComm,
            "__stapxx_pidns_inum" => PidnsInum,
            "__stapxx_host_id" => HostId,
            "tz_gmtoff" => TzGmtoff,
            "tz_name" => TzName,
            "__stapxx_random_u32" => RandomU32,
            "string" => StringOf,
            "print" => Print,
            "println" => Println,
            "printd" => Printd,
            "printdln" => Printdln,
            "warn" => Warn,
            "system" => System,
            "error" => Error,
            "exit" => Exit,
            "abs" => Abs,
            "min" => Min,
            "max" => Max,
            "errno_str" => ErrnoStr,
            "errno_p" => ErrnoP,
            "__stapxx_lookup_str" => LookupStr,
            "__stapxx_lookup_or_str" => LookupOrStr,
            "__set_syscall_pt_regs" => SetSyscallRegs,
            "_stp_syscall_nr" => SyscallNr,
            "_stp_arg2" => SyscallArg,
            "_stp_is_compat_task" => IsCompatTask,
            "probing_32bit_app" => Probing32bitApp,
            "__short" | "_stp_sign_extend16" => IntCast(2, true),
            "__ushort" => IntCast(2, false),
            "__int32" | "_stp_sign_extend32" => IntCast(4, true),
            "__uint32" => IntCast(4, false),
            "__long" => IntCast(8, true),
            "__ulong" => IntCast(8, false),
            "_stp_sign_extend8" => IntCast(1, true),
            _ => return None,
        })
    }

    pub fn signature(self) -> Signature {
        use Builtin::*;
        match self {
            Pid | Tid | Ppid | Uid | Gid | Cpu | Target | UserMode | Addr | Uaddr
            | GettimeofdayS | GettimeofdayMs | GettimeofdayUs | GettimeofdayNs | LocalClockNs
            | LocalClockUs | LocalClockMs | LocalClockS | Jiffies => sig(&[], L),
            Execname | Probefunc | Pp | Ppfunc | Pn => sig(&[], S),
            Usymname | Symname | Umodname | Usymdata => sig(&[L], S),
            Ubacktrace | SprintUbacktrace => sig(&[], S),
            Ucallers => sig(&[L], S),
            UbacktraceFrom => sig(&[L, L, L], S),
            // `print_ubacktrace(pc, sp, fp)` too.
            PrintUbacktrace(_) => Signature {
                args: &[L, L, L],
                optional: 3,
                variadic: false,
                ret: None,
            },
            PrintUstack => sig(&[S], None),
            SprintUstack => sig(&[S], S),
            Tokenize => sig(&[S, S], S),
            Backtrace | SprintBacktrace => sig(&[], S),
            PrintBacktrace => sig(&[], None),
            PrintStack => sig(&[S], None),
            SprintStack => sig(&[S], S),
            Symdata => sig(&[L], S),
            ModuleBias | URegister => sig(&[S], L),
            Returnval => sig(&[], L),
            UserString | UserStringWarn => Signature {
                args: &[L, S],
                optional: 1,
                variadic: false,
                ret: S,
            },
            UserStringN | UserStringNWarn => Signature {
                args: &[L, L, S],
                optional: 1,
                variadic: false,
                ret: S,
            },
            UserStringQuoted | KernelStringQuoted => sig(&[L], S),
            StringQuoted | TextStr => sig(&[S], S),
            TextStrn => sig(&[S, L, L], S),
            SprintLoadavg => sig(&[], S),
            GetLoadavgIndex => sig(&[L], L),
            UserBufferQuoted(_) => sig(&[L, L, L], S),
            KernelRead(..) => sig(&[L], L),
            KernelString => Signature {
                args: &[L, S],
                optional: 1,
                variadic: false,
                ret: S,
            },
            KernelStringN => sig(&[L, L], S),
            Context | TaskCurrent => sig(&[], L),
            UserInt8(_) | UserUint8(_) | UserInt16(_) | UserUint16(_) | UserInt32(_)
            | UserUint32(_) | UserInt64(_) | UserUint64(_) => sig(&[L], L),
            Strlen => sig(&[S], L),
            Substr => sig(&[S, L, L], S),
            Isinstr => sig(&[S, S], L),
            Strtol => sig(&[S, L], L),
            StringOf => sig(&[L], S),
            StrReplace => sig(&[S, S, S], S),
            MemPageSize | OnHost | Verbose | PidnsInum | RandomU32 => sig(&[], L),
            ProcComm => sig(&[L], S),
            HostId => sig(&[L], L),
            TzGmtoff => sig(&[], L),
            TzName => sig(&[], S),
            Print | Println => Signature {
                args: &[ANY],
                optional: 1,
                variadic: true,
                ret: None,
            },
            Printd | Printdln => Signature {
                args: &[S, ANY],
                optional: 0,
                variadic: true,
                ret: None,
            },
            Warn | Error | System => sig(&[S], None),
            Exit => sig(&[], None),
            Abs => sig(&[L], L),
            Min | Max => sig(&[L, L], L),
            ErrnoStr => sig(&[L], S),
            ErrnoP => sig(&[L], L),
            LookupStr | LookupOrStr => sig(&[L, L, S], S),
            SetSyscallRegs => sig(&[L], None),
            SyscallNr | IsCompatTask | Probing32bitApp => sig(&[], L),
            SyscallArg => sig(&[L, L, L, L], L),
            IntCast(..) => sig(&[L], L),
        }
    }

    /// What its kernel code needs computed at load time.
    /// Whether it reads the task (or CPU, or registers) the probe
    /// interrupted: a wall-clock timer calling it runs in the kernel
    /// (`resolve/kernel_timers.rs`).
    pub fn reads_interrupted_task(self) -> bool {
        use Builtin::*;
        matches!(
            self,
            Pid | Tid
                | Ppid
                | Uid
                | Gid
                | Execname
                | Cpu
                | UserMode
                | Addr
                | Uaddr
                | Probefunc
                | TaskCurrent
                | URegister
                | Ubacktrace
                | Ucallers
                | PrintUbacktrace(_)
                | SprintUbacktrace
                | Backtrace
                | PrintBacktrace
                | SprintBacktrace
        )
    }

    pub fn needs(self) -> Needs {
        use Builtin::*;
        let none = Needs::default();
        match self {
            Usymname => Needs {
                user_symbols: true,
                ..none
            },
            Backtrace | PrintBacktrace => Needs {
                kernel_stack: true,
                ..none
            },
            Ubacktrace | UbacktraceFrom | Ucallers | PrintUbacktrace(_) => Needs {
                unwind: true,
                ..none
            },
            Symname | Symdata | SprintStack => Needs {
                kernel_symbols: true,
                ..none
            },
            SprintBacktrace => Needs {
                kernel_symbols: true,
                kernel_stack: true,
                ..none
            },
            Probefunc => Needs {
                user_symbols: true,
                kernel_symbols: true,
                ..none
            },
            Ppid => Needs {
                task_offsets: true,
                ..none
            },
            Umodname => Needs {
                mappings: true,
                ..none
            },
            Usymdata => Needs {
                mappings: true,
                user_symbols: true,
                ..none
            },
            SprintUstack => Needs {
                mappings: true,
                user_symbols: true,
                ..none
            },
            SprintUbacktrace => Needs {
                mappings: true,
                user_symbols: true,
                unwind: true,
                ..none
            },
            SyscallNr | SyscallArg => Needs {
                pt_regs: true,
                ..none
            },
            _ => none,
        }
    }

    /// Every name a script can call a builtin by (for "did you mean").
    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().copied()
    }

    /// Reads the current task's memory (a fault is a probe error).
    pub fn reads_user_memory(self) -> bool {
        use Builtin::*;
        matches!(
            self,
            UserString
                | UserStringN
                | UserStringWarn
                | UserStringNWarn
                | UserStringQuoted
                | UserBufferQuoted(_)
                | UserInt8(_)
                | UserUint8(_)
                | UserInt16(_)
                | UserUint16(_)
                | UserInt32(_)
                | UserUint32(_)
                | UserInt64(_)
                | UserUint64(_)
        )
    }
}

/// `user_<type>[_warn|_error]`: the sized reads of user memory.
pub fn user_read(name: &str) -> Option<Builtin> {
    use Builtin::*;
    let rest = name.strip_prefix("user_")?;
    let (ty, fault) = if let Some(t) = rest.strip_suffix("_warn") {
        (t, Fault::Warn)
    } else if let Some(t) = rest.strip_suffix("_error") {
        (t, Fault::Error)
    } else {
        (rest, Fault::Zero)
    };
    Some(match ty {
        "char" | "int8" => UserInt8(fault),
        "uint8" => UserUint8(fault),
        "short" | "int16" => UserInt16(fault),
        "ushort" | "uint16" => UserUint16(fault),
        "int" | "int32" => UserInt32(fault),
        "uint32" => UserUint32(fault),
        "long" | "int64" => UserInt64(fault),
        "ulong" | "uint64" => UserUint64(fault),
        _ => return None,
    })
}

/// The names [`Builtin::from_name`] knows, for suggestions.
const NAMES: &[&str] = &[
    "pid",
    "tid",
    "ppid",
    "uid",
    "gid",
    "execname",
    "cpu",
    "target",
    "user_mode",
    "addr",
    "uaddr",
    "probefunc",
    "pp",
    "ppfunc",
    "pn",
    "tz_gmtoff",
    "tz_name",
    "gettimeofday_s",
    "gettimeofday_ms",
    "gettimeofday_us",
    "gettimeofday_ns",
    "local_clock_ns",
    "local_clock_us",
    "local_clock_ms",
    "local_clock_s",
    "jiffies",
    "usymname",
    "ubacktrace",
    "__stapxx_ubacktrace_from",
    "ucallers",
    "print_ubacktrace",
    "print_ubacktrace_brief",
    "sprint_ubacktrace",
    "print_ustack",
    "print_usyms",
    "sprint_ustack",
    "sprint_usyms",
    "usymdata",
    "tokenize",
    "backtrace",
    "print_backtrace",
    "print_stack",
    "print_syms",
    "sprint_stack",
    "sprint_syms",
    "sprint_backtrace",
    "symdata",
    "symname",
    "umodname",
    "u_register",
    "returnval",
    "user_string",
    "user_string_n",
    "user_string_warn",
    "user_string_n_warn",
    "user_string_quoted",
    "user_buffer_quoted",
    "user_buffer_quoted_error",
    "user_char",
    "user_short",
    "user_int",
    "user_long",
    "user_int8",
    "user_uint8",
    "user_int16",
    "user_uint16",
    "user_int32",
    "user_uint32",
    "user_int64",
    "user_uint64",
    "user_ulong",
    "user_ushort",
    "kernel_char",
    "kernel_short",
    "kernel_int",
    "kernel_long",
    "kernel_pointer",
    "kernel_string",
    "kernel_string_n",
    "kernel_string_quoted",
    "string_quoted",
    "text_str",
    "sprint_loadavg",
    "get_loadavg_index",
    "text_strn",
    "task_current",
    "strlen",
    "substr",
    "isinstr",
    "strtol",
    "str_replace",
    "mem_page_size",
    "string",
    "print",
    "println",
    "printd",
    "printdln",
    "warn",
    "system",
    "error",
    "exit",
    "abs",
    "min",
    "max",
    "errno_str",
    "errno_p",
    "__set_syscall_pt_regs",
    "_stp_syscall_nr",
    "_stp_arg2",
    "_stp_is_compat_task",
    "probing_32bit_app",
    "__short",
    "__ushort",
    "__int32",
    "__uint32",
    "__long",
    "__ulong",
    "_stp_sign_extend8",
    "_stp_sign_extend16",
    "_stp_sign_extend32",
    "printf",
    "sprintf",
    "sprint",
    "sprintln",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The suggestion list and the table agree.
    #[test]
    fn every_listed_name_is_a_builtin() {
        for n in NAMES {
            assert!(is_builtin(n), "{n}");
        }
    }
}

/// stap's `ppfunc()` of a probe point's text: the name after
/// `function("` (else `statement("`) up to `@` or `"`; "" when there is
/// none (`kernel.trace(...)`, `timer.s(1)`).
pub fn ppfunc_of(pp: &str) -> &str {
    let start = match (pp.find("function(\""), pp.find("statement(\"")) {
        (Some(i), _) => i + 10,
        (None, Some(i)) => i + 11,
        (None, None) => return "",
    };
    let rest = &pp[start..];
    &rest[..rest.find(['@', '"']).unwrap_or(rest.len())]
}

#[cfg(test)]
mod ppfunc_tests {
    #[test]
    fn names_in_points() {
        use super::ppfunc_of;
        assert_eq!(ppfunc_of(r#"process("/x").function("main@a.c:3")"#), "main");
        assert_eq!(ppfunc_of(r#"process("/x").function("f").return"#), "f");
        assert_eq!(ppfunc_of(r#"process("/x").statement("g@a.c:40")"#), "g");
        assert_eq!(ppfunc_of(r#"kernel.trace("sched:sched_switch")"#), "");
    }
}
