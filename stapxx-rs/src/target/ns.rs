//! Whether the target lives in another pid namespace than stapxx-rs (a
//! container), and what its pid is there.
//!
//! Every pid stapxx-rs takes or gives is one of its own namespace: `-x`
//! and `--master` name host pids, and `pid()`, `tid()`, `target()` and
//! `$^pid_ok` compare the ids the BPF helpers return, which are the
//! initial namespace's. A container's own tools (its `ps`, its logs) show
//! other numbers, so the start of a run says which is which.

/// The pid process `pid` has in its own, innermost pid namespace, when
/// that is not ours (`/proc/PID/ns/pid` differs from `/proc/self/ns/pid`);
/// `None` when it shares ours or cannot be told.
pub fn pid_in_own_namespace(pid: u32) -> Option<u32> {
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    let ours = std::fs::read_link("/proc/self/ns/pid").ok()?;
    if theirs == ours {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    innermost_pid(&status)
}

/// The last id of the `NSpid:` line of a `/proc/PID/status` (one id per
/// namespace level, outermost first).
fn innermost_pid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// The line that says a target is in another pid namespace (`None` when it
/// is not).
pub fn pid_namespace_note(pid: u32) -> Option<String> {
    let inner = pid_in_own_namespace(pid)?;
    Some(format!(
        "process {pid} is in another pid namespace, where it is pid {inner}: \
         -x, --master, pid(), tid(), target() and $^pid_ok use this host's pids"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nspid_lines() {
        let status = "Name:\tluajit\nTgid:\t20447\nNSpid:\t20447\t1\nNSpgid:\t20445\t0\n";
        assert_eq!(innermost_pid(status), Some(1));
        assert_eq!(innermost_pid("NSpid:\t17\n"), Some(17));
        assert_eq!(innermost_pid("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_shares_our_namespace() {
        assert_eq!(pid_in_own_namespace(std::process::id()), None);
        assert_eq!(pid_namespace_note(std::process::id()), None);
        assert_eq!(pid_in_own_namespace(4_000_000_000), None);
    }
}
