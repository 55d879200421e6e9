//! How a file of the traced process is opened from here: the one place
//! that decides, for the executable, every mapped object and every path a
//! script names (`process("...")`, `@cast(..., "/path")`,
//! `$^libNAME_path`, Lua sources for flame-graph names).
//!
//! The kernel prints the links `/proc/PID/exe`, `/proc/PID/root`,
//! `/proc/PID/cwd` and the paths of `/proc/PID/maps` as seen from the root
//! of the process *reading* them. For a chrooted target they all start
//! with the path of its root (`/c/merged/opt/app/luajit`); after
//! `pivot_root` in its own mount namespace they are its own
//! (`/opt/app/luajit`, with a root of `/`). Joining the root's link text
//! to the executable's puts the root in twice, and taking a printed path
//! as a host path opens the host's file, not the container's. So:
//!
//! * a path as the process sees it is the printed path with the printed
//!   root taken off, trusted only when `/proc/PID/root/<that path>` is the
//!   very inode (device and number) the maps name;
//! * a file is opened through the kernel's own handles: the target's root,
//!   `/proc/PID/root/<path as the process sees it>` (symbolic links
//!   resolved inside that root: [`super::inroot`]); or, when no path of
//!   the process reaches the mapped inode (deleted or replaced since it
//!   was mapped, or mapped from outside its root), the mapping itself:
//!   `/proc/PID/exe` for the executable, `/proc/PID/map_files/START-END`
//!   for the rest.
//!
//! The same paths go to the kernel for uprobes: it looks them up,
//! following the magic links, and places the probe on the inode found
//! (under overlayfs, on the real file the target maps).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::inroot;
use super::maps::{MapEntry, MapPath};
use super::TargetInfo;
use crate::debuginfo::{LocateOptions, Module};

/// How a mapped file is opened from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reach {
    /// Through the target's root: `/proc/PID/root/PATH` names the mapped
    /// inode.
    #[default]
    Root,
    /// Only through the mapping (`/proc/PID/exe`,
    /// `/proc/PID/map_files/START-END`): no path of the process names the
    /// mapped inode any more, or the path could not be told.
    Mapping,
}

/// One file of the target, found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFile {
    /// Its path as the process sees it (symbolic links resolved in its
    /// root), or, for a file outside its root, as this host printed it.
    pub path: PathBuf,
    /// Where this process opens it.
    pub open: PathBuf,
}

/// `/proc/PID/root`: the kernel's handle on the target's root directory.
pub fn proc_root(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root"))
}

/// The device (major, minor) and inode number of what `path` opens.
fn identity(path: &Path) -> Option<(u32, u32, u64)> {
    let md = std::fs::metadata(path).ok()?;
    Some((libc::major(md.dev()), libc::minor(md.dev()), md.ino()))
}

/// `printed` (a path this host's `/proc` printed for the target) with the
/// printed root taken off: the path as the target sees it, if it lies
/// under its root at all.
fn strip_root(root: &Path, printed: &Path) -> Option<PathBuf> {
    let rest = printed.strip_prefix(root).ok()?;
    Some(Path::new("/").join(rest))
}

/// Rewrites the file paths of `maps` (as this host printed them) into the
/// process's own, deciding how each file is reached, and returns the
/// executable's path as the process sees it (`exe`, as printed, when it
/// lies outside its root). `root` is the printed `/proc/PID/root`.
pub(super) fn localize(pid: u32, root: &Path, exe: &Path, maps: &mut [MapEntry]) -> PathBuf {
    let handle = proc_root(pid);
    // One decision per file (a path mapped as two files, before and after
    // a replacement, is two).
    let mut decided: std::collections::HashMap<(PathBuf, u32, u32, u64), (PathBuf, Reach)> =
        Default::default();
    for m in maps.iter_mut() {
        let MapPath::File { path, deleted } = &mut m.path else {
            continue;
        };
        let key = (path.clone(), m.dev_major, m.dev_minor, m.inode);
        let (inner, reach) = decided
            .entry(key)
            .or_insert_with(|| match strip_root(root, path) {
                Some(inner)
                    if !*deleted
                        && identity(&inroot::join(&handle, &inner))
                            == Some((m.dev_major, m.dev_minor, m.inode)) =>
                {
                    (inner, Reach::Root)
                }
                Some(inner) => (inner, Reach::Mapping),
                None => (path.clone(), Reach::Mapping),
            })
            .clone();
        if inner != *path {
            m.printed = Some(std::mem::replace(path, inner));
        }
        m.reach = reach;
    }
    strip_root(root, exe).unwrap_or_else(|| exe.to_path_buf())
}

