//! Finding the DSO behind `$^libNAME_path` among a process's mapped files.
//!
//! stap++ tries two patterns against every candidate path (the candidates
//! being the `*.so[.N...]` files it saw mapped, or listed by `ldd`):
//!
//! * exact: `libNAME`, then only version characters (`-`, `.`, digits), then
//!   `.so` and any number of `.N` suffixes, at the end of the path, e.g.
//!   `libluajit-5.1.so.2.1.0` for `$^libluajit_path`;
//! * loose: `NAME` or `libNAME`, then anything but `/` or white space, then
//!   `.so[.N...]` at the end, e.g. `luajit_ext.so` or `libluajit-debug.so`.
//!
//! In both, the name must start a word (the character before it, if any, is
//! not a letter, digit or `_`), so `libfooluajit.so` is not a match for
//! `luajit`. Here an exact match always beats a loose one; among several
//! matches of the same kind the first in byte order wins and the others are
//! reported as ambiguous so that the caller can warn about them.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The outcome of [`find_library`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LibMatch {
    /// A `libNAME[-.0-9]*.so[.N]*` file. `ambiguous` lists further exact
    /// matches that were ignored.
    Exact {
        path: PathBuf,
        ambiguous: Vec<PathBuf>,
    },
    /// No exact match, but a looser `[lib]NAME*.so[.N]*` one. `ambiguous`
    /// lists the other loose matches that were ignored.
    Loose {
        path: PathBuf,
        ambiguous: Vec<PathBuf>,
    },
    /// Nothing matched: stap++ then assumes the library is linked statically
    /// into the executable.
    NotFound,
}

impl LibMatch {
    /// The chosen path, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            LibMatch::Exact { path, .. } | LibMatch::Loose { path, .. } => Some(path),
            LibMatch::NotFound => None,
        }
    }

    /// The matches that were passed over.
    pub fn ambiguous(&self) -> &[PathBuf] {
        match self {
            LibMatch::Exact { ambiguous, .. } | LibMatch::Loose { ambiguous, .. } => ambiguous,
            LibMatch::NotFound => &[],
        }
    }
}

/// Looks for the library `$^libNAME_path` names; `name` is the part after
/// `lib` (`"luajit"` for `$^libluajit_path`). Candidates may come in any
/// order and may repeat.
pub fn find_library<P: AsRef<Path>>(candidates: &[P], name: &str) -> LibMatch {
    let mut paths: Vec<&Path> = candidates.iter().map(|p| p.as_ref()).collect();
    paths.sort();
    paths.dedup();
    let name = name.as_bytes();
    let pick = |found: Vec<&Path>| -> Option<(PathBuf, Vec<PathBuf>)> {
        let mut it = found.into_iter().map(Path::to_path_buf);
        let first = it.next()?;
        Some((first, it.collect()))
    };
    let exact: Vec<&Path> = paths
        .iter()
        .copied()
        .filter(|p| is_exact_match(p.as_os_str().as_bytes(), name))
        .collect();
    if let Some((path, ambiguous)) = pick(exact) {
        return LibMatch::Exact { path, ambiguous };
    }
    let loose: Vec<&Path> = paths
        .iter()
        .copied()
        .filter(|p| is_loose_match(p.as_os_str().as_bytes(), name))
        .collect();
    match pick(loose) {
        Some((path, ambiguous)) => LibMatch::Loose { path, ambiguous },
        None => LibMatch::NotFound,
    }
}

/// Whether the path ends in `.so` optionally followed by `.N` groups
/// (`libc.so.6`, `libfoo.so`), which is how stap++ recognises DSOs.
pub fn is_dso_path(path: &Path) -> bool {
    has_so_suffix(path.as_os_str().as_bytes())
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `\.so(\.\d+)*$`, searched anywhere in `s`.
fn has_so_suffix(s: &[u8]) -> bool {
    let mut end = s.len();
    // Strip trailing `.N` groups; they cannot contain the `s` of `.so`, so
    // stripping all of them never hides a match.
    loop {
        let digits = s[..end]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || end - digits == 0 || s[end - digits - 1] != b'.' {
            break;
        }
        end -= digits + 1;
    }
    s[..end].ends_with(b".so")
}

/// Positions where `needle` occurs in `hay` at the start of a word.
fn word_starts<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    (0..hay.len().saturating_sub(needle.len()) + 1)
        .filter(move |&i| hay[i..].starts_with(needle) && (i == 0 || !is_word(hay[i - 1])))
}

/// `\blibNAME[-.\d]*\.so(\.\d+)*$`
fn is_exact_match(path: &[u8], name: &[u8]) -> bool {
    if name.is_empty() {
        return false;
    }
    let mut needle = b"lib".to_vec();
    needle.extend_from_slice(name);
    let found = word_starts(path, &needle).any(|i| {
        let rest = &path[i + needle.len()..];
        // The version part cannot contain `s`, so `.so` starts right before
        // the first `s`.
        let Some(s) = rest.iter().position(|&b| b == b's') else {
            return false;
        };
        s >= 1
            && rest[..s - 1]
                .iter()
                .all(|&b| b == b'-' || b == b'.' || b.is_ascii_digit())
            && rest[s - 1] == b'.'
            && rest[s..].starts_with(b"so")
            && only_version_groups(&rest[s + 2..])
    });
    found
}

