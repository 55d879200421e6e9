//! Whether the `-x` process is still the program the session was built
//! for.
//!
//! Everything resolved about the target (symbols, load biases, the
//! addresses `@var` reads, the libraries `$^libNAME_path` names) holds for
//! one program in one address space. The session ends when the process
//! exits, as staprun ends it, and also when it runs exec(): the pid stays,
//! but every one of those addresses now means something else (reads fault
//! or read another program's memory).
//!
//! Both are told from `/proc/PID/stat`: gone, a zombie or without memory
//! means exited; another start time means the pid now belongs to another
//! process; another code or stack address (`startcode`, `endcode`,
//! `startstack`, fixed for the life of an address space and placed anew,
//! randomly, by every exec) means exec. (An exec of the same executable
//! without address randomisation keeps them all, and then the old
//! addresses are right anyway.)
//!
//! Under `--master` the workers come and go (reloads, respawns), so the
//! session watches the masters instead ([`Watch::masters`], see
//! [`super::lineage`]): it ends when the master has exited and no master
//! that took over from it is left.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::lineage::Lineage;

/// What `/proc/PID/stat` says about a process's identity and program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// When it started (clock ticks after boot): tells pid reuse.
    pub start_time: u64,
    /// `startcode`, `endcode`, `startstack`; `None` when the kernel hides
    /// them (no memory: exiting; or no permission to look).
    pub layout: Option<[u64; 3]>,
}

/// The state letter and identity of process `pid`, or `None` if gone.
pub fn read(pid: u32) -> Option<(char, Identity)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a `/proc/PID/stat` line: fields after the command name (which
/// is in parentheses and may hold anything) start with the state (field
/// 3); start time is field 22, the three addresses fields 26 to 28.
fn parse_stat(text: &str) -> Option<(char, Identity)> {
    let (_, rest) = text.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let num = |field: usize| -> Option<u64> { f.get(field - 3)?.parse().ok() };
    let layout = [num(26)?, num(27)?, num(28)?];
    Some((
        state,
        Identity {
            start_time: num(22)?,
            layout: (layout != [0; 3]).then_some(layout),
        },
    ))
}

/// How a watched process ended, if it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Running,
    Exited,
    /// exec() replaced its program; `exe` is what it runs now.
    Replaced {
        exe: PathBuf,
    },
}

/// The traced process as it was when it was inspected.
#[derive(Clone, Debug)]
pub struct Watch {
    pub pid: u32,
    pub comm: String,
    pub identity: Option<Identity>,
    /// `--master`: the masters, from `pid` on (shared by the clones: the
    /// session's copy is the one that looks).
    pub lineage: Option<Arc<Mutex<Lineage>>>,
}

impl Watch {
    /// Watches the `--master` process `master` and the masters that take
    /// over from it.
    pub fn masters(master: u32) -> Watch {
        let comm = std::fs::read_to_string(format!("/proc/{master}/comm")).unwrap_or_default();
        Watch {
            pid: master,
            comm: comm.trim_end_matches('\n').to_string(),
            identity: read(master).map(|(_, id)| id),
            lineage: Some(Arc::new(Mutex::new(Lineage::new(master)))),
        }
    }

    /// What happened to the process since it was inspected (under
    /// `--master`: to every master).
    pub fn fate(&self) -> Fate {
        if let Some(l) = &self.lineage {
            let mut l = l.lock().unwrap_or_else(|p| p.into_inner());
            return if l.refresh() {
                Fate::Running
            } else {
                Fate::Exited
            };
        }
        let Some((state, now)) = read(self.pid) else {
            return Fate::Exited;
        };
        if matches!(state, 'Z' | 'X' | 'x') {
            return Fate::Exited;
        }
        let Some(then) = self.identity else {
            return Fate::Running;
        };
        if now.start_time != then.start_time {
            // The pid was reused: ours is gone.
            return Fate::Exited;
        }
        match (then.layout, now.layout) {
            (Some(a), Some(b)) if a != b => Fate::Replaced {
                exe: std::fs::read_link(format!("/proc/{}/exe", self.pid)).unwrap_or_default(),
            },
            // The memory is gone: the process is exiting.
            (Some(_), None) => Fate::Exited,
            _ => Fate::Running,
        }
    }

    /// The line that says why the session ends, for a fate that ends it.
    pub fn message(&self, fate: &Fate) -> Option<String> {
        if let (Some(l), Fate::Exited) = (&self.lineage, fate) {
            let l = l.lock().unwrap_or_else(|p| p.into_inner());
            let mut m = format!("master process {} ({}) exited", self.pid, self.comm);
            let after: Vec<String> = l.seen.iter().skip(1).map(u32::to_string).collect();
            if !after.is_empty() {
                m.push_str(&format!(
                    ", and so did the master(s) that took over from it ({})",
                    after.join(", ")
                ));
            }
            m.push_str(": ending the session");
            return Some(m);
        }
        let who = format!("target process {} ({})", self.pid, self.comm);
        match fate {
            Fate::Running => None,
            Fate::Exited => Some(format!("{who} exited: ending the session")),
            Fate::Replaced { exe } => Some(format!(
                "{who} ran exec() and now runs {}: what was resolved against its old program \
                 no longer holds, ending the session",
                exe.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_whatever_the_command_name() {
        // A name with a space and a parenthesis; fields as Linux 6.x prints them.
        let line = "4242 (a) b) S 1 4242 4242 0 -1 4194560 120 0 0 0 3 1 0 0 20 0 1 0 \
                    987654 2539520 182 18446744073709551615 94558000000000 94558000001000 \
                    140720000000000 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let (state, id) = parse_stat(line).unwrap();
        assert_eq!(state, 'S');
        assert_eq!(id.start_time, 987654);
        assert_eq!(
            id.layout,
            Some([94558000000000, 94558000001000, 140720000000000])
        );
        // Hidden (or gone) memory shows as zeros.
        let hidden = line
            .replace("94558000000000 94558000001000 140720000000000", "0 0 0")
            .replace(" S ", " Z ");
        assert_eq!(
            parse_stat(&hidden),
            Some((
                'Z',
                Identity {
                    start_time: 987654,
                    layout: None
                }
            ))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_running_and_a_dead_one_exited() {
        let me = std::process::id();
        let (_, id) = read(me).unwrap();
        let w = Watch {
            pid: me,
            comm: "me".into(),
            identity: Some(id),
            lineage: None,
        };
        assert_eq!(w.fate(), Fate::Running);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let id = read(pid).map(|(_, id)| id);
        child.wait().unwrap();
        let w = Watch {
            pid,
            comm: "true".into(),
            identity: id,
            lineage: None,
        };
        assert_eq!(w.fate(), Fate::Exited);
        assert_eq!(
            w.message(&Fate::Exited).unwrap(),
            format!("target process {pid} (true) exited: ending the session")
        );
    }
}