impl TargetInfo {
    /// `/proc/PID/root`.
    pub fn root_handle(&self) -> PathBuf {
        proc_root(self.pid)
    }

    /// The file `path` names in the target: a path as the process sees it
    /// (what scripts name: `$^exec_path`, `$^libNAME_path`, a path inside
    /// a container), or one of its mapped files by the path this host's
    /// `/proc` prints for it. A relative path is taken as it is, on this
    /// host.
    pub fn locate(&self, path: &Path) -> TargetFile {
        if path.is_relative() {
            return TargetFile {
                path: path.to_path_buf(),
                open: path.to_path_buf(),
            };
        }
        let mapped = |p: &Path| {
            self.maps
                .iter()
                .find(|m| m.file() == Some(p) || m.printed.as_deref() == Some(p))
        };
        if let Some(m) = mapped(path) {
            return self.mapped(m);
        }
        let root = self.root_handle();
        let inner = inroot::resolve(&root, path);
        if let Some(m) = mapped(&inner) {
            return self.mapped(m);
        }
        let open = inroot::join(&root, &inner);
        if inner == self.exe && identity(&open) != identity(&self.exe_handle()) {
            // The executable, replaced (or gone) at its path since.
            return TargetFile {
                path: inner,
                open: self.exe_handle(),
            };
        }
        TargetFile { path: inner, open }
    }

    /// Where this process opens the target's `path` (see
    /// [`TargetInfo::locate`]).
    pub fn host_path(&self, path: &Path) -> PathBuf {
        self.locate(path).open
    }

    /// The ELF file `path` of the target, opened where
    /// [`TargetInfo::locate`] says; its separate debug file is looked for
    /// in the target's root first, then on this host, then from
    /// debuginfod.
    pub fn open_module(&self, path: &Path) -> crate::debuginfo::Result<Module> {
        let file = self.locate(path);
        Module::open_at(
            path,
            &file.open,
            LocateOptions::with_root(self.root_handle()),
        )
    }

    /// The mappings of the file `path` names (by its name, a link to it,
    /// or, failing those, the inode it opens to), in address order.
    pub fn mappings_of_file(&self, path: &Path) -> Vec<&MapEntry> {
        let file = self.locate(path);
        let by_name: Vec<&MapEntry> = self
            .maps
            .iter()
            .filter(|m| m.file() == Some(file.path.as_path()))
            .collect();
        if !by_name.is_empty() {
            return by_name;
        }
        let Some((major, minor, ino)) = identity(&file.open) else {
            return Vec::new();
        };
        self.maps
            .iter()
            .filter(|m| {
                m.file().is_some() && (m.dev_major, m.dev_minor, m.inode) == (major, minor, ino)
            })
            .collect()
    }

    fn exe_handle(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/exe", self.pid))
    }

    /// How the file of mapping `m` is opened.
    fn mapped(&self, m: &MapEntry) -> TargetFile {
        let path = m.file().unwrap_or(Path::new("/")).to_path_buf();
        let open = match m.reach {
            Reach::Root => inroot::join(&self.root_handle(), &path),
            // The executable's own handle needs no more than reading its
            // maps does; map_files needs CAP_SYS_ADMIN.
            Reach::Mapping
                if identity(&self.exe_handle()) == Some((m.dev_major, m.dev_minor, m.inode)) =>
            {
                self.exe_handle()
            }
            Reach::Mapping => PathBuf::from(format!(
                "/proc/{}/map_files/{:x}-{:x}",
                self.pid, m.start, m.end
            )),
        };
        TargetFile { path, open }
    }
}

