//! Parsing `/proc/PID/maps`.
//!
//! Each line is `start-end perms offset major:minor inode [pathname]`, with the
//! numbers in hex except the inode. The pathname is everything after the inode
//! (it may contain spaces) and is absent for anonymous memory.

use std::path::{Path, PathBuf};

use super::files::Reach;

/// The access bits of one mapping (`r-xp`, `rw-s`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    /// `s` (shared) rather than `p` (private, copy-on-write).
    pub shared: bool,
}

impl Perms {
    /// Parses the four-letter field; `None` unless it has exactly that shape.
    pub fn parse(field: &str) -> Option<Perms> {
        let b = field.as_bytes();
        if b.len() != 4 {
            return None;
        }
        let bit = |c: u8, yes: u8| -> Option<bool> {
            match c {
                b'-' => Some(false),
                c if c == yes => Some(true),
                _ => None,
            }
        };
        Some(Perms {
            read: bit(b[0], b'r')?,
            write: bit(b[1], b'w')?,
            exec: bit(b[2], b'x')?,
            shared: match b[3] {
                b's' => true,
                b'p' => false,
                _ => return None,
            },
        })
    }
}

/// What backs a mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapPath {
    /// No pathname at all (anonymous memory).
    Anonymous,
    /// A kernel-provided name such as `[heap]`, `[stack]`, `[vdso]` or
    /// `[anon:name]`, or any other pathname that is not absolute.
    Pseudo(String),
    /// A file, by its path as the target process sees it (inside its own
    /// mount namespace). `deleted` is set when the kernel appended
    /// ` (deleted)` (the file was unlinked or replaced after mapping); the
    /// suffix is not part of `path`.
    File { path: PathBuf, deleted: bool },
}

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub perms: Perms,
    /// Offset into the backing file of the first mapped byte.
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// The backing file's path as the target process sees it (see
    /// [`super::TargetInfo::from_pid`]; as printed when parsed alone).
    pub path: MapPath,
    /// The path as this host's `/proc` printed it, when that is not the
    /// process's own (a target under another root): a second name the
    /// file is known by here.
    pub printed: Option<PathBuf>,
    /// How the file is opened from here.
    pub reach: Reach,
}

impl MapEntry {
    /// The backing file's path, if the mapping has one (deleted or not).
    pub fn file(&self) -> Option<&Path> {
        match &self.path {
            MapPath::File { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Whether the backing file was deleted or replaced after it was mapped
    /// (the mapped contents are then only reachable through
    /// `/proc/PID/map_files/START-END`).
    pub fn is_deleted(&self) -> bool {
        matches!(self.path, MapPath::File { deleted: true, .. })
    }

    /// Parses one line (without its newline); `None` if it is malformed.
    pub fn parse(line: &str) -> Option<MapEntry> {
        let mut rest = line;
        let mut field = || -> Option<&str> {
            let trimmed = rest.trim_start_matches([' ', '\t']);
            let end = trimmed.find([' ', '\t']).unwrap_or(trimmed.len());
            let (f, r) = trimmed.split_at(end);
            rest = r;
            (!f.is_empty()).then_some(f)
        };
        let range = field()?;
        let perms = Perms::parse(field()?)?;
        let offset = u64::from_str_radix(field()?, 16).ok()?;
        let dev = field()?;
        let inode = field()?.parse::<u64>().ok()?;

        let (start, end) = range.split_once('-')?;
        let start = u64::from_str_radix(start, 16).ok()?;
        let end = u64::from_str_radix(end, 16).ok()?;
        let (major, minor) = dev.split_once(':')?;
        let dev_major = u32::from_str_radix(major, 16).ok()?;
        let dev_minor = u32::from_str_radix(minor, 16).ok()?;

        let name = rest.trim_start_matches([' ', '\t']);
        let path = if name.is_empty() {
            MapPath::Anonymous
        } else if name.starts_with('/') {
            match name.strip_suffix(" (deleted)") {
                Some(p) => MapPath::File {
                    path: PathBuf::from(p),
                    deleted: true,
                },
                None => MapPath::File {
                    path: PathBuf::from(name),
                    deleted: false,
                },
            }
        } else {
            MapPath::Pseudo(name.to_string())
        };
        Some(MapEntry {
            start,
            end,
            perms,
            offset,
            dev_major,
            dev_minor,
            inode,
            path,
            printed: None,
            reach: Reach::Root,
        })
    }
}

/// Parses a whole maps file. On a malformed line, returns its 1-based number.
pub fn parse_maps(text: &str) -> Result<Vec<MapEntry>, usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| MapEntry::parse(l).ok_or(i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_backed_line() {
        let e = MapEntry::parse(
            "7f1c2a000000-7f1c2a028000 r-xp 00002000 fd:01 1311  /usr/lib/x86_64-linux-gnu/libc.so.6",
        )
        .unwrap();
        assert_eq!(e.start, 0x7f1c2a000000);
        assert_eq!(e.end, 0x7f1c2a028000);
        assert_eq!(
            e.perms,
            Perms {
                read: true,
                write: false,
                exec: true,
                shared: false
            }
        );
        assert_eq!(e.offset, 0x2000);
        assert_eq!((e.dev_major, e.dev_minor), (0xfd, 1));
        assert_eq!(e.inode, 1311);
        assert_eq!(
            e.file(),
            Some(Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6"))
        );
    }

    #[test]
    fn parses_pseudo_anonymous_deleted_and_spaces() {
        let heap = MapEntry::parse("55d0-55e0 rw-p 00000000 00:00 0 [heap]").unwrap();
        assert_eq!(heap.path, MapPath::Pseudo("[heap]".into()));
        let anon = MapEntry::parse("55d0-55e0 rw-p 00000000 00:00 0").unwrap();
        assert_eq!(anon.path, MapPath::Anonymous);
        let del = MapEntry::parse("1000-2000 r--s 00000000 00:05 77 /memfd:x (deleted)").unwrap();
        assert_eq!(
            del.path,
            MapPath::File {
                path: "/memfd:x".into(),
                deleted: true
            }
        );
        assert!(del.perms.shared);
        assert_eq!(del.file(), Some(Path::new("/memfd:x")));
        assert!(del.is_deleted() && !heap.is_deleted());
        let sp = MapEntry::parse("1000-2000 r--p 00000000 08:01 9   /opt/my dir/libx.so").unwrap();
        assert_eq!(sp.file(), Some(Path::new("/opt/my dir/libx.so")));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "zzz",
            "1000-2000",
            "1000-2000 rwxq 0 0:0 0",
            "1000 r--p 0 0:0 0",
            "1000-2000 r--p 0 00 0",
            "1000-2000 r--p 0 0:0 x",
            "1000-2000 r--p\u{e9} 0 0:0 0",
        ] {
            assert_eq!(MapEntry::parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse_maps("1000-2000 r--p 0 0:0 0\nbad\n"), Err(2));
        assert_eq!(parse_maps("\n").unwrap(), vec![]);
    }
}
