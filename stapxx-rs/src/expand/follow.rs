//! What `$^pid_ok` means when the traced processes change while the
//! session runs: the workers of an nginx master (`--master PID`), which a
//! reload (SIGHUP), a binary upgrade (SIGUSR2) or a crash replaces, and
//! every process running one executable (`--procs-of PATH`).
//!
//! A list of pids written into the script at start (what stap++ did) is
//! wrong after the first reload. Here `$^pid_ok` becomes a call of a
//! generated function, [`PID_OK`], which decides in the probe, at the time
//! it fires, from what the kernel says about the current process; the
//! function and whatever it needs are generated stap code ([`Follow::source`])
//! that the expansion adds to the program as one more file. That is the one
//! place that decides which processes are traced; a script that never uses
//! `$^pid_ok` gets none of it.
//!
//! * `--master`: the traced processes are the children of a master that are
//!   not masters themselves. A child's parent is read in the probe
//!   (`ppid()`: `current->real_parent->tgid`), so a worker is traced from
//!   its first instruction, whenever and however it was forked, and one that
//!   exited simply never fires again: nothing has to be added or dropped,
//!   and nothing is missed between reading `/proc` and the probes starting.
//!   Only the set of masters is kept, in a global the `begin` probe fills
//!   with the given master: a child of a master that runs exec() becomes a
//!   master (nginx's binary upgrade: the old master forks, the child runs
//!   the new executable and forks its own workers, and it stays a master
//!   after the old one quits and it is reparented), and a master leaves the
//!   set when it exits (its pid may be reused). The `begin` probe runs first
//!   of all `begin` probes, and kernel probes start only after every
//!   `begin` probe has run, with the globals it wrote.
//! * `--procs-of PATH`: the traced processes are those whose executable
//!   (`current->mm->exe_file`) is PATH's file, told by inode and device
//!   (see [`crate::target::FileIdentity`]). That covers processes running
//!   at start, later ones that exec() it (from their exec on, not before),
//!   and their forks; one that execs something else stops being traced.
//!   No state at all.
//!
//! In both, a process that is exiting is traced no more (its memory is being
//! torn down: reads would fault, and with workers retired at every reload
//! such faults would be routine).
//!
//! Both read kernel memory, so `$^pid_ok` is a test for kernel probes (the
//! process they fire in). In `begin`/`end`/timer probes, which run in
//! stapxx-rs, `--master`'s test is about stapxx-rs itself (false) and
//! `--procs-of`'s is an error (no task there).

use std::path::PathBuf;

use crate::target::FileIdentity;

/// What `$^pid_ok` expands to under [`Follow`].
pub const PID_OK: &str = "__stapxx_pid_ok()";

/// The name under which the generated code is registered: listings and
/// errors name it so.
pub const SOURCE_NAME: &str = "<generated: $^pid_ok>";

/// A process on its way out (PF_EXITING, 0x4, set before its memory is
/// torn down) is traced no more: probes that read its memory would fault,
/// and with processes coming and going (a reload retires every worker)
/// that would be routine, not the script's error.
const EXITING: &str = "\
# A process on its way out (PF_EXITING) is traced no more: its memory is
# going away.
function __stapxx_exiting() {
  return @cast(task_current(), \"task_struct\", \"kernel\")->flags & 4
}
";

/// Which processes `$^pid_ok` follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Follow {
    /// `--master PID`: the workers of this master and of the masters that
    /// take over from it.
    Master { pid: u32 },
    /// `--procs-of PATH`: every process whose executable is this file.
    Procs { path: PathBuf, exe: FileIdentity },
}

impl Follow {
    /// The generated stap code that defines [`PID_OK`] (see the module
    /// notes); comments say why, for `--dump-src` and `-p1` readers.
    pub fn source(&self) -> String {
        match self {
            Follow::Master { pid } => format!(
                "# Generated for --master {pid}: $^pid_ok is true in the children of a\n\
                 # master that are not masters themselves (the workers, also those started\n\
                 # later), decided when the probe fires.\n\
                 global __stapxx_masters\n\
                 # The given master; this runs before every other begin probe.\n\
                 probe begin(-9223372036854775807) {{ __stapxx_masters[{pid}] = 1 }}\n\
                 # A child of a master that runs exec() is a new master (a binary upgrade).\n\
                 probe kernel.trace(\"sched:sched_process_exec\") {{\n\
                 \x20 if (ppid() in __stapxx_masters) __stapxx_masters[pid()] = 1\n\
                 }}\n\
                 # A master that exited is none (its pid may come back); kernels before\n\
                 # 6.16 have no group_dead: the leader's exit stands for the process's.\n\
                 probe kernel.trace(\"sched:sched_process_exit\") {{\n\
                 \x20 if (@defined($group_dead) ? $group_dead : pid() == tid())\n\
                 \x20   delete __stapxx_masters[pid()]\n\
                 }}\n\
                 function __stapxx_pid_ok() {{\n\
                 \x20 return ppid() in __stapxx_masters && !(pid() in __stapxx_masters)\n\
                 \x20   && !__stapxx_exiting()\n\
                 }}\n\
                 {EXITING}"
            ),
            Follow::Procs { path, exe } => format!(
                "# Generated for --procs-of {path}: $^pid_ok is true in every process\n\
                 # whose executable is that file (inode {ino} on device {major}:{minor}),\n\
                 # whatever it is called, decided when the probe fires.\n\
                 function __stapxx_pid_ok() {{\n\
                 \x20 if (__stapxx_exiting()) return 0\n\
                 \x20 mm = @cast(task_current(), \"task_struct\", \"kernel\")->mm\n\
                 \x20 # Kernel threads have no memory and no executable.\n\
                 \x20 if (mm == 0) return 0\n\
                 \x20 exe = @cast(mm, \"mm_struct\", \"kernel\")->exe_file\n\
                 \x20 if (exe == 0) return 0\n\
                 \x20 inode = @cast(exe, \"file\", \"kernel\")->f_inode\n\
                 \x20 return @cast(inode, \"inode\", \"kernel\")->i_ino == {ino}\n\
                 \x20   && @cast(inode, \"inode\", \"kernel\")->i_sb->s_dev == {dev}\n\
                 }}\n\
                 {EXITING}",
                // (Only a comment: a newline must not end it.)
                path = path.display().to_string().replace('\n', "\\n"),
                ino = exe.ino,
                dev = exe.dev,
                major = exe.dev >> 20,
                minor = exe.dev & 0xfffff,
            ),
        }
    }
}
