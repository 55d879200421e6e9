//! Debian packages for the test fixtures, fetched through a private apt
//! configuration: `deb` and `deb-src` copies of this system's Debian
//! archive entries, with their lists in `target/fixtures/apt` for the time
//! of the download, so no system file changes and no root is needed.
//!
//! * [`source`]: a source package, `apt-get source` (unpacked with Debian's
//!   patches applied by `dpkg-source`, package `dpkg-dev`);
//! * [`binary`]: a binary package, `apt-get download` + `dpkg-deb -x`.
//!
//! Each lands once in `target/fixtures/<package>-<version>-{src,deb}/` and
//! is reused afterwards. A file lock (`apt.lock`) serializes the downloads
//! of concurrent test processes.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{fixtures_dir, run};

/// A Debian version without its epoch (`1:0.10.23-1` -> `0.10.23-1`), as
/// file names carry it.
fn no_epoch(version: &str) -> &str {
    version.split_once(':').map_or(version, |(_, v)| v)
}

/// The unpacked source package `package` at `version`, with Debian's
/// patches applied: `target/fixtures/<package>-<version>-src`. `probe` is
/// a file (relative to the source root) that must exist in it.
pub fn source(package: &str, version: &str, probe: &str) -> Result<PathBuf, String> {
    let fixtures = fixtures_dir();
    let dest = fixtures.join(format!("{package}-{}-src", no_epoch(version)));
    if dest.join(probe).exists() {
        return Ok(dest);
    }
    if !super::have_tool("dpkg-source") {
        return Err("'dpkg-source' not found (package dpkg-dev), needed by apt-get source".into());
    }
    let _lock = super::fixture_lock("apt.lock")?;
    if dest.join(probe).exists() {
        return Ok(dest);
    }
    let apt = Apt::new()?;
    let unpack = fixtures.join(format!("{package}-unpack"));
    let _ = std::fs::remove_dir_all(&unpack);
    std::fs::create_dir_all(&unpack).map_err(|e| e.to_string())?;
    run(&mut apt.get(&["source", &format!("{package}={version}")], &unpack))?;
    // The one directory dpkg-source made: `<package>-<upstream version>`.
    let upstream = no_epoch(version)
        .rsplit_once('-')
        .map_or(no_epoch(version), |(u, _)| u);
    let unpacked = unpack.join(format!("{package}-{upstream}"));
    if !unpacked.join(probe).exists() {
        return Err(format!(
            "apt-get source {package}={version} left no {}",
            unpacked.join(probe).display()
        ));
    }
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&unpacked, &dest).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&unpack);
    Ok(dest)
}

/// The files of binary package `package` at `version`, extracted with
/// `dpkg-deb -x` into `target/fixtures/<package>-<version>-deb` (the
/// package's own paths below it: `usr/share/...`). `probe` is a file
/// (relative to that root) that must exist in it.
pub fn binary(package: &str, version: &str, probe: &str) -> Result<PathBuf, String> {
    let fixtures = fixtures_dir();
    let dest = fixtures.join(format!("{package}-{}-deb", no_epoch(version)));
    if dest.join(probe).exists() {
        return Ok(dest);
    }
    if !super::have_tool("dpkg-deb") {
        return Err("'dpkg-deb' not found (package dpkg)".into());
    }
    let _lock = super::fixture_lock("apt.lock")?;
    if dest.join(probe).exists() {
        return Ok(dest);
    }
    let apt = Apt::new()?;
    let dl = fixtures.join(format!("{package}-download"));
    let _ = std::fs::remove_dir_all(&dl);
    std::fs::create_dir_all(&dl).map_err(|e| e.to_string())?;
    run(&mut apt.get(&["download", &format!("{package}={version}")], &dl))?;
    let deb = std::fs::read_dir(&dl)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("apt-get download {package}={version} left no .deb"))?;
    let tmp = dest.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
    if !tmp.join(probe).exists() {
        return Err(format!("{} holds no {probe}", deb.display()));
    }
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dl);
    Ok(dest)
}

/// The private apt configuration, its package lists fresh; removed when
/// dropped (the lists are only needed for the download at hand).
struct Apt {
    dir: PathBuf,
}

impl Apt {
    fn new() -> Result<Apt, String> {
        let dir = fixtures_dir().join("apt");
        let _ = std::fs::remove_dir_all(&dir);
        for d in [
            dir.join("sources.list.d"),
            dir.join("lists/partial"),
            dir.join("cache/archives/partial"),
        ] {
            std::fs::create_dir_all(&d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        let (deb822, one_line) = debian_entries()?;
        std::fs::write(dir.join("sources.list.d/debian.sources"), deb822)
            .map_err(|e| e.to_string())?;
        std::fs::write(dir.join("sources.list"), one_line).map_err(|e| e.to_string())?;
        let apt = Apt { dir };
        run(&mut apt.get(&["update"], &fixtures_dir()))?;
        Ok(apt)
    }

    /// `apt-get ARGS` in `cwd` with this configuration.
    fn get(&self, args: &[&str], cwd: &Path) -> Command {
        let d = &self.dir;
        let mut c = Command::new("apt-get");
        c.current_dir(cwd)
            .arg("-q")
            .arg(format!(
                "-oDir::Etc::SourceList={}",
                d.join("sources.list").display()
            ))
            .arg(format!(
                "-oDir::Etc::SourceParts={}",
                d.join("sources.list.d").display()
            ))
            .arg(format!("-oDir::State::Lists={}", d.join("lists").display()))
            .arg(format!("-oDir::Cache={}", d.join("cache").display()))
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive");
        c
    }
}

impl Drop for Apt {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `deb` + `deb-src` copies of this system's Debian archive entries: deb822
/// stanzas of `/etc/apt/sources.list.d/*.sources` signed by the Debian
/// archive keyring (or in `debian.sources`), and one-line `deb` entries of
/// `/etc/apt/sources.list{,.d/*.list}` whose URI path is a Debian archive.
fn debian_entries() -> Result<(String, String), String> {
    let mut deb822 = String::new();
    let mut one_line = String::new();
    let dir = Path::new("/etc/apt/sources.list.d");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.insert(0, PathBuf::from("/etc/apt/sources.list"));
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let debian = name == "debian.sources"
                    || stanza.contains("debian-archive-keyring")
                    || stanza.contains("debian-keyring");
                let has_deb = stanza
                    .lines()
                    .any(|l| l.starts_with("Types:") && l.split_whitespace().any(|w| w == "deb"));
                if !debian || !has_deb {
                    continue;
                }
                for l in stanza.lines() {
                    if l.starts_with("Types:") {
                        deb822.push_str("Types: deb deb-src\n");
                    } else {
                        deb822.push_str(l);
                        deb822.push('\n');
                    }
                }
                deb822.push('\n');
            }
        } else if name == "sources.list" || name.ends_with(".list") {
            for l in text.lines() {
                let l = l.trim();
                if let Some(rest) = l.strip_prefix("deb ") {
                    let is_debian = rest
                        .split_whitespace()
                        .find(|w| w.contains("://"))
                        .is_some_and(|uri| uri.contains("/debian"));
                    if is_debian {
                        one_line.push_str(&format!("deb {rest}\ndeb-src {rest}\n"));
                    }
                }
            }
        }
    }
    if deb822.is_empty() && one_line.is_empty() {
        return Err(
            "no Debian archive entry in /etc/apt/sources.list{,.d} to copy as deb-src".into(),
        );
    }
    Ok((deb822, one_line))
}