/// Where this process opens `path` of the live process `pid`, for files
/// that are not mapped (Lua sources): an absolute path in its root, a
/// relative one from its working directory, links resolved inside its
/// root. `None` once the process is gone.
pub fn process_path(pid: u32, path: &Path) -> Option<PathBuf> {
    let root = proc_root(pid);
    let cwd = PathBuf::from(format!("/proc/{pid}/cwd"));
    let printed_root = std::fs::read_link(&root).ok()?;
    if path.is_absolute() {
        return Some(inroot::join(&root, &inroot::resolve(&root, path)));
    }
    // The working directory as the process sees it, when it can be told
    // (it is the very directory the cwd link names); else the link itself.
    let inner_cwd = std::fs::read_link(&cwd)
        .ok()
        .and_then(|c| strip_root(&printed_root, &c))
        .filter(|c| identity(&inroot::join(&root, c)) == identity(&cwd));
    Some(match inner_cwd {
        Some(c) => inroot::join(&root, &inroot::resolve(&root, &c.join(path))),
        None => cwd.join(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_paths_lose_the_printed_root() {
        let r = Path::new("/c/merged");
        assert_eq!(
            strip_root(r, Path::new("/c/merged/opt/app/luajit")),
            Some(PathBuf::from("/opt/app/luajit"))
        );
        assert_eq!(
            strip_root(Path::new("/"), Path::new("/opt/x")),
            Some(PathBuf::from("/opt/x"))
        );
        // Components, not characters.
        assert_eq!(strip_root(r, Path::new("/c/merged2/x")), None);
        assert_eq!(strip_root(r, Path::new("/usr/lib/x.so")), None);
    }

    #[test]
    fn a_process_at_the_hosts_root() {
        let me = TargetInfo::from_pid(std::process::id()).unwrap();
        // Nothing needs the mapping's handle here.
        assert!(me.maps.iter().all(|m| m.printed.is_none()));
        let exe = me.locate(&me.exe);
        assert_eq!(exe.path, me.exe);
        assert_eq!(
            exe.open,
            proc_root(me.pid).join(me.exe.strip_prefix("/").unwrap())
        );
        assert_eq!(
            identity(&exe.open),
            identity(Path::new(&format!("/proc/{}/exe", me.pid)))
        );
        assert!(!me.mappings_of_file(&me.exe).is_empty());
        let rel = Path::new("Cargo.toml");
        let cwd = process_path(me.pid, rel).unwrap();
        assert_eq!(std::fs::read(cwd).unwrap(), std::fs::read(rel).unwrap());
    }

    #[test]
    fn replaced_files_are_read_through_their_mappings() {
        let dir = std::env::temp_dir().join(format!("stapxx-replaced-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let me = TargetInfo::from_pid(std::process::id()).unwrap();
        let libc_host = me.host_path(me.find_library("c").path().unwrap());
        let (exe, libc) = (dir.join("sleep"), dir.join("libc.so.6"));
        std::fs::copy("/bin/sleep", &exe).unwrap();
        std::fs::copy(&libc_host, &libc).unwrap();
        let (exe_bytes, libc_bytes) = (std::fs::read(&exe).unwrap(), std::fs::read(&libc).unwrap());
        let mut child = std::process::Command::new(&exe)
            .arg("30")
            .env("LD_LIBRARY_PATH", &dir)
            .spawn()
            .unwrap();
        let pid = child.id();
        // Until the loader mapped the copy.
        let t0 = std::time::Instant::now();
        while !std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .unwrap_or_default()
            .contains(libc.to_str().unwrap())
        {
            assert!(t0.elapsed().as_secs() < 10, "libc copy never mapped");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Both replaced by other files at the same paths.
        for p in [&exe, &libc] {
            std::fs::remove_file(p).unwrap();
            std::fs::write(p, "not the mapped file").unwrap();
        }
        let t = TargetInfo::from_pid(pid).unwrap();
        let e = t.locate(&exe);
        let l = t.locate(&libc);
        let maps = t.mappings_of_file(&libc);
        // What the handles read, while the process holds the files.
        let exe_read = std::fs::read(&e.open).ok();
        let libc_read = std::fs::read(&l.open);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(exe_read, Some(exe_bytes));
        match libc_read {
            Ok(b) => assert!(b == libc_bytes),
            // map_files opens for CAP_SYS_ADMIN only.
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied),
        }
        assert_eq!(e.path, exe);
        assert_eq!(e.open, PathBuf::from(format!("/proc/{pid}/exe")));
        assert_eq!(l.path, libc);
        assert_eq!(
            l.open,
            PathBuf::from(format!(
                "/proc/{pid}/map_files/{:x}-{:x}",
                maps[0].start, maps[0].end
            ))
        );
        assert!(maps
            .iter()
            .all(|m| m.reach == Reach::Mapping && m.is_deleted()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
