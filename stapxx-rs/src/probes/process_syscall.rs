//! `process[("P"|PID)].syscall` and `.syscall.return`: every system call
//! a task of executable P (or of process PID) makes (every task's, without
//! either), entered and
//! returning, as stapprobes(3stap) has them: `$syscall` is the call's
//! number, `$arg1`..`$arg6` its arguments, `$return` (at the return) its
//! result. stap runs them on utrace, which this kernel lacks; the
//! `raw_syscalls:sys_enter`/`sys_exit` tracepoints fire in the calling
//! task for every call, so they serve, with the task test of
//! [`lifecycle`](super::lifecycle)'s probes and the record's fields
//! renamed to stap's names.

use super::lifecycle::{exe_id, TaskFilter};
use super::trace::{fields, RecordField, TpArgs, TracepointSite};
use super::{Cx, Miss, SiteKind};
use grammar::ast::{Literal, ProbePoint};

pub fn resolve(pt: &ProbePoint, cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    let c = &pt.components;
    let names: Vec<&str> = c.iter().skip(1).map(|c| c.name.as_str()).collect();
    let is_return = match names.as_slice() {
        ["syscall"] => false,
        ["syscall", "return"] => true,
        _ => {
            return Err(Miss::NoMatch(
                "expected process(...).syscall or .syscall.return".into(),
            ))
        }
    };
    if let Some(arg) = c.iter().skip(1).find_map(|c| c.arg.as_ref()) {
        return Err(Miss::Invalid(format!(
            ".syscall takes no argument (got {arg:?})"
        )));
    }
    super::trace::events_dir()?;
    let filter = match &c[0].arg {
        None => TaskFilter::default(),
        Some(Literal::String(path)) => TaskFilter {
            exe: Some(exe_id(cx, path)?),
            exe_path: Some(path.clone()),
            ..TaskFilter::default()
        },
        Some(Literal::Number(pid)) => TaskFilter {
            pid: Some(
                u32::try_from(*pid)
                    .map_err(|_| Miss::Invalid(format!("process({pid}): not a process id")))?,
            ),
            ..TaskFilter::default()
        },
    };
    let event = if is_return { "sys_exit" } else { "sys_enter" };
    let record = fields("raw_syscalls", event);
    let mut args = Vec::new();
    for f in &record {
        match f.name.as_str() {
            "id" => args.push(renamed(f, "syscall", 0)),
            "ret" => args.push(renamed(f, "return", 0)),
            // `unsigned long args[6]`: one 8-byte field per argument.
            "args" => {
                for i in 0..f.size / 8 {
                    let mut a = renamed(f, &format!("arg{}", i + 1), 8 * i);
                    a.decl = "unsigned long".into();
                    a.size = 8;
                    a.array = false;
                    a.value = (8, false);
                    args.push(a);
                }
            }
            _ => args.push(f.clone()),
        }
    }
    if !args.iter().any(|a| a.name == "syscall") {
        return Err(Miss::Unserved(format!(
            "no raw_syscalls:{event} tracepoint with an 'id' field in tracefs"
        )));
    }
    Ok(vec![SiteKind::Tracepoint(TracepointSite {
        category: "raw_syscalls".into(),
        name: event.into(),
        filter: Some(filter),
        args: TpArgs::Record(args),
        syscall: None,
    })])
}

/// Field `f` under stap's name, `delta` bytes further on.
fn renamed(f: &RecordField, name: &str, delta: u32) -> RecordField {
    RecordField {
        name: name.into(),
        offset: f.offset + delta,
        ..f.clone()
    }
}
