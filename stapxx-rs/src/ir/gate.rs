//! Which system call a handler is for, when its first statements say so.
//!
//! SystemTap's `tp_syscall.*` aliases put every handler on the raw
//! `sys_enter`/`sys_exit` tracepoints and leave at once for the calls they
//! do not describe:
//!
//! ```text
//! __set_syscall_pt_regs($regs)
//! try { __nr = _stp_syscall_nr() } catch { next }
//! if (_stp_is_compat_task()) { if (__nr != C) next } else if (__nr != K) next
//! ```
//!
//! (or `try { if (_stp_syscall_nr() != K) next } catch { next }`, or a
//! script's own `if ($id != K) next`). A script over all system calls
//! runs hundreds of such handlers on every call. Input: a handler's body.
//! Output: the one number K it can get past its start for, found by
//! following those first statements with the syscall number unknown:
//! locals it assigns, `_stp_is_compat_task()` (always 0 here: 64-bit tasks
//! only, see codegen/sregs.rs), `try`/`catch { next }`. Anything else ends
//! the search. Code generation then tests K before anything else in the
//! program (codegen/emit.rs), which is what the handler would have done
//! first, without its frame set-up.

use super::{Builtin, Expr, ExprKind, LocalId, Place, Stmt, StmtKind};
use crate::ir::CmpOp;
use std::collections::HashMap;

/// What an expression is, with the syscall number unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Val {
    Nr,
    Const(i64),
    Unknown,
}

/// The locals assigned so far (registers set, if at all, are the
/// tracepoint's own `$regs`; without them `_stp_syscall_nr()` reads the
/// task's, the same call's).
struct State {
    locals: HashMap<LocalId, Val>,
}

enum Step {
    /// Past this statement: go on.
    Continue,
    /// The handler goes on only for this number.
    Gate(i64),
    /// It never goes on (the compat-only calls: `if (!compat) next`).
    Never,
    /// Cannot tell.
    Stop,
}

/// What a handler's start lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Only the system call of this number.
    Only(i64),
    /// No call at all.
    Never,
}

/// The number stap's runtime gives the system calls this architecture
/// does not have (`compat_unistd.h`: one past its default maximum,
/// 0xffff), and the constants data gives them too, so that the tapsets'
/// gates for them never match: a handler for it is for no call. (Only a
/// program that invokes syscall(65536) itself would see a difference.)
pub const NO_SUCH_CALL: i64 = 0x10000;

/// What `body` can run past its start for, when its start says.
pub fn syscall_gate(body: &[Stmt]) -> Option<Gate> {
    let mut st = State {
        locals: HashMap::new(),
    };
    match stmts(body, &mut st) {
        Step::Gate(k) if k >= NO_SUCH_CALL => Some(Gate::Never),
        Step::Gate(k) => Some(Gate::Only(k)),
        Step::Never => Some(Gate::Never),
        _ => None,
    }
}

fn stmts(list: &[Stmt], st: &mut State) -> Step {
    for s in list {
        match stmt(s, st) {
            Step::Continue => {}
            other => return other,
        }
    }
    Step::Continue
}

fn is_next(list: &[Stmt]) -> bool {
    matches!(
        list,
        [Stmt {
            kind: StmtKind::Next,
            ..
        }]
    )
}

fn stmt(s: &Stmt, st: &mut State) -> Step {
    match &s.kind {
        StmtKind::Block(b) => stmts(b, st),
        StmtKind::Expr(e) => match &e.kind {
            // Setting the registers to the tracepoint's own `$regs`: the
            // number read from them is the call's.
            ExprKind::Builtin(Builtin::SetSyscallRegs, args) if is_ctx_regs(&args[0]) => {
                Step::Continue
            }
            // A value it can follow; anything else (a read that may
            // fault, a call) could do something before the gate.
            ExprKind::Assign(Place::Local(l), v) => match value(v, st) {
                Val::Unknown => Step::Stop,
                v => {
                    st.locals.insert(*l, v);
                    Step::Continue
                }
            },
            _ => Step::Stop,
        },
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => match pred(cond, st) {
            Pred::Const(true) if is_next(then) => Step::Never,
            Pred::Const(false) if is_next(otherwise) => Step::Never,
            Pred::Const(true) => stmts(then, st),
            Pred::Const(false) => stmts(otherwise, st),
            Pred::NrNe(k) if is_next(then) && otherwise.is_empty() => Step::Gate(k),
            Pred::NrEq(k) if then.is_empty() && is_next(otherwise) => Step::Gate(k),
            _ => Step::Stop,
        },
        // An error in the body (no registers) leaves, as the gate does.
        StmtKind::Try {
            body,
            var: None,
            handler,
        } if is_next(handler) => stmts(body, st),
        _ => Step::Stop,
    }
}

enum Pred {
    Const(bool),
    NrNe(i64),
    NrEq(i64),
    Unknown,
}

fn pred(e: &Expr, st: &State) -> Pred {
    if let ExprKind::Cmp(op, a, b) = &e.kind {
        let (a, b) = (value(a, st), value(b, st));
        let k = match (a, b) {
            (Val::Nr, Val::Const(k)) | (Val::Const(k), Val::Nr) => k,
            (Val::Const(x), Val::Const(y)) => {
                return Pred::Const(match op {
                    CmpOp::Eq => x == y,
                    CmpOp::Ne => x != y,
                    CmpOp::Lt => x < y,
                    CmpOp::Le => x <= y,
                    CmpOp::Gt => x > y,
                    CmpOp::Ge => x >= y,
                })
            }
            _ => return Pred::Unknown,
        };
        return match op {
            CmpOp::Ne => Pred::NrNe(k),
            CmpOp::Eq => Pred::NrEq(k),
            _ => Pred::Unknown,
        };
    }
    if let ExprKind::Not(a) = &e.kind {
        return match pred(a, st) {
            Pred::Const(b) => Pred::Const(!b),
            Pred::NrNe(k) => Pred::NrEq(k),
            Pred::NrEq(k) => Pred::NrNe(k),
            Pred::Unknown => Pred::Unknown,
        };
    }
    match value(e, st) {
        Val::Const(k) => Pred::Const(k != 0),
        _ => Pred::Unknown,
    }
}

fn value(e: &Expr, st: &State) -> Val {
    match &e.kind {
        ExprKind::Long(k) => Val::Const(*k),
        ExprKind::Builtin(Builtin::SyscallNr, _) => Val::Nr,
        // Only 64-bit tasks here (codegen/sregs.rs).
        ExprKind::Builtin(Builtin::IsCompatTask | Builtin::Probing32bitApp, _) => Val::Const(0),
        ExprKind::Read(Place::Local(l)) => st.locals.get(l).copied().unwrap_or(Val::Const(0)),
        _ => Val::Unknown,
    }
}

/// `kernel_pointer(__stapxx_context())`: a raw syscall tracepoint's `$regs`.
fn is_ctx_regs(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Builtin(Builtin::KernelRead(8, _), a)
        if matches!(a.as_slice(), [Expr { kind: ExprKind::Builtin(Builtin::Context, _), .. }]))
}
