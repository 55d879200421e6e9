//! `kernel.trace("subsystem:event")`: tracepoints, found in tracefs
//! (`events/SUB/EVENT`); wildcards in either part match every event they
//! name, as in stap.
//!
//! An event the kernel's BTF types (it has a `__probestub_EVENT` function
//! with the event's `TP_PROTO` parameters) gets a raw tracepoint program:
//! its target variables are those parameters with their kernel types
//! (`$prev->pid` of `sched_switch`), as stap's debuginfo-typed tracepoint
//! arguments. Other events (the `syscalls:*` ones) get a classic
//! tracepoint program whose variables are the fields of the event's record
//! as its tracefs `format` file lists them (`$filename`, `$ret`).

use super::{Cx, Miss, SiteKind};
use crate::debuginfo::symbols::glob_match as glob;
use crate::kernel_btf::TpArg;
use ebpf_backend::Attachment;
use grammar::ast::{Literal, ProbePoint};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracepointSite {
    pub category: String,
    pub name: String,
    /// Which tasks the handler runs for (`process(...).begin/.end`).
    pub filter: Option<super::lifecycle::TaskFilter>,
    /// What the handler's target variables are.
    pub args: TpArgs,
    /// The system call a tapset alias reached this event for
    /// (`syscall.close`): its parameters are target variables too.
    pub syscall: Option<super::syscall::Syscall>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpArgs {
    /// The event's record (a classic tracepoint program).
    Record(Vec<RecordField>),
    /// The event's typed arguments (a raw tracepoint program).
    Typed(Vec<TpArg>),
}

/// A field of a tracepoint's record, from its tracefs `format` file
/// (`field:const char * filename; offset:24; size:8; signed:0;`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordField {
    pub name: String,
    /// The declaration's type text (`const char *`, `__data_loc char[]`).
    pub decl: String,
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
    /// `char comm[16]`: the value is the field's address.
    pub array: bool,
    /// `__data_loc`: a u32 whose low 16 bits are the data's offset in the
    /// record (its address is the value).
    pub data_loc: bool,
    /// The value's width and signedness by its declared C type, where that
    /// differs from the storage: a system call's `int dfd` is stored in 8
    /// unsigned bytes, and AT_FDCWD must read as -100.
    pub value: (u8, bool),
}

/// (bytes, signed) of a declared C scalar type, for the names record
/// fields use; None when the storage's own size and sign are to be kept.
fn declared(ty: &str) -> Option<(u8, bool)> {
    if ty.contains('*') {
        return Some((8, false));
    }
    let ty = ty.trim_start_matches("const ").trim();
    Some(match ty {
        "char" | "signed char" | "s8" | "__s8" => (1, true),
        "unsigned char" | "u8" | "__u8" | "bool" | "_Bool" => (1, false),
        "short" | "short int" | "s16" | "__s16" => (2, true),
        "unsigned short" | "u16" | "__u16" | "umode_t" => (2, false),
        "int" | "s32" | "__s32" | "pid_t" | "key_serial_t" | "clockid_t" | "timer_t" | "mqd_t"
        | "rwf_t" => (4, true),
        "unsigned int" | "unsigned" | "u32" | "__u32" | "uid_t" | "gid_t" | "qid_t" | "fmode_t"
        | "dev_t" => (4, false),
        "long"
        | "long int"
        | "long long"
        | "s64"
        | "__s64"
        | "loff_t"
        | "off_t"
        | "ssize_t"
        | "time_t"
        | "__kernel_old_time_t" => (8, true),
        "unsigned long" | "unsigned long long" | "u64" | "__u64" | "size_t" | "aio_context_t"
        | "cap_user_header_t" | "cap_user_data_t" => (8, false),
        _ => return None,
    })
}

impl RecordField {
    /// The common fields every record starts with (`common_pid`...).
    pub fn is_common(&self) -> bool {
        self.name.starts_with("common_")
    }
}

impl TracepointSite {
    pub fn describe(&self) -> String {
        let what = self.describe_event();
        match &self.syscall {
            Some(sc) => format!("{what} for {}", sc.signature()),
            None => what,
        }
    }

    fn describe_event(&self) -> String {
        match (&self.args, &self.filter) {
            (_, Some(f)) => format!(
                "tracepoint {}:{} for {}",
                self.category,
                self.name,
                f.describe()
            ),
            (TpArgs::Typed(args), None) => {
                let names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
                format!(
                    "raw tracepoint {} ({}:{}; arguments {})",
                    self.name,
                    self.category,
                    self.name,
                    names.join(", ")
                )
            }
            (TpArgs::Record(_), None) => format!("tracepoint {}:{}", self.category, self.name),
        }
    }
}

/// The fields of a tracepoint's record, in order.
pub fn fields(category: &str, name: &str) -> Vec<RecordField> {
    let Ok(dir) = ebpf_backend::attach::ensure_tracefs() else {
        return Vec::new();
    };
    let text = std::fs::read_to_string(dir.join("events").join(category).join(name).join("format"))
        .unwrap_or_default();
    text.lines().filter_map(parse_field).collect()
}

