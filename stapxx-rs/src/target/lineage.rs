//! How long a `--master` session lasts: while the master lives, or a
//! master that took over from it.
//!
//! nginx replaces its own master on a binary upgrade (SIGUSR2): the old
//! master forks a child that runs exec() on the (new) executable and starts
//! its own workers; the old one is then told to quit. The session follows
//! that (the kernel side follows the workers, see `expand/follow.rs`), so it
//! must not end with the first master, only when no master is left.
//!
//! Here, in the host, a master's successor is told from `/proc` while its
//! parent still lives (once the old master is gone the new one is
//! reparented and nothing links them): a child of a master that ran exec()
//! since it was forked, seen as another program layout than its parent's
//! (`startcode`, `endcode`, `startstack`, placed anew by every exec under
//! address randomisation; a fork keeps its parent's), or, when the layout
//! is hidden from us, one that has children of its own (workers have
//! none). Without address randomisation an exec of the same executable
//! may keep the layout, and then the successor is missed: the session
//! ends with the old master. The masters are looked at every time the
//! session checks on its target (ten times a second), so a successor is
//! seen unless its parent quits within that time of starting it.

use super::watch::{read, Identity};

/// The masters seen so far.
#[derive(Debug)]
pub struct Lineage {
    /// Those still running: pid and identity (to tell pid reuse).
    live: Vec<(u32, Identity)>,
    /// Every master seen, the first given, in the order found.
    pub seen: Vec<u32>,
}

impl Lineage {
    /// Starts with `master`; none at all when it is already gone.
    pub fn new(master: u32) -> Lineage {
        let live = read(master)
            .filter(|(state, _)| running(*state))
            .map(|(_, id)| (master, id));
        Lineage {
            live: live.into_iter().collect(),
            seen: vec![master],
        }
    }

    /// Looks again: successors of the live masters join them, masters that
    /// exited leave. Whether any master is left.
    pub fn refresh(&mut self) -> bool {
        let mut found: Vec<(u32, Identity)> = Vec::new();
        for &(m, m_id) in &self.live {
            if !still(m, m_id) {
                continue;
            }
            for c in children(m) {
                if self.live.iter().chain(&found).any(|x| x.0 == c) {
                    continue;
                }
                let Some((state, c_id)) = read(c) else {
                    continue;
                };
                if running(state) && successor(m_id, c_id, c) {
                    found.push((c, c_id));
                }
            }
        }
        self.seen.extend(found.iter().map(|x| x.0));
        self.live.extend(found);
        self.live.retain(|&(p, id)| still(p, id));
        !self.live.is_empty()
    }
}

/// A state letter of a process that has not exited.
fn running(state: char) -> bool {
    !matches!(state, 'Z' | 'X' | 'x')
}

/// Whether `pid` is still the process it was.
fn still(pid: u32, id: Identity) -> bool {
    read(pid).is_some_and(|(state, now)| running(state) && now.start_time == id.start_time)
}

/// Whether child `c` of a master took over as a master (see the module
/// notes).
fn successor(master: Identity, child: Identity, c: u32) -> bool {
    match (master.layout, child.layout) {
        (Some(a), Some(b)) => a != b,
        // Hidden (no permission to look): workers have no children.
        _ => !children(c).is_empty(),
    }
}

/// The children of `pid`, from each of its threads' `children` file (a
/// child belongs to the thread that forked it); the whole of `/proc` when
/// the kernel has no such files (CONFIG_PROC_CHILDREN off).
fn children(pid: u32) -> Vec<u32> {
    let tasks = format!("/proc/{pid}/task");
    let Ok(entries) = std::fs::read_dir(&tasks) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in entries.flatten() {
        match std::fs::read_to_string(t.path().join("children")) {
            Ok(text) => out.extend(
                text.split_whitespace()
                    .filter_map(|w| w.parse::<u32>().ok()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return super::children_of(pid).unwrap_or_default();
            }
            Err(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The shells of a test, in a process group of their own, killed
    /// whatever the test's outcome.
    struct Group(std::process::Child);

    impl Drop for Group {
        fn drop(&mut self) {
            // SAFETY: kill(2) on the process group this test made.
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }

    /// An nginx-like upgrade with shells: the master starts a worker (a
    /// fork) and a successor (a fork that runs exec() and starts a worker
    /// of its own). The session goes on when the old master exits, and
    /// ends when the successor does.
    #[test]
    fn a_successor_keeps_the_lineage_alive() {
        use std::os::unix::process::CommandExt;
        let mut group = Group(
            Command::new("sh")
                .args([
                    "-c",
                    "(while :; do sleep 1; done) & \
                     (exec sh -c '(while :; do sleep 1; done) & wait') & wait",
                ])
                .stdin(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap(),
        );
        let m = group.0.id();
        // The successor runs `sh -c '(...) & wait'` (the workers, forks,
        // show their parents' command lines).
        let cmdline = |p: u32| std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let successor = || {
            children(m)
                .into_iter()
                .find(|&c| cmdline(c) == b"sh\0-c\0(while :; do sleep 1; done) & wait\0")
        };
        assert!(wait_for(|| successor()
            .is_some_and(|s| !children(s).is_empty())
            && children(m).len() == 2));
        let s = successor().unwrap();
        let mut l = Lineage::new(m);
        assert!(l.refresh());
        assert_eq!(l.seen, vec![m, s], "only the successor is a master");
        let worker: Vec<u32> = children(m).into_iter().filter(|&c| c != s).collect();
        assert_eq!(worker.len(), 1, "{worker:?}");

        // The old master and its worker end.
        // SAFETY: kill(2) on processes this test started.
        unsafe { libc::kill(m as i32, libc::SIGKILL) };
        unsafe { libc::kill(worker[0] as i32, libc::SIGKILL) };
        let _ = group.0.wait();
        assert!(l.refresh(), "the successor lives on");
        assert_eq!(l.seen, vec![m, s]);

        // The successor ends: reparented, it is a zombie or gone.
        unsafe { libc::kill(s as i32, libc::SIGKILL) };
        assert!(wait_for(|| !l.refresh()), "no master left");
        assert_eq!(l.seen, vec![m, s]);
    }

    #[test]
    fn a_master_that_is_gone() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut l = Lineage::new(pid);
        assert!(!l.refresh());
        assert_eq!(l.seen, vec![pid]);
    }
}
