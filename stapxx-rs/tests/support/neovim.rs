//! Debian's neovim (package `neovim`) as a test target: a real LuaJIT
//! embedder with no debug info anywhere. `/usr/bin/nvim` is stripped and
//! runs its Lua on Debian's `libluajit-5.1.so.2` (upstream LuaJIT), which
//! is stripped too, and neither has a debug package installed.
//!
//! [`Nvim::start`] runs a Lua workload of `tests/lua/` in a headless
//! neovim (`nvim --headless -u NONE -i NONE -n -c 'luafile SCRIPT'`): no
//! user configuration, no ShaDa file, no swap file, and XDG directories of
//! its own in the scratch directory, so nothing of the user's is read or
//! written. The workload runs from `tests/lua/` under its bare file name,
//! so its chunk name is `@SCRIPT` (no path to quote for `:luafile`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{luajit, missing, scratch, Proc};

/// Where Debian's package puts neovim.
pub const NVIM: &str = "/usr/bin/nvim";

/// How the file names of Debian's LuaJIT shared library start (neovim
/// maps `libluajit-5.1.so.2.1.0`, the file its soname links to).
pub const LIBLUAJIT: &str = "libluajit-5.1.so.";

/// The neovim of this machine, when it is installed (else [`missing`]).
pub fn get() -> Option<&'static Path> {
    if Path::new(NVIM).is_file() {
        Some(Path::new(NVIM))
    } else {
        missing("neovim (Debian package neovim)");
        None
    }
}

/// How the workload runs in neovim's LuaJIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jit {
    /// `jit.off()` before the workload: every Lua function interpreted.
    Off,
    /// The JIT compiler as neovim leaves it (on).
    On,
}

/// Starts `nvim` on the workload `tests/lua/SCRIPT` and waits until the
/// script printed `ready`. The process is SIGKILLed when dropped (a neovim
/// busy in Lua ignores SIGTERM).
pub fn start(nvim: &Path, jit: Jit, script: &str) -> Proc {
    assert!(
        script
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'),
        "{script}: a bare file name, given to :luafile as is"
    );
    let home = scratch().join("nvim-home");
    let mut cmd = Command::new(nvim);
    cmd.args(["--headless", "-u", "NONE", "-i", "NONE", "-n"]);
    if jit == Jit::Off {
        cmd.args(["-c", "lua jit.off()"]);
    }
    cmd.args(["-c", &format!("luafile {script}")])
        .current_dir(lua_dir())
        .stdin(Stdio::null())
        .env("NVIM_LOG_FILE", home.join("log"));
    for (var, dir) in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        cmd.env(var, home.join(dir));
    }
    let mut p = Proc::spawn(&mut cmd);
    p.wait_for_line("ready", Duration::from_secs(20));
    p
}

/// `tests/lua/`, where neovim runs.
fn lua_dir() -> PathBuf {
    luajit::workload("")
}

/// The frame of Lua function `name` of `script` as lj-lua-stacks prints
/// it: the chunk and the line where it is defined (`-- @def:NAME`).
pub fn def(script: &str, name: &str) -> String {
    format!(
        "@{script}:{}",
        luajit::marker_line(script, &format!("def:{name}"))
    )
}

/// The main chunk's frame (it "starts" at line 0).
pub fn main_chunk(script: &str) -> String {
    format!("@{script}:0")
}

/// The file a process maps whose name starts with `prefix` (its path as
/// the maps give it).
pub fn mapped(pid: u32, prefix: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(PathBuf::from)
        .find(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(prefix))
        })
}

/// What `readelf` (binutils) says of an ELF file's own debug info and
/// where its separate debug file would be.
#[derive(Debug)]
pub struct ElfDebug {
    /// Its `.debug_*` sections and `.symtab`, if any.
    pub debug_sections: Vec<String>,
    /// Its build-id in hex.
    pub build_id: String,
    /// The file name its `.gnu_debuglink` names.
    pub debuglink: Option<String>,
}

/// Reads [`ElfDebug`] of `path` with `readelf`.
pub fn elf_debug(path: &Path) -> ElfDebug {
    let readelf =
        |args: &[&str]| -> String { super::must(Command::new("readelf").args(args).arg(path)) };
    let debug_sections = readelf(&["-S", "-W"])
        .lines()
        .filter_map(|l| {
            let name = l.split(']').nth(1)?.split_whitespace().next()?;
            (name.starts_with(".debug_") || name == ".symtab").then(|| name.to_string())
        })
        .collect();
    let build_id = readelf(&["-n"])
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(str::to_string))
        .unwrap_or_else(|| panic!("{}: no build-id note", path.display()));
    // `[     0]  NAME` (then the CRC's bytes, unprintable).
    let debuglink = readelf(&["--string-dump=.gnu_debuglink"])
        .lines()
        .find_map(|l| {
            let name = l.trim().strip_prefix("[")?.split_once(']')?.1.trim();
            Some(name.to_string())
        });
    ElfDebug {
        debug_sections,
        build_id,
        debuglink,
    }
}

impl ElfDebug {
    /// The places a debugger looks for the separate debug file of `path`
    /// (whose facts these are) on this machine: by build-id under
    /// `/usr/lib/debug/.build-id/`, and by debuglink next to it, in its
    /// `.debug/` and under `/usr/lib/debug/`.
    pub fn debug_file_candidates(&self, path: &Path) -> Vec<PathBuf> {
        let id = &self.build_id;
        let mut c = vec![PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{}/{}.debug",
            &id[..2],
            &id[2..]
        ))];
        if let Some(link) = &self.debuglink {
            let dir = path.parent().expect("absolute path");
            c.push(dir.join(link));
            c.push(dir.join(".debug").join(link));
            c.push(
                Path::new("/usr/lib/debug")
                    .join(dir.strip_prefix("/").expect("absolute path"))
                    .join(link),
            );
        }
        c
    }
}
