//! Facts about tasks that our `tapsets/linux/task.stp` cannot read from
//! kernel memory: stapxx-rs's own pid namespace (stap's "target
//! namespace" of `task_ns_pid()`/`task_ns_tid()`, which defaults to the
//! namespaces of the stap process itself) and, for `pid2execname()` in
//! host probes (which have no kernel task to read), `/proc/PID/comm`.

/// The inode number of this process's pid namespace (`/proc/self/ns/pid`
/// reads `pid:[N]`): kernel code finds the namespace among a task's pid
/// levels by it. 0 when it cannot be read (no level has inode 0, so the
/// ids then read 0, as the kernel gives for a task outside the namespace).
pub fn pid_ns_inum() -> i64 {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|l| parse_ns_link(&l.to_string_lossy()))
        .unwrap_or(0)
}

/// `N` of a namespace link `type:[N]`.
fn parse_ns_link(link: &str) -> Option<i64> {
    let inner = link.split_once(":[")?.1.strip_suffix(']')?;
    inner.parse().ok()
}

/// The command name of the task with id `pid` (a process or one of its
/// threads), as the kernel keeps it (`comm`, without the newline `/proc`
/// adds); empty when there is no such task, as stap's `pid2execname()`
/// gives for a pid without a task.
pub fn proc_comm(pid: i64) -> Vec<u8> {
    if pid <= 0 {
        return Vec::new();
    }
    let mut comm = std::fs::read(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.last() == Some(&b'\n') {
        comm.pop();
    }
    comm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_links_and_comm() {
        assert_eq!(parse_ns_link("pid:[4026531836]"), Some(4026531836));
        assert_eq!(parse_ns_link("pid:4026531836"), None);
        assert!(pid_ns_inum() > 0);
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(
            proc_comm(i64::from(std::process::id())),
            me.trim_end().as_bytes()
        );
        assert_eq!(proc_comm(0), b"");
        assert_eq!(proc_comm(-5), b"");
    }
}
