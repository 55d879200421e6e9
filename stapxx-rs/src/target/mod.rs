//! Target discovery: what the traced process looks like, read from procfs.
//!
//! `-x PID` traces one process; `--master PID` traces the direct children of
//! a master process (nginx workers); `--procs-of PATH` every process running
//! an executable; `--exec PATH` names an executable without a process. This
//! module answers the questions the stapxx expansion and the later passes
//! ask about those processes: the executable path, the mapped files with
//! their addresses (for load biases), the root directory (for containers),
//! the children of a master, the processes running a file ([`FileIdentity`]),
//! and whether the target (or the last master) is still there ([`watch`]).
//!
//! Paths are kept as the target sees them, inside its own root and mount
//! namespace (a container's), whatever this host's `/proc` prints for
//! them. To open such a file from here use [`TargetInfo::locate`] (or
//! [`TargetInfo::host_path`], [`TargetInfo::open_module`]): [`files`]
//! decides which of the kernel's handles reaches it.

mod files;
mod identity;
pub mod inroot;
mod libmatch;
mod lineage;
mod maps;
pub mod ns;
pub mod watch;

pub use files::{proc_root, process_path, Reach, TargetFile};
pub use identity::{processes_running, FileIdentity};
pub use libmatch::{find_library, is_dso_path, LibMatch};
pub use maps::{parse_maps, MapEntry, MapPath, Perms};

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a process (or executable) could not be inspected.
#[derive(Debug)]
pub enum TargetError {
    /// `/proc/PID` does not exist (or the process exited while we looked).
    NoProcess { pid: u32 },
    /// The process has no executable, as kernel threads do.
    NoExecutable { pid: u32 },
    /// A procfs (or other) file could not be read.
    Io { path: PathBuf, error: io::Error },
    /// `/proc/PID/maps` had a line we do not understand.
    BadMaps { path: PathBuf, line: usize },
    /// The file given to `--exec` does not exist or is not a regular file.
    NoSuchExecutable { path: PathBuf },
    /// An external command (`ldd`) could not be run.
    Command { command: String, error: io::Error },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::NoProcess { pid } => {
                write!(f, "no process {pid}: /proc/{pid} does not exist")
            }
            TargetError::NoExecutable { pid } => write!(
                f,
                "process {pid} has no executable (/proc/{pid}/exe points nowhere; a kernel thread?)"
            ),
            TargetError::Io { path, error } => {
                write!(f, "cannot read {}: {}", path.display(), error)?;
                if error.kind() == io::ErrorKind::PermissionDenied {
                    write!(
                        f,
                        " (inspecting another user's process, or one holding capabilities \
                         this process lacks, needs root or CAP_SYS_PTRACE)"
                    )?;
                }
                Ok(())
            }
            TargetError::BadMaps { path, line } => {
                write!(f, "{}:{}: unexpected memory map line", path.display(), line)
            }
            TargetError::NoSuchExecutable { path } => {
                write!(f, "{} not found (or not a regular file)", path.display())
            }
            TargetError::Command { command, error } => {
                write!(f, "cannot run the command \"{command}\": {error}")
            }
        }
    }
}

impl std::error::Error for TargetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TargetError::Io { error, .. } | TargetError::Command { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<TargetError> for grammar::Diagnostic {
    fn from(e: TargetError) -> grammar::Diagnostic {
        grammar::Diagnostic::bare(e.to_string())
    }
}

/// One running process as seen through `/proc/PID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetInfo {
    pub pid: u32,
    /// The executable's path as the process sees it: the link
    /// `/proc/PID/exe` without the root's path this host prints in front
    /// of it (see [`files`]). If the file was replaced since the process
    /// started, the kernel appends ` (deleted)`; that is kept here as read
    /// ([`TargetInfo::locate`] then opens `/proc/PID/exe` itself).
    pub exe: PathBuf,
    /// The link `/proc/PID/root` as this host prints it (`/` unless
    /// chrooted; `/` also after `pivot_root` in another mount namespace).
    /// Only for messages: files are opened through
    /// [`TargetInfo::root_handle`].
    pub root: PathBuf,
    /// `/proc/PID/comm` without its newline.
    pub comm: String,
    /// `/proc/PID/maps`, in address order, with paths as the process sees
    /// them.
    pub maps: Vec<MapEntry>,
    /// Start time and program addresses from `/proc/PID/stat`, to tell
    /// later whether the process exited or ran exec() ([`watch`]).
    pub identity: Option<watch::Identity>,
}

