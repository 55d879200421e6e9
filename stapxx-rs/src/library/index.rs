//! The library scan kept between runs: what each tapset file may define
//! ([`Names`]), stamped with the file's identity, so that a run only
//! looks at each file's metadata instead of reading and scanning the whole
//! tree (about 600 files, 3.8 MB: 25 ms and more per run).
//!
//! Scripts use names the library must be asked about even when it defines
//! none of them: stap looks a function's undeclared variable up among the
//! library's globals before making it a local, so every such local is a
//! question to every file.
//!
//! The cache is one file, `$XDG_CACHE_HOME/stapxx-rs/library-scan` (else
//! `~/.cache/...`). An entry is used only while its file keeps the same
//! device, inode, size and modification time (to the nanosecond); anything
//! else is read and scanned again. The cache is written whole to a
//! temporary file and renamed over the old one, so concurrent runs each
//! leave a complete one; failing to read or write it only costs the scan.

use super::scan::Names;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The format, and the scanner's version: a cache another scanner wrote
/// (2: aliases whose `=` starts the next line) is not used.
const HEADER: &str = "stapxx-rs library scan 2";

/// One version of a file: a rewritten file gets another size or
/// modification time, a replaced one another inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    size: u64,
    mtime: i64,
    mtime_ns: i64,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_ns: meta.mtime_nsec(),
        }
    }
}

/// The scans on record, by path.
#[derive(Default)]
pub struct Index {
    entries: HashMap<PathBuf, (Stamp, Arc<Names>)>,
}

