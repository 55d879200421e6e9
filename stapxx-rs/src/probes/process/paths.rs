//! Which files `process("NAME")` names, found as stap finds them:
//!
//! * a glob pattern (`/lib*/libc.so.*`, `/usr/bin/qemu-system-*`): every
//!   regular file it matches, by its canonical path, each once (symlinks
//!   of a library's versions name one file); the point then applies to
//!   any of them, as if each were written with `?` (stap's rule: a
//!   pattern means "those that have it");
//! * a name with no `/` (`process("stap")`): the first regular file of
//!   that name in a directory of `$PATH`, as a shell would run it;
//! * anything else: the path as written (not canonicalised: a target's
//!   `/proc/PID/root/...` must stay a path through its root).

use super::super::Miss;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Whether `name` is a glob pattern (stap's glob characters).
pub(super) fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// The files `name` names. A pattern that matches no regular file is a
/// miss (`?` makes it silent).
pub(super) fn expand(name: &str) -> Result<Vec<String>, Miss> {
    if is_pattern(name) {
        return glob(name);
    }
    if !name.contains('/') {
        if let Some(found) = on_path(name, std::env::var_os("PATH").as_deref()) {
            let found = found.canonicalize().unwrap_or(found);
            return Ok(vec![found.display().to_string()]);
        }
    }
    Ok(vec![name.to_string()])
}

fn glob(pattern: &str) -> Result<Vec<String>, Miss> {
    // glob(3)'s rules, which stap uses: `*` does not match a leading dot.
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let paths = glob::glob_with(pattern, options)
        .map_err(|e| Miss::Invalid(format!("bad glob pattern '{pattern}': {e}")))?;
    let files: BTreeSet<String> = paths
        .filter_map(Result::ok)
        .filter(|p| p.metadata().is_ok_and(|m| m.is_file()))
        .filter_map(|p| p.canonicalize().ok())
        .map(|p| p.display().to_string())
        .collect();
    if files.is_empty() {
        return Err(Miss::NoMatch(format!(
            "no file matches the pattern '{pattern}'"
        )));
    }
    Ok(files.into_iter().collect())
}

/// The first regular file called `name` in the directories of `path`.
fn on_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|dir| Path::new(&dir).join(name))
        .find(|f| f.metadata().is_ok_and(|m| m.is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_bare_names() {
        let dir = std::env::temp_dir().join(format!("stx_paths_{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        for f in ["libx.so.1.2", "liby.so.1", ".libhidden.so"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        std::os::unix::fs::symlink(dir.join("libx.so.1.2"), dir.join("libx.so.1")).unwrap();
        std::fs::create_dir(dir.join("libdir.so")).unwrap();
        std::fs::write(dir.join("bin/tool"), "").unwrap();
        let d = dir.canonicalize().unwrap().display().to_string();
        // The symlink and its file are one; directories and dot files are not matched.
        assert_eq!(
            expand(&format!("{d}/*.so*")).ok(),
            Some(vec![format!("{d}/libx.so.1.2"), format!("{d}/liby.so.1")])
        );
        assert!(matches!(
            expand(&format!("{d}/nothing*")),
            Err(Miss::NoMatch(_))
        ));
        let path = std::ffi::OsString::from(format!("/nonexistent:{d}/bin"));
        assert_eq!(
            on_path("tool", Some(&path)),
            Some(dir.join("bin/tool").canonicalize().unwrap())
        );
        assert_eq!(on_path("none", Some(&path)), None);
        // A path with a slash is taken as written.
        assert_eq!(expand("./rel/x").ok(), Some(vec!["./rel/x".to_string()]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