impl TargetInfo {
    /// Reads everything about process `pid`.
    pub fn from_pid(pid: u32) -> Result<TargetInfo, TargetError> {
        let dir = proc_dir(pid);
        if pid == 0 || std::fs::symlink_metadata(&dir).is_err() {
            return Err(TargetError::NoProcess { pid });
        }
        let io_err = |path: PathBuf, error: io::Error| -> TargetError {
            // The process may have exited between two reads.
            if std::fs::symlink_metadata(&dir).is_err() {
                TargetError::NoProcess { pid }
            } else {
                TargetError::Io { path, error }
            }
        };

        // Read first: a change after this is seen as one.
        let identity = watch::read(pid).map(|(_, id)| id);
        let exe_link = dir.join("exe");
        let exe = match std::fs::read_link(&exe_link) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir.exists() => {
                return Err(TargetError::NoExecutable { pid })
            }
            Err(e) => return Err(io_err(exe_link, e)),
        };
        let root_link = dir.join("root");
        let root = std::fs::read_link(&root_link).map_err(|e| io_err(root_link, e))?;
        let comm_path = dir.join("comm");
        let comm = std::fs::read(&comm_path).map_err(|e| io_err(comm_path, e))?;
        let comm = String::from_utf8_lossy(&comm)
            .trim_end_matches('\n')
            .to_string();
        let maps_path = dir.join("maps");
        let maps_bytes = std::fs::read(&maps_path).map_err(|e| io_err(maps_path.clone(), e))?;
        // Pathnames are bytes; a lossy conversion only disturbs names that
        // could not appear in a script anyway.
        let mut maps = parse_maps(&String::from_utf8_lossy(&maps_bytes)).map_err(|line| {
            TargetError::BadMaps {
                path: maps_path,
                line,
            }
        })?;
        let exe = files::localize(pid, &root, &exe, &mut maps);
        Ok(TargetInfo {
            pid,
            exe,
            root,
            comm,
            maps,
            identity,
        })
    }

    /// What to watch to see this process exit or exec.
    pub fn watch(&self) -> watch::Watch {
        watch::Watch {
            pid: self.pid,
            comm: self.comm.clone(),
            identity: self.identity,
            lineage: None,
        }
    }

    /// The distinct mapped files, in order of their first mapping. A file
    /// deleted or replaced since is listed under its old path (see
    /// [`TargetInfo::is_deleted`]).
    pub fn mapped_files(&self) -> Vec<&Path> {
        let mut seen = std::collections::HashSet::new();
        self.maps
            .iter()
            .filter_map(MapEntry::file)
            .filter(|p| seen.insert(*p))
            .collect()
    }

    /// The mappings of one file, in address order (for load-bias
    /// computations).
    pub fn mappings_of<'a>(&'a self, file: &'a Path) -> impl Iterator<Item = &'a MapEntry> + 'a {
        self.maps.iter().filter(move |m| m.file() == Some(file))
    }

    /// Whether `file` is mapped only as a deleted (or since replaced) file.
    pub fn is_deleted(&self, file: &Path) -> bool {
        let mut maps = self.mappings_of(file).peekable();
        maps.peek().is_some() && maps.all(MapEntry::is_deleted)
    }

    /// The mapped shared objects (`*.so[.N...]`), sorted, each once: the
    /// candidates for `$^libNAME_path`. Deleted ones are included (stap++
    /// missed those and fell back to the executable).
    pub fn libraries(&self) -> Vec<PathBuf> {
        let mut libs: Vec<PathBuf> = self
            .mapped_files()
            .into_iter()
            .filter(|p| is_dso_path(p))
            .map(Path::to_path_buf)
            .collect();
        libs.sort();
        libs.dedup();
        libs
    }

    /// `$^libNAME_path` for this process (`name` without the `lib`).
    pub fn find_library(&self, name: &str) -> LibMatch {
        find_library(&self.libraries(), name)
    }
}

fn proc_dir(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}"))
}

/// The direct children of `master` (e.g. the nginx workers of an nginx
/// master), sorted by pid. Found by scanning the parent pid field of every
/// `/proc/*/stat`, as stap++ does; processes that vanish meanwhile are
/// skipped. An empty list is not an error here (stap++ then stops with
/// "No child processes found for PID.").
pub fn children_of(master: u32) -> Result<Vec<u32>, TargetError> {
    if master == 0 || std::fs::symlink_metadata(proc_dir(master)).is_err() {
        return Err(TargetError::NoProcess { pid: master });
    }
    let proc = Path::new("/proc");
    let entries = std::fs::read_dir(proc).map_err(|error| TargetError::Io {
        path: proc.to_path_buf(),
        error,
    })?;
    let mut children = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == master {
            continue;
        }
        let Ok(stat) = std::fs::read(entry.path().join("stat")) else {
            continue;
        };
        if parent_from_stat(&String::from_utf8_lossy(&stat)) == Some(master) {
            children.push(pid);
        }
    }
    children.sort_unstable();
    Ok(children)
}

