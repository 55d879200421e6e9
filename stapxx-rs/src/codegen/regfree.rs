//! Whether a kernel probe's handler reads nothing of the interrupted
//! context: no register, no user memory. Such a handler (a counter of
//! samples, `pid() == target()` filters) skips what every other handler
//! pays for at entry: copying `struct pt_regs` into the frame, fetching
//! the task's user registers for a sample taken in the kernel, and
//! emptying the user-memory read cache.
//!
//! The answer is "free" only when every builtin the handler and the
//! functions it calls use is one known to need none of that (a list of
//! what is safe, so a builtin added later costs the copy until it is
//! listed here, never a wrong value).

use std::collections::HashSet;

use crate::ir::builtins::Builtin;
use crate::ir::print::walk_stmt;
use crate::ir::{ExprKind, Program, Stmt};

/// Whether `body` (a probe handler of `p`) reads no register, no user
/// memory and nothing that depends on where the sample was taken.
pub(super) fn context_free(p: &Program, body: &[Stmt]) -> bool {
    let mut seen = HashSet::new();
    let mut todo: Vec<&[Stmt]> = vec![body];
    let mut free = true;
    while let Some(stmts) = todo.pop() {
        let mut calls = Vec::new();
        for s in stmts {
            walk_stmt(s, &mut |e| match &e.kind {
                ExprKind::Builtin(b, _) if !needs_no_context(*b) => free = false,
                ExprKind::Call(f, _) => calls.push(f.0 as usize),
                _ => {}
            });
        }
        if !free {
            return false;
        }
        for f in calls {
            if seen.insert(f) {
                if let Some(func) = p.functions.get(f) {
                    todo.push(&func.body);
                }
            }
        }
    }
    free
}

/// Builtins that read neither the probe's registers nor user memory.
fn needs_no_context(b: Builtin) -> bool {
    use Builtin::*;
    matches!(
        b,
        Pid | Tid
            | Ppid
            | Uid
            | Gid
            | HostId
            | TzGmtoff
            | TzName
            | RandomU32
            | Execname
            | Cpu
            | Target
            | Pp
            | Ppfunc
            | Pn
            | GettimeofdayS
            | GettimeofdayMs
            | GettimeofdayUs
            | GettimeofdayNs
            | LocalClockNs
            | LocalClockUs
            | LocalClockMs
            | LocalClockS
            | Jiffies
            | Strlen
            | Substr
            | Isinstr
            | Strtol
            | StringOf
            | StrReplace
            | MemPageSize
            | OnHost
            | Verbose
            | Print
            | Println
            | Printd
            | Printdln
            | Warn
            | System
            | Error
            | Exit
            | Abs
            | Min
            | Max
            | ErrnoStr
            | LookupStr
            | LookupOrStr
            | IntCast(..)
    )
}
