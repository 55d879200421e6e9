//! Paths inside another process's root, resolved the way that process
//! resolves them.
//!
//! `/proc/PID/root` is the kernel's handle on a target's root directory,
//! but a path walked through it is still walked by *this* process: an
//! absolute symbolic link met on the way (Debian's
//! `/lib64/ld-linux-x86-64.so.2`, `/etc/alternatives/*`, the links of a
//! `.build-id` tree) restarts at this host's `/`, and `..` climbs above the
//! target's root. Either would open a host file in place of the
//! container's. So the walk is done here, one component at a time, with
//! absolute links and `..` kept inside the root, as the kernel's
//! `RESOLVE_IN_ROOT` does for `openat2` (which yields a descriptor, where
//! our callers need a path: the kernel's uprobe attach and the ELF reader
//! take paths).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// More links than this on one path is a loop (the kernel's limit).
const MAX_LINKS: usize = 40;

/// `inner` (absolute, as the target sees it) under `root`, a directory of
/// this host (`/proc/PID/root`): `..` and `.` dropped so that the path
/// cannot leave the root. No links are followed here: see [`resolve`].
pub fn join(root: &Path, inner: &Path) -> PathBuf {
    let mut out = root.to_path_buf();
    for c in inner.components() {
        if let Component::Normal(part) = c {
            out.push(part);
        }
    }
    out
}

/// The path `path` names inside the root directory `root` (a host path
/// such as `/proc/PID/root`), as the process whose root it is would
/// resolve it: every symbolic link in it followed, absolute link targets
/// and `..` taken from that root. The result is absolute in the target's
/// terms (join it with [`join`] to open it from here). A component that
/// does not exist ends the resolution: the rest is kept as written (minus
/// `.`, and `..` taken lexically), so that opening it fails as it would in
/// the target. A relative `path` is taken from the root.
pub fn resolve(root: &Path, path: &Path) -> PathBuf {
    let mut done: Vec<OsString> = Vec::new();
    let mut todo: VecDeque<OsString> = parts(path).collect();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            done.pop();
            continue;
        }
        done.push(part);
        let here = join(root, &inner_of(&done));
        match std::fs::symlink_metadata(&here) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                let target = match std::fs::read_link(&here) {
                    Ok(t) if links <= MAX_LINKS => t,
                    // A loop or an unreadable link: left in place, so the
                    // open fails on it.
                    _ => break,
                };
                done.pop();
                if target.is_absolute() {
                    done.clear();
                }
                for p in parts(&target).collect::<Vec<_>>().into_iter().rev() {
                    todo.push_front(p);
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    for part in todo {
        if part == ".." {
            done.pop();
        } else {
            done.push(part);
        }
    }
    inner_of(&done)
}

/// The normal and `..` components of `path` (`/` and `.` carry nothing
/// here: every path starts at the root).
fn parts(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(p) => Some(p.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

fn inner_of(parts: &[OsString]) -> PathBuf {
    let mut p = PathBuf::from("/");
    for part in parts {
        p.push(part);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A scratch root with links of every kind.
    fn tree() -> PathBuf {
        let root = std::env::temp_dir().join(format!("stapxx-inroot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["usr/lib/x86_64-linux-gnu", "lib64", "etc/alt", "opt/app"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("usr/lib/x86_64-linux-gnu/ld.so"), "ld").unwrap();
        // Absolute, as Debian's /lib64/ld-linux-x86-64.so.2 is.
        symlink(
            "/usr/lib/x86_64-linux-gnu/ld.so",
            root.join("lib64/ld-linux.so"),
        )
        .unwrap();
        // Relative, through a directory link.
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("../../lib/x86_64-linux-gnu/ld.so", root.join("etc/alt/ld")).unwrap();
        // Climbing above the root.
        symlink("../../../../../etc/alt/ld", root.join("opt/app/up")).unwrap();
        symlink("loop2", root.join("opt/app/loop1")).unwrap();
        symlink("loop1", root.join("opt/app/loop2")).unwrap();
        root
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let root = tree();
        let ld = PathBuf::from("/usr/lib/x86_64-linux-gnu/ld.so");
        for p in [
            "/lib64/ld-linux.so",
            "/lib/x86_64-linux-gnu/ld.so",
            "/etc/alt/ld",
            "/opt/app/up",
            "opt/./app/../app/up",
            "/../../lib64/ld-linux.so",
        ] {
            assert_eq!(resolve(&root, Path::new(p)), ld, "{p}");
        }
        assert!(join(&root, &ld).is_file());
        // What does not exist is kept as written below the last real part.
        assert_eq!(
            resolve(&root, Path::new("/lib/nothing/../x.so")),
            PathBuf::from("/usr/lib/x.so")
        );
        // A loop stops where it is.
        assert_eq!(
            resolve(&root, Path::new("/opt/app/loop1/x")),
            PathBuf::from("/opt/app/loop1/x")
        );
        assert_eq!(resolve(&root, Path::new("/")), PathBuf::from("/"));
        assert_eq!(
            join(Path::new("/proc/42/root"), Path::new("/../etc/../x")),
            PathBuf::from("/proc/42/root/etc/x")
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