/// The ppid field of a `/proc/PID/stat` line: `pid (comm) state ppid ...`,
/// where comm may itself contain spaces and parentheses.
fn parent_from_stat(stat: &str) -> Option<u32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// The shared libraries an executable links against, as `ldd PATH` lists
/// them (what stap++ does for `--exec`): every absolute `*.so[.N...]` path
/// in its output, sorted, each once. A static executable (for which `ldd`
/// fails) gives an empty list. Note that `ldd` may run the program's
/// dynamic loader, so only use it on executables you trust.
pub fn ldd_libraries(exe: &Path) -> Result<Vec<PathBuf>, TargetError> {
    if !std::fs::metadata(exe).map(|m| m.is_file()).unwrap_or(false) {
        return Err(TargetError::NoSuchExecutable {
            path: exe.to_path_buf(),
        });
    }
    let out = Command::new("ldd")
        .arg(exe)
        .output()
        .map_err(|error| TargetError::Command {
            command: format!("ldd {}", exe.display()),
            error,
        })?;
    Ok(libraries_from_ldd(&String::from_utf8_lossy(&out.stdout)))
}

fn libraries_from_ldd(output: &str) -> Vec<PathBuf> {
    let mut libs: Vec<PathBuf> = output
        .split_ascii_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .filter(|p| is_dso_path(p))
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process() {
        let me = TargetInfo::from_pid(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert_eq!(me.exe, std::env::current_exe().unwrap());
        assert!(me.root.is_absolute());
        assert!(!me.comm.is_empty() && !me.comm.contains('\n'));
        assert!(me.maps.windows(2).all(|w| w[0].start <= w[1].start));
        // The test binary itself is mapped, executable somewhere.
        assert!(me.mappings_of(&me.exe).any(|m| m.perms.exec));
        // So is the C library, and $^libc_path finds it.
        let libs = me.libraries();
        assert!(
            libs.iter().any(|p| p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libc"))),
            "{libs:?}"
        );
        let libc = me.find_library("c");
        assert!(matches!(libc, LibMatch::Exact { .. }), "{libc:?}");
        assert!(me.mapped_files().contains(&libc.path().unwrap()));
        let host = me.host_path(&me.exe);
        assert_eq!(
            host,
            PathBuf::from(format!("/proc/{}/root", me.pid)).join(me.exe.strip_prefix("/").unwrap())
        );
        assert!(host.exists());
    }

    #[test]
    fn missing_process() {
        // pid_max is at most 2^22, so this pid cannot exist.
        let pid = 4_000_000_000;
        let err = TargetInfo::from_pid(pid).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no process 4000000000: /proc/4000000000 does not exist"
        );
        assert!(matches!(
            children_of(pid),
            Err(TargetError::NoProcess { .. })
        ));
        assert!(matches!(
            TargetInfo::from_pid(0),
            Err(TargetError::NoProcess { pid: 0 })
        ));
    }

    #[test]
    fn children_of_this_process() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let children = children_of(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(children.unwrap().contains(&child.id()));
    }

    #[test]
    fn stat_parent() {
        assert_eq!(parent_from_stat("12 (nginx) S 1 12 12 0"), Some(1));
        assert_eq!(parent_from_stat("12 (a) b) (c) R 345 1"), Some(345));
        assert_eq!(parent_from_stat("12 (x"), None);
        assert_eq!(parent_from_stat("12 (x) S"), None);
        assert_eq!(parent_from_stat(""), None);
    }

    #[test]
    fn ldd_output() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibluajit-5.1.so.2 => /usr/lib/x86_64-linux-gnu/libluajit-5.1.so.2 (0x7f)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        assert_eq!(
            libraries_from_ldd(out),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
                PathBuf::from("/usr/lib/x86_64-linux-gnu/libluajit-5.1.so.2"),
            ]
        );
        // The test binary links against the C library.
        match ldd_libraries(&std::env::current_exe().unwrap()) {
            Ok(libs) => assert!(find_library(&libs, "c").path().is_some(), "{libs:?}"),
            Err(TargetError::Command { .. }) => {} // no ldd here
            Err(e) => panic!("{e}"),
        }
        assert!(matches!(
            ldd_libraries(Path::new("/nonexistent/nginx")),
            Err(TargetError::NoSuchExecutable { .. })
        ));
    }
}
