//! Finding the DWARF for an ELF file: in the file itself, or in a separate
//! debug file found the way gdb and elfutils find it:
//!
//! 1. by build-id: `<debugdir>/.build-id/ab/cdef....debug`;
//! 2. by `.gnu_debuglink` name: `<dir>/<name>`, `<dir>/.debug/<name>` and
//!    `<debugdir>/<dir>/<name>`, where `<dir>` is the directory of the file
//!    *in the target's file system*.
//!
//! Every path is taken under an optional root prefix (`/proc/PID/root` for a
//! process in a container, with links resolved inside it); with
//! [`LocateOptions::host_fallback`] the host's own debug directories are
//! searched after the target's, and debuginfod after both. A candidate is accepted only if it
//! has `.debug_info` and its build-id matches (or, without build-ids, its CRC32
//! matches the debuglink's).

use std::path::{Component, Path, PathBuf};

use super::elf::{hex, ElfFile};
use super::error::LookedAt;

/// Where to search for separate debug files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocateOptions {
    /// The target's root directory as seen from here (`/proc/PID/root`);
    /// `None` means this host's `/`.
    pub root: Option<PathBuf>,
    /// Global debug directories, as absolute paths in the target's file
    /// system. Default: `/usr/lib/debug`.
    pub debug_dirs: Vec<PathBuf>,
    /// When `root` is set, also search the host's `debug_dirs`.
    pub host_fallback: bool,
}

impl Default for LocateOptions {
    fn default() -> Self {
        LocateOptions {
            root: None,
            debug_dirs: vec![PathBuf::from("/usr/lib/debug")],
            host_fallback: true,
        }
    }
}

impl LocateOptions {
    /// Options for a process whose file system is at `root` (`/proc/PID/root`).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        LocateOptions {
            root: Some(root.into()),
            ..Self::default()
        }
    }

    /// A target-namespace absolute path as a host path (root prefix applied).
    pub fn host_path(&self, target_path: &Path) -> PathBuf {
        under(self.root.as_deref(), target_path)
    }

    /// The roots to search global debug dirs under, in order.
    fn roots(&self) -> Vec<Option<&Path>> {
        let mut roots = vec![self.root.as_deref()];
        if self.root.is_some() && self.host_fallback {
            roots.push(None);
        }
        roots
    }
}

/// Absolute `path` under `root`, resolved as the root's owner would
/// resolve it: links (a `.build-id` tree's) and `..` stay inside the root
/// (see [`crate::target::inroot`]). Without a root, `path` on this host
/// (`..` and `.` dropped).
pub(crate) fn under(root: Option<&Path>, path: &Path) -> PathBuf {
    use crate::target::inroot;
    match root {
        Some(r) => inroot::join(r, &inroot::resolve(r, path)),
        None => inroot::join(Path::new("/"), path),
    }
}

/// How the DWARF of a file was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebugSource {
    /// The file carries `.debug_info` itself.
    Embedded,
    /// A separate file named by build-id (host path).
    BuildId(PathBuf),
    /// A separate file named by `.gnu_debuglink` (host path).
    DebugLink(PathBuf),
    /// A file a debuginfod server sent, by build-id (its cached path).
    Debuginfod(PathBuf),
    /// No DWARF anywhere: the LuaJIT layout shipped with stapxx-rs of this
    /// name, checked against the file's machine code ([`super::layouts`]).
    Shipped(&'static str),
}