/// `(\.\d+)*` and nothing else.
fn only_version_groups(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'.' {
            return false;
        }
        let digits = s[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        i += 1 + digits;
    }
    true
}

/// `\b(lib)?NAME[^/\s]*?\.so(\.\d+)*$`
fn is_loose_match(path: &[u8], name: &[u8]) -> bool {
    if name.is_empty() {
        return false;
    }
    // A word-start `libNAME` also leaves `NAME` after it, but that `NAME` is
    // not at a word start, so look for both.
    let mut with_lib = b"lib".to_vec();
    with_lib.extend_from_slice(name);
    let tail_ok = |rest: &[u8]| {
        !rest.iter().any(|b| *b == b'/' || b.is_ascii_whitespace()) && has_so_suffix(rest)
    };
    let found = word_starts(path, name).any(|i| tail_ok(&path[i + name.len()..]))
        || word_starts(path, &with_lib).any(|i| tail_ok(&path[i + with_lib.len()..]));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn so_suffix() {
        for yes in [
            "a.so",
            "/x/libc.so.6",
            "libz.so.1.2.13",
            "/l/ld-linux-x86-64.so.2",
        ] {
            assert!(is_dso_path(Path::new(yes)), "{yes}");
        }
        for no in [
            "a.so.",
            "a.so.x",
            "a.sox",
            "/usr/bin/nginx",
            "",
            ".so1",
            "so",
        ] {
            assert!(!is_dso_path(Path::new(no)), "{no}");
        }
        assert!(is_dso_path(Path::new(".so")));
    }

    #[test]
    fn exact_pattern() {
        let n = b"luajit";
        assert!(is_exact_match(b"/usr/lib/libluajit-5.1.so.2.1.0", n));
        assert!(is_exact_match(b"/usr/lib/libluajit.so", n));
        assert!(is_exact_match(b"libluajit.so.2", n));
        assert!(is_exact_match(b"/opt/foo-libluajit.so", n));
        assert!(!is_exact_match(b"/usr/lib/libluajit-debug.so", n));
        assert!(!is_exact_match(b"/usr/lib/libfooluajit.so", n));
        assert!(!is_exact_match(b"/usr/lib/libluajit.so.2.dbg", n));
        assert!(!is_exact_match(b"/usr/lib/libluajitso", n));
        assert!(!is_exact_match(b"/usr/lib/libluajit", n));
        assert!(!is_exact_match(b"/usr/lib/libluajit.so", b""));
    }

    #[test]
    fn loose_pattern() {
        let n = b"luajit";
        assert!(is_loose_match(b"/usr/lib/libluajit-debug.so", n));
        assert!(is_loose_match(b"/opt/luajit_ext.so.1", n));
        assert!(is_loose_match(b"/opt/x-luajit.so", n));
        assert!(!is_loose_match(b"/opt/xluajit.so", n));
        assert!(!is_loose_match(b"/opt/libxluajit.so", n));
        assert!(!is_loose_match(b"/opt/luajit/libfoo.so", n));
        assert!(!is_loose_match(b"/opt/luajit.so.dbg", n));
        assert!(!is_loose_match(b"/opt/luajit", n));
    }

    #[test]
    fn exact_beats_loose_and_ambiguity_is_reported() {
        let c = paths(&[
            "/a/libluajit-debug.so",
            "/usr/lib/libluajit-5.1.so.2",
            "/usr/lib/libc.so.6",
            "/usr/lib/libluajit-5.1.so.2",
        ]);
        assert_eq!(
            find_library(&c, "luajit"),
            LibMatch::Exact {
                path: "/usr/lib/libluajit-5.1.so.2".into(),
                ambiguous: vec![]
            }
        );
        let c = paths(&["/b/libpcre.so.3", "/a/libpcre.so.1"]);
        let m = find_library(&c, "pcre");
        assert_eq!(m.path(), Some(Path::new("/a/libpcre.so.1")));
        assert_eq!(m.ambiguous(), &paths(&["/b/libpcre.so.3"])[..]);

        let c = paths(&["/b/pcre_jit.so", "/a/libpcre-x.so"]);
        assert_eq!(
            find_library(&c, "pcre"),
            LibMatch::Loose {
                path: "/a/libpcre-x.so".into(),
                ambiguous: paths(&["/b/pcre_jit.so"])
            }
        );
        assert_eq!(find_library(&c, "ssl"), LibMatch::NotFound);
        assert_eq!(find_library::<PathBuf>(&[], "ssl").path(), None);
        assert!(LibMatch::NotFound.ambiguous().is_empty());
    }
}
