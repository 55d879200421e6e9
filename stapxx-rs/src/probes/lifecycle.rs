//! `process[("P")].begin`, `.end`, `.thread.begin`, `.thread.end`: a
//! process or thread of executable P starting or ending, as
//! stapprobes(3stap) has them, run in that task's own context. This kernel
//! has no utrace and no kprobes; tracepoints that fire in the task itself
//! serve instead, each with a filter the handler's program tests first
//! ([`TaskFilter`], emitted by `codegen/filter.rs`):
//!
//! * begin: `sched:sched_process_exec` (a new image of P), and the child's
//!   return from `fork`/`vfork`/`clone`/`clone3` (`syscalls:sys_exit_*`
//!   with return value 0, in a thread group leader: a new process);
//! * thread.begin: the child's return from `clone`/`clone3` in a thread
//!   that is not its group's leader;
//! * end: `sched:sched_process_exit` with `group_dead` set (the last
//!   thread); thread.end: the same tracepoint in a non-leader thread.
//!
//! "Running P" is decided by the task's executable file
//! (`current->mm->exe_file`) against P's device and inode. Processes that
//! already run when the session starts get no `begin` (stap fires it for
//! them): nothing in the kernel runs in their context at that moment.
//! `process(PID).end` and `.thread.*` take one running process by its id
//! (its `begin` is past: refused).

use super::trace::{field, TracepointSite};
use super::{Cx, Miss, SiteKind};
use grammar::ast::{Literal, ProbePoint};

/// What a task must be for the handler to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Its executable: (device as the kernel numbers it, inode).
    pub exe: Option<(u64, u64)>,
    /// That executable's path as the script names it (for listings).
    pub exe_path: Option<String>,
    /// `process(PID)`: the task's thread group (process) id.
    pub pid: Option<u32>,
    /// `Some(true)`: a thread group leader only; `Some(false)`: any
    /// other thread only.
    pub leader: Option<bool>,
    /// A field of the tracepoint's record that must be zero (`false`) or
    /// not (`true`): (offset, size, nonzero).
    pub record: Option<(u16, u8, bool)>,
}

/// `pp()` of `process("P").begin` (`.end`, `.thread.begin`, ...): P by
/// its full path, links resolved, as stap names it; `point` as written,
/// `exe` the path it names.
pub fn pp(point: &str, exe: &str) -> String {
    let quoted = format!(
        "process(\"{}\")",
        exe.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let Some(rest) = point.strip_prefix(&quoted) else {
        return point.to_string();
    };
    let full = std::fs::canonicalize(exe).map_or(exe.to_string(), |p| p.display().to_string());
    format!(
        "process(\"{}\"){rest}",
        full.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Event {
    Begin,
    End,
    ThreadBegin,
    ThreadEnd,
}

pub fn resolve(pt: &ProbePoint, cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    let c = &pt.components;
    let names: Vec<&str> = c.iter().skip(1).map(|c| c.name.as_str()).collect();
    let event = match names.as_slice() {
        ["begin"] => Event::Begin,
        ["end"] => Event::End,
        ["thread", "begin"] => Event::ThreadBegin,
        ["thread", "end"] => Event::ThreadEnd,
        _ => {
            return Err(Miss::NoMatch(
                "expected process(...).begin, .end, .thread.begin or .thread.end".into(),
            ))
        }
    };
    // Its tracepoints' record formats are read from tracefs: say so first
    // when this process cannot read it (not "no such field").
    super::trace::events_dir()?;
    let (exe, pid) =
        match &c[0].arg {
            None => (None, None),
            Some(Literal::String(path)) => (Some((exe_id(cx, path)?, path.clone())), None),
            // A process that exists: it can end, and start or end threads;
            // its own start is past.
            Some(Literal::Number(pid)) if event != Event::Begin => (
                None,
                Some(
                    u32::try_from(*pid)
                        .map_err(|_| Miss::Invalid(format!("process({pid}): not a process id")))?,
                ),
            ),
            Some(_) => return Err(Miss::Unserved(
                "process(PID).begin is not supported (the process has begun): name the executable"
                    .into(),
            )),
        };
    let filter = |leader, record| TaskFilter {
        exe: exe.as_ref().map(|e| e.0),
        exe_path: exe.as_ref().map(|e| e.1.clone()),
        pid,
        leader,
        record,
    };
    let mut out = Vec::new();
    let mut add = |category: &str, name: &str, f: TaskFilter| {
        out.push(SiteKind::Tracepoint(TracepointSite {
            category: category.into(),
            name: name.into(),
            filter: Some(f),
            args: super::trace::TpArgs::Record(Vec::new()),
            syscall: None,
        }))
    };
    // The child's side of a fork or clone: the syscall returns 0 there.
    let child_return = |name: &str| -> Result<(u16, u8, bool), Miss> {
        let (off, size) = field("syscalls", name, "ret").ok_or_else(|| {
            Miss::Unserved(format!(
                "no syscalls:{name} tracepoint with a 'ret' field in tracefs"
            ))
        })?;
        Ok((off, size, false))
    };
    match event {
        Event::Begin => {
            add("sched", "sched_process_exec", filter(None, None));
            for sys in [
                "sys_exit_fork",
                "sys_exit_vfork",
                "sys_exit_clone",
                "sys_exit_clone3",
            ] {
                add(
                    "syscalls",
                    sys,
                    filter(Some(true), Some(child_return(sys)?)),
                );
            }
        }
        Event::ThreadBegin => {
            for sys in ["sys_exit_clone", "sys_exit_clone3"] {
                add(
                    "syscalls",
                    sys,
                    filter(Some(false), Some(child_return(sys)?)),
                );
            }
        }
        Event::End => {
            let (off, size) = field("sched", "sched_process_exit", "group_dead")
                .ok_or_else(|| {
                    Miss::Unserved(
                        "sched:sched_process_exit has no 'group_dead' field on this kernel (6.16 or newer has it)"
                            .into(),
                    )
                })?;
            add(
                "sched",
                "sched_process_exit",
                filter(None, Some((off, size, true))),
            );
        }
        Event::ThreadEnd => add("sched", "sched_process_exit", filter(Some(false), None)),
    }
    Ok(out)
}

/// P's device (in the kernel's numbering: major << 20 | minor) and inode,
/// as the target sees the path.
pub(super) fn exe_id(cx: &mut Cx<'_>, path: &str) -> Result<(u64, u64), Miss> {
    let m = cx.modules.get(Some(path)).map_err(Miss::Invalid)?;
    let host = m.elf().path().to_path_buf();
    let id = crate::target::FileIdentity::of(&host)
        .map_err(|e| Miss::Invalid(format!("cannot stat {}: {e}", host.display())))?;
    Ok((id.dev, id.ino))
}

impl TaskFilter {
    /// For `-p2`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(pid) = self.pid {
            parts.push(format!("tasks of process {pid}"));
        }
        if let Some(p) = &self.exe_path {
            // Device and inode numbers differ from build to build: the
            // path stands for them here.
            parts.push(format!("tasks running {p}"));
        }
        match self.leader {
            Some(true) => parts.push("thread group leaders".to_string()),
            Some(false) => parts.push("threads other than the leader".to_string()),
            None => {}
        }
        if let Some((off, size, nonzero)) = self.record {
            parts.push(format!(
                "record bytes {off}..{} {}",
                off as u32 + size as u32,
                if nonzero { "nonzero" } else { "zero" }
            ));
        }
        if parts.is_empty() {
            "every task".into()
        } else {
            parts.join(", ")
        }
    }
}
