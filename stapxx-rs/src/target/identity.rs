//! Which file an executable is, the way the kernel tells files apart: its
//! inode number and the device of its filesystem. Names do not say it (a
//! symbolic link, a bind mount or a second hard link are the same file
//! under other names; a copy is another file under the same name), and the
//! kernel's own record of what a process runs (`mm->exe_file`) is a file,
//! not a name.
//!
//! The device is kept in the kernel's numbering (`major << 20 | minor`, as
//! `super_block.s_dev` holds it), so kernel probes can compare it with
//! what they read there. It comes from `stat(2)`, which reports the
//! superblock's device on ordinary filesystems (ext4, xfs, tmpfs, and
//! overlayfs in its usual setups); on btrfs `stat` reports a device per
//! subvolume instead, which no superblock holds, so a kernel-side
//! comparison never matches there.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::TargetError;

/// A file's identity: (device in the kernel's numbering, inode number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
}

impl FileIdentity {
    /// The identity of the file `path` names (links followed).
    pub fn of(path: &Path) -> io::Result<FileIdentity> {
        let md = std::fs::metadata(path)?;
        Ok(FileIdentity::from_stat(md.dev(), md.ino()))
    }

    /// From `stat`'s `st_dev` (user-space numbering) and `st_ino`.
    pub fn from_stat(st_dev: u64, ino: u64) -> FileIdentity {
        let (major, minor) = (libc::major(st_dev) as u64, libc::minor(st_dev) as u64);
        FileIdentity {
            dev: (major << 20) | minor,
            ino,
        }
    }
}

/// The processes whose executable is `exe` (by identity, not by name),
/// sorted by pid: every `/proc/PID/exe` that is the same file. Kernel
/// threads (no executable), processes that vanish meanwhile and those
/// this process may not inspect are left out.
pub fn processes_running(exe: FileIdentity) -> Result<Vec<u32>, TargetError> {
    let proc = Path::new("/proc");
    let entries = std::fs::read_dir(proc).map_err(|error| TargetError::Io {
        path: proc.to_path_buf(),
        error,
    })?;
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            FileIdentity::of(&proc.join(pid.to_string()).join("exe")).is_ok_and(|id| id == exe)
        })
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn kernel_device_numbering() {
        // st_dev 0xfe01 is 254:1; the kernel keeps it as 254 << 20 | 1.
        assert_eq!(
            FileIdentity::from_stat(0xfe01, 7),
            FileIdentity {
                dev: (254 << 20) | 1,
                ino: 7
            }
        );
        // Large minors (st_dev's split encoding) come out whole.
        let st_dev = libc::makedev(8, 300);
        assert_eq!(FileIdentity::from_stat(st_dev, 1).dev, (8 << 20) | 300);
    }

    #[test]
    fn processes_of_a_file_not_of_a_name() {
        // Two processes of a copy of `sleep`, one of the original: only
        // the copy's two are its processes, though all are named "sleep".
        let dir = std::env::temp_dir().join(format!("stapxx-identity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sleep = which("sleep");
        let copy = dir.join("sleep");
        std::fs::copy(&sleep, &copy).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&copy, &link).unwrap();
        let mut kids: Vec<std::process::Child> = [&copy, &link, &sleep]
            .iter()
            .map(|p| Command::new(p).arg("30").spawn().unwrap())
            .collect();
        let id = FileIdentity::of(&copy).unwrap();
        assert_eq!(FileIdentity::of(&link).unwrap(), id);
        let found = processes_running(id);
        let expected = {
            let mut v = vec![kids[0].id(), kids[1].id()];
            v.sort_unstable();
            v
        };
        for k in &mut kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(found.unwrap(), expected);
    }

    fn which(name: &str) -> std::path::PathBuf {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .expect("in PATH")
    }
}