/// Where the cache lives, when there is a home for it.
pub fn cache_file() -> Option<PathBuf> {
    let get = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let base = get("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(base.join("stapxx-rs").join("library-scan"))
}

impl Index {
    /// The cache at `path`; empty when missing, unreadable or of another
    /// format.
    pub fn load(path: &Path) -> Index {
        std::fs::read(path)
            .ok()
            .and_then(|b| parse(&b))
            .unwrap_or_default()
    }

    /// The names on record for `path`, if it is still the file scanned.
    pub fn get(&self, path: &Path, stamp: &Stamp) -> Option<&Arc<Names>> {
        match self.entries.get(path) {
            Some((s, names)) if s == stamp => Some(names),
            _ => None,
        }
    }

    /// Record a scan.
    pub fn insert(&mut self, path: PathBuf, stamp: Stamp, names: Arc<Names>) {
        self.entries.insert(path, (stamp, names));
    }

    /// Forget the files whose directory is gone (a test's temporary `-I`
    /// directory): the cache does not grow with them forever. Returns
    /// whether any was forgotten.
    pub fn prune(&mut self) -> bool {
        let mut gone: HashMap<PathBuf, bool> = HashMap::new();
        let before = self.entries.len();
        self.entries.retain(|p, _| {
            let dir = p.parent().unwrap_or(Path::new("/")).to_path_buf();
            !*gone.entry(dir).or_insert_with_key(|d| !d.is_dir())
        });
        self.entries.len() != before
    }

    /// Write the cache to `path` (best effort).
    pub fn save(&self, path: &Path) {
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = dir.join(format!(".library-scan.{}", std::process::id()));
        if std::fs::write(&tmp, self.render()).is_err() || std::fs::rename(&tmp, path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 * 1024);
        out.extend_from_slice(HEADER.as_bytes());
        out.push(b'\n');
        let mut paths: Vec<&PathBuf> = self.entries.keys().collect();
        paths.sort();
        for p in paths {
            let bytes = p.as_os_str().as_bytes();
            // A line per record: a path with a line end stays uncached.
            if bytes.contains(&b'\n') {
                continue;
            }
            let (s, names) = &self.entries[p];
            out.extend_from_slice(
                format!(
                    "F {} {} {} {} {}\t",
                    s.dev, s.ino, s.size, s.mtime, s.mtime_ns
                )
                .as_bytes(),
            );
            out.extend_from_slice(bytes);
            out.push(b'\n');
            let mut put = |tag: &str, items: &mut dyn Iterator<Item = &String>| {
                for n in items {
                    out.extend_from_slice(format!("{tag} {n}\n").as_bytes());
                }
            };
            let mut functions: Vec<&String> = names.functions.iter().collect();
            functions.sort();
            put("f", &mut functions.into_iter());
            let mut globals: Vec<&String> = names.globals.iter().collect();
            globals.sort();
            put("g", &mut globals.into_iter());
            put("a", &mut names.aliases.iter());
        }
        out
    }
}

/// The records of a cache file; `None` for anything malformed (the whole
/// cache is then rebuilt).
fn parse(bytes: &[u8]) -> Option<Index> {
    let mut lines = bytes.split(|&b| b == b'\n');
    if lines.next()? != HEADER.as_bytes() {
        return None;
    }
    let mut index = Index::default();
    let mut current: Option<(PathBuf, Stamp, Names)> = None;
    for line in lines.filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix(b"F ") {
            if let Some((p, s, n)) = current.take() {
                index.insert(p, s, Arc::new(n));
            }
            let tab = rest.iter().position(|&b| b == b'\t')?;
            let nums: Vec<i64> = std::str::from_utf8(&rest[..tab])
                .ok()?
                .split(' ')
                .map(|n| n.parse().ok())
                .collect::<Option<_>>()?;
            let [dev, ino, size, mtime, mtime_ns] = nums[..] else {
                return None;
            };
            let stamp = Stamp {
                dev: dev as u64,
                ino: ino as u64,
                size: size as u64,
                mtime,
                mtime_ns,
            };
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(&rest[tab + 1..]));
            current = Some((path, stamp, Names::default()));
            continue;
        }
        let (_, _, names) = current.as_mut()?;
        let text = std::str::from_utf8(line).ok()?;
        let (tag, name) = text.split_once(' ')?;
        match tag {
            "f" => {
                names.functions.insert(name.to_string());
            }
            "g" => {
                names.globals.insert(name.to_string());
            }
            "a" => names.aliases.push(name.to_string()),
            _ => return None,
        }
    }
    if let Some((p, s, n)) = current {
        index.insert(p, s, Arc::new(n));
    }
    Some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("stapxx-index-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip_and_stale_entries() {
        let d = tempdir("rt");
        let file = d.join("a b.stp");
        std::fs::write(&file, "function f() {}\nglobal g\nprobe x.y = begin {}\n").unwrap();
        let stamp = Stamp::of(&std::fs::metadata(&file).unwrap());
        let mut idx = Index::default();
        idx.insert(
            file.clone(),
            stamp,
            Arc::new(super::super::scan::scan(
                "function f() {}\nglobal g\nprobe x.y = begin {}\nprobe z = begin {}\n",
            )),
        );
        let cache = d.join("sub").join("library-scan");
        idx.save(&cache);
        let back = Index::load(&cache);
        let names = back
            .get(&file, &stamp)
            .expect("the entry survives the round trip");
        assert_eq!(names.functions.iter().collect::<Vec<_>>(), ["f"]);
        assert_eq!(names.globals.iter().collect::<Vec<_>>(), ["g"]);
        assert_eq!(names.aliases, ["x.y", "z"]);
        // Rewritten: another size, so another stamp; the entry is stale.
        std::fs::write(&file, "function f2() {}\n").unwrap();
        let now = Stamp::of(&std::fs::metadata(&file).unwrap());
        assert!(back.get(&file, &now).is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn malformed_cache_is_empty_and_gone_dirs_are_pruned() {
        let d = tempdir("bad");
        let cache = d.join("library-scan");
        std::fs::write(&cache, format!("{HEADER}\nf orphan\n")).unwrap();
        assert!(Index::load(&cache).entries.is_empty());
        std::fs::write(&cache, "another format\n").unwrap();
        assert!(Index::load(&cache).entries.is_empty());
        let mut idx = Index::default();
        let stamp = Stamp::of(&std::fs::metadata(&cache).unwrap());
        idx.insert(d.join("kept.stp"), stamp, Arc::default());
        idx.insert(d.join("gone").join("x.stp"), stamp, Arc::default());
        assert!(idx.prune());
        assert_eq!(
            idx.entries.keys().collect::<Vec<_>>(),
            [&d.join("kept.stp")]
        );
        assert!(!idx.prune());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
