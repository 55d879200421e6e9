//! Access to files the kernel guards by more than capabilities: tracefs
//! (file modes), `/proc/kallsyms` addresses (sysctls and CAP_SYSLOG), a
//! target's memory (ptrace rules). Each is tried the way the session will
//! use it, so the answer is the kernel's, and a refusal is explained.

use super::caps::{join_and, Cap, Creds};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where tracefs may be, in the order the attach code looks.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// tracefs's root, mounting it when it is nowhere (as attaching does);
/// otherwise why this process cannot use it. Tracepoints (and process
/// begin/end, which use them) read their ids and record formats there.
pub fn tracefs() -> Result<PathBuf, String> {
    let mut denied = None;
    for root in TRACEFS.map(Path::new) {
        match std::fs::metadata(root.join("events")) {
            Ok(m) if m.is_dir() => return Ok(root.to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                denied.get_or_insert(root);
            }
            _ => {}
        }
    }
    let creds = Creds::current();
    let also = lacking_for_tracepoints(&creds);
    if let Some(root) = denied {
        let owner = std::fs::metadata(root)
            .map(|m| format!(" (mode {:o}, owner uid {})", m.mode() & 0o7777, m.uid()))
            .unwrap_or_default();
        return Err(format!(
            "tracepoints need tracefs, and this process may not read {}{owner}: \
             run as its owner, or with {}{also}",
            root.display(),
            Cap::DacReadSearch.name()
        ));
    }
    ebpf_backend::attach::ensure_tracefs().map_err(|e| {
        let eperm = matches!(&e, ebpf_backend::Error::Sys { source, .. }
            if source.raw_os_error() == Some(libc::EPERM));
        if eperm {
            format!(
                "tracepoints need tracefs, which is not mounted, and mounting it on {} \
                 needs {}{also}",
                TRACEFS[0],
                Cap::SysAdmin.name()
            )
        } else {
            format!("tracepoints need tracefs: {e}")
        }
    })
}

/// `; loading them also needs CAP_BPF, which this process lacks too`, or
/// nothing: the whole answer in the one message tracefs gives.
fn lacking_for_tracepoints(creds: &Creds) -> String {
    let missing: Vec<&str> = [Cap::Bpf, Cap::Perfmon]
        .into_iter()
        .filter(|&c| !creds.has(c))
        .map(Cap::name)
        .collect();
    if missing.is_empty() {
        String::new()
    } else {
        format!(
            "; loading them also needs {}, which this process lacks too",
            join_and(&missing)
        )
    }
}

fn sysctl(name: &str) -> Option<i64> {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether `/proc/kallsyms` shows this process the kernel's addresses
/// (the kernel prints zeros instead when it may not see them); else why.
pub fn kallsyms() -> Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let n = std::fs::File::open("/proc/kallsyms")
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| format!("cannot read /proc/kallsyms: {e}"))?;
    let text = String::from_utf8_lossy(&head[..n]);
    let addr = text
        .split_whitespace()
        .next()
        .and_then(|a| u64::from_str_radix(a, 16).ok());
    if addr.is_some_and(|a| a != 0) {
        return Ok(());
    }
    let kptr = sysctl("kptr_restrict").unwrap_or(-1);
    let paranoid = sysctl("perf_event_paranoid").unwrap_or(-1);
    if kptr >= 2 {
        return Err(format!(
            "/proc/kallsyms shows no addresses: kernel.kptr_restrict is {kptr}, which hides \
             them from everyone (with 1 they need {}; with 0 and \
             kernel.perf_event_paranoid <= 1 anyone may read them)",
            Cap::Syslog.name()
        ));
    }
    Err(format!(
        "/proc/kallsyms shows this process no addresses: reading them needs {} \
         (kernel.kptr_restrict is {kptr}, kernel.perf_event_paranoid is {paranoid}; \
         with kptr_restrict 0 and perf_event_paranoid <= 1 anyone may read them)",
        Cap::Syslog.name()
    ))
}

/// Whether this process may read `pid`'s memory through `/proc/PID/mem`
/// (what host probes do); else why not.
pub fn target_memory(pid: u32) -> Result<(), String> {
    let path = format!("/proc/{pid}/mem");
    match std::fs::File::open(&path) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "cannot open {path}: {e} (another user's process needs {} and {}; \
             one of the same user that holds capabilities this process lacks needs {})",
            Cap::SysPtrace.name(),
            Cap::DacReadSearch.name(),
            Cap::SysPtrace.name()
        )),
    }
}