/// The candidates for `elf`, in search order, with how each would be found.
fn candidates(elf: &ElfFile, target_path: &Path, opts: &LocateOptions) -> Vec<DebugSource> {
    let mut out = Vec::new();
    let roots = opts.roots();
    if let Some(id) = elf.build_id().filter(|id| id.len() >= 2) {
        let id = hex(id);
        let rel = format!(".build-id/{}/{}.debug", &id[..2], &id[2..]);
        for root in &roots {
            for d in &opts.debug_dirs {
                out.push(DebugSource::BuildId(under(*root, &d.join(&rel))));
            }
        }
    }
    if let Some(link) = elf.debuglink() {
        let name = Path::new(&link.name);
        // A debuglink is a plain file name; refuse anything that would escape.
        if name.components().count() == 1
            && matches!(name.components().next(), Some(Component::Normal(_)))
        {
            let dir = target_path.parent().unwrap_or(Path::new("/"));
            out.push(DebugSource::DebugLink(under(
                opts.root.as_deref(),
                &dir.join(name),
            )));
            out.push(DebugSource::DebugLink(under(
                opts.root.as_deref(),
                &dir.join(".debug").join(name),
            )));
            for root in &roots {
                for d in &opts.debug_dirs {
                    // `<debugdir>/<dir>/<name>`: the file's directory
                    // re-rooted under the debug directory.
                    let mut p = d.clone();
                    for c in dir.components() {
                        if let Component::Normal(part) = c {
                            p.push(part);
                        }
                    }
                    p.push(name);
                    out.push(DebugSource::DebugLink(under(*root, &p)));
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| match c {
        DebugSource::BuildId(p) | DebugSource::DebugLink(p) | DebugSource::Debuginfod(p) => {
            seen.insert(p.clone())
        }
        DebugSource::Embedded | DebugSource::Shipped(_) => true,
    });
    out
}

/// Finds the separate debug file of `elf` (whose path in the target's file
/// system is `target_path`). On failure, returns every place looked at.
pub fn find_debug_file(
    elf: &ElfFile,
    target_path: &Path,
    opts: &LocateOptions,
) -> Result<(ElfFile, DebugSource), Vec<LookedAt>> {
    let mut looked = Vec::new();
    for cand in candidates(elf, target_path, opts) {
        let path = match &cand {
            DebugSource::BuildId(p) | DebugSource::DebugLink(p) | DebugSource::Debuginfod(p) => {
                p.clone()
            }
            DebugSource::Embedded | DebugSource::Shipped(_) => continue,
        };
        let mut note = |outcome: &str| {
            looked.push(LookedAt {
                path: path.clone(),
                outcome: outcome.to_string(),
            })
        };
        if !path.is_file() {
            note("not found");
            continue;
        }
        if same_file(&path, elf.path()) {
            note("is the file itself");
            continue;
        }
        let dbg = match ElfFile::open(&path) {
            Ok(f) => f,
            Err(e) => {
                note(&format!("unusable: {e}"));
                continue;
            }
        };
        match (elf.build_id(), dbg.build_id()) {
            (Some(a), Some(b)) if a != b => {
                note(&format!("build-id mismatch: it has {}", hex(b)));
                continue;
            }
            (Some(_), Some(_)) => {}
            _ => {
                if let (DebugSource::DebugLink(_), Some(link)) = (&cand, elf.debuglink()) {
                    let crc = dbg.crc32();
                    if crc != link.crc {
                        note(&format!(
                            "CRC mismatch: {crc:08x}, debuglink wants {:08x}",
                            link.crc
                        ));
                        continue;
                    }
                }
            }
        }
        if !dbg.has_debug_info() {
            note("no .debug_info in it");
            continue;
        }
        return Ok((dbg, cand));
    }
    // Nothing here: the debuginfod servers, by build-id.
    if let (Some(id), Some(client)) = (elf.build_id_hex(), super::debuginfod::Client::from_env()) {
        if let Some(path) = client.fetch(&id, &mut looked) {
            match ElfFile::open(&path) {
                Ok(dbg) if dbg.build_id() == elf.build_id() && dbg.has_debug_info() => {
                    return Ok((dbg, DebugSource::Debuginfod(path)));
                }
                Ok(_) => looked.push(LookedAt {
                    path,
                    outcome: "from debuginfod, but not this file's debug info".into(),
                }),
                Err(e) => looked.push(LookedAt {
                    path,
                    outcome: format!("from debuginfod, unusable: {e}"),
                }),
            }
        }
    } else if elf.build_id().is_some() {
        looked.push(LookedAt {
            path: PathBuf::from("debuginfod"),
            outcome: "not asked: DEBUGINFOD_URLS is not set".into(),
        });
    }
    Err(looked)
}

/// Finds the dwz supplementary file named by `.gnu_debugaltlink` of `dbg`
/// (a path absolute in the target's file system or relative to `dbg`'s
/// directory), or by its build-id under the debug dirs.
pub fn find_alt_file(
    dbg: &ElfFile,
    opts: &LocateOptions,
) -> Result<Option<ElfFile>, Vec<LookedAt>> {
    let Some(alt) = dbg.altlink() else {
        return Ok(None);
    };
    let mut paths = Vec::new();
    if alt.path.is_absolute() {
        for root in opts.roots() {
            paths.push(under(root, &alt.path));
        }
    } else if let Some(dir) = dbg.path().parent() {
        paths.push(dir.join(&alt.path));
    }
    if alt.build_id.len() >= 2 {
        let id = hex(&alt.build_id);
        let rel = format!(".build-id/{}/{}.debug", &id[..2], &id[2..]);
        for root in opts.roots() {
            for d in &opts.debug_dirs {
                paths.push(under(root, &d.join(&rel)));
            }
        }
    }
    let mut looked = Vec::new();
    for path in paths {
        if !path.is_file() {
            looked.push(LookedAt {
                path,
                outcome: "not found".into(),
            });
            continue;
        }
        match ElfFile::open(&path) {
            Ok(f) if f.build_id() == Some(alt.build_id.as_slice()) => return Ok(Some(f)),
            Ok(_) => looked.push(LookedAt {
                path,
                outcome: "build-id mismatch".into(),
            }),
            Err(e) => looked.push(LookedAt {
                path,
                outcome: format!("unusable: {e}"),
            }),
        }
    }
    Err(looked)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_keeps_paths_inside_root() {
        let r = Path::new("/proc/42/root");
        assert_eq!(
            under(Some(r), Path::new("/usr/lib/debug/x")),
            PathBuf::from("/proc/42/root/usr/lib/debug/x")
        );
        assert_eq!(
            under(Some(r), Path::new("/../etc/../x")),
            PathBuf::from("/proc/42/root/x")
        );
        assert_eq!(under(None, Path::new("/a/b")), PathBuf::from("/a/b"));
    }
}