fn parse_field(line: &str) -> Option<RecordField> {
    let decl = line
        .trim()
        .split(';')
        .next()?
        .trim()
        .strip_prefix("field:")?;
    let num = |key: &str| -> Option<u64> {
        line.split(';')
            .find_map(|p| p.trim().strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    let last = decl
        .rsplit(|c: char| c.is_whitespace() || c == '*')
        .next()?;
    let name = last.split('[').next()?.to_string();
    let ty = decl[..decl.len() - last.len()].trim().to_string();
    let size = num("size:")? as u32;
    let signed = num("signed:").unwrap_or(0) == 1;
    let value = declared(&ty)
        .filter(|&(n, _)| u32::from(n) <= size)
        .unwrap_or((size.min(8) as u8, signed));
    Some(RecordField {
        value,
        array: last.contains('['),
        data_loc: decl.starts_with("__data_loc") || decl.starts_with("__rel_loc"),
        decl: ty,
        name,
        offset: num("offset:")? as u32,
        size,
        signed,
    })
}

/// (offset, size) of a field of a tracepoint's record.
pub fn field(category: &str, name: &str, field: &str) -> Option<(u16, u8)> {
    fields(category, name)
        .into_iter()
        .find(|f| f.name == field)
        .map(|f| (f.offset as u16, f.size as u8))
}

/// What the handler of an event sees: its typed arguments where the
/// kernel's BTF has them, else its record.
fn args_of(category: &str, name: &str) -> TpArgs {
    match crate::kernel_btf::Kernel::get().and_then(|k| k.tracepoint_args(name)) {
        Some(args) => TpArgs::Typed(args),
        None => TpArgs::Record(fields(category, name)),
    }
}

/// tracefs's `events/`; when this process cannot use tracefs, the
/// preflight's explanation (which permission or capability is missing).
pub(super) fn events_dir() -> Result<PathBuf, Miss> {
    crate::preflight::tracefs()
        .map(|t| t.join("events"))
        .map_err(Miss::Unserved)
}

/// The subdirectories of a tracefs directory, read once per run: the
/// tapsets' syscall aliases name `kernel.trace("sys_enter")` hundreds of
/// times, and a bare event name lists every subsystem.
fn dir_names(dir: &std::path::Path) -> Vec<String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static SEEN: Mutex<Option<HashMap<std::path::PathBuf, Vec<String>>>> = Mutex::new(None);
    if let Some(v) = SEEN
        .lock()
        .ok()
        .and_then(|m| m.as_ref().and_then(|m| m.get(dir).cloned()))
    {
        return v;
    }
    let v = read_dir_names(dir);
    if let Ok(mut m) = SEEN.lock() {
        m.get_or_insert_with(HashMap::new)
            .insert(dir.to_path_buf(), v.clone());
    }
    v
}

fn read_dir_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub fn resolve(pt: &ProbePoint, _cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    let spec = match (pt.components.len(), &pt.components[1].arg) {
        (2, Some(Literal::String(s))) => s.clone(),
        _ => {
            return Err(Miss::Invalid(
                "expected kernel.trace(\"subsystem:event\")".into(),
            ))
        }
    };
    let (cat_pat, ev_pat) = match spec.split_once(':') {
        Some((c, e)) => (c.to_string(), e.to_string()),
        // stap also takes a bare event name: any subsystem.
        None => ("*".to_string(), spec.clone()),
    };
    let events = events_dir()?;
    let mut out = Vec::new();
    let mut all = Vec::new();
    for cat in dir_names(&events) {
        let names = dir_names(&events.join(&cat));
        let cat_ok = glob(&cat_pat, &cat);
        for ev in names {
            if cat_ok && glob(&ev_pat, &ev) {
                out.push(SiteKind::Tracepoint(TracepointSite {
                    category: cat.clone(),
                    name: ev.clone(),
                    filter: None,
                    args: args_of(&cat, &ev),
                    syscall: None,
                }));
            }
            all.push(format!("{cat}:{ev}"));
        }
    }
    if out.is_empty() {
        let near = crate::debuginfo::layout::nearest(&spec, all.iter().map(|s| s.as_str()), 3);
        return Err(Miss::NoMatch(format!(
            "no tracepoint '{spec}' in {} (nearest: {})",
            events.display(),
            near.join(", ")
        )));
    }
    Ok(out)
}

pub fn attach(t: &TracepointSite, prog: &ebpf_backend::Program) -> Result<Vec<Attachment>, String> {
    match t.args {
        TpArgs::Typed(_) => prog.attach_raw_tracepoint(&t.name),
        TpArgs::Record(_) => prog.attach_tracepoint(&t.category, &t.name),
    }
    .map(|a| vec![a])
    .map_err(|e| format!("cannot attach: {e}"))
}

/// The program kind of a site.
pub fn prog_kind(t: &TracepointSite) -> ebpf_backend::ProgKind {
    match t.args {
        TpArgs::Typed(_) => ebpf_backend::ProgKind::RawTracepoint {
            name: t.name.clone(),
        },
        TpArgs::Record(_) => ebpf_backend::ProgKind::Tracepoint {
            category: t.category.clone(),
            name: t.name.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_fields_keep_their_declared_types() {
        let f = |l: &str| parse_field(l).unwrap();
        let dfd = f("\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;");
        assert_eq!(
            (dfd.name.as_str(), dfd.offset, dfd.size, dfd.value),
            ("dfd", 16, 8, (4, true))
        );
        let name = f("\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;");
        assert_eq!(
            (name.decl.as_str(), name.value, name.array),
            ("const char *", (8, false), false)
        );
        let comm = f("\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;");
        // (An array's value is its address.)
        assert_eq!(
            (comm.name.as_str(), comm.decl.as_str(), comm.array),
            ("prev_comm", "char", true)
        );
        let loc = f("\tfield:__data_loc char[] name;\toffset:8;\tsize:4;\tsigned:0;");
        assert!(loc.data_loc && loc.decl == "__data_loc char[]");
        // An unknown type keeps the storage's size and sign.
        let ret = f("\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;");
        assert_eq!(ret.value, (8, true));
        let odd = f("\tfield:struct foo x;\toffset:16;\tsize:4;\tsigned:1;");
        assert_eq!(odd.value, (4, true));
        assert!(
            parse_field("\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;")
                .unwrap()
                .is_common()
        );
    }
}
