//! LuaJIT test targets: OpenResty's LuaJIT 2.1 fork (Debian's source
//! package `luajit2`), built with debug info in two object layouts.
//!
//! * [`Variant::Gc64`]: the x86_64 default, 64-bit GCRef, two slots per frame;
//! * [`Variant::NoGc64`]: `XCFLAGS=-DLUAJIT_DISABLE_GC64`, 32-bit GCRef
//!   (the layout the classic stapxx tapset was written for).
//!
//! Each build (LuaJIT's own `make`, `CCDEBUG=-g`, the default
//! `BUILDMODE=mixed`, nothing installed or stripped) yields
//!
//! * `src/luajit`: the VM linked in statically; `globalL` (a static of
//!   `luajit.c`) is its `@var("globalL", "$^exec_path")`;
//! * `lib/libluajit-5.1.so.2` (+ `libluajit-5.1.so`): the VM as a DSO;
//! * `bin/luajit-dyn`: `luajit.c` linked against that DSO (rpath
//!   `$ORIGIN/../lib`), so `$^libluajit_path` is a separate file from
//!   `$^exec_path`, as in nginx with lua-nginx-module.
//!
//! The source is fetched once with `apt-get source` through the private apt
//! configuration of [`super::apt`] (no system file changes, no root
//! needed); `dpkg-source` (package `dpkg-dev`) unpacks it.
//! Builds are cached in `target/fixtures/luajit-<variant>-<version>/` with a
//! stamp naming the recipe: a changed recipe rebuilds, an unchanged one is
//! reused. A file lock serializes concurrent test processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::{fixtures_dir, missing, run, workspace_root, Proc};

/// The `luajit2` source package version (Debian 12).
pub const VERSION: &str = "2.1-20230119-1";

/// Bumped whenever the build steps below change (part of the cache stamp).
const RECIPE_REV: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    Gc64,
    NoGc64,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::Gc64, Variant::NoGc64];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Gc64 => "gc64",
            Variant::NoGc64 => "nogc64",
        }
    }

    /// `XCFLAGS` for LuaJIT's makefile.
    fn xcflags(self) -> &'static str {
        match self {
            Variant::Gc64 => "",
            Variant::NoGc64 => "-DLUAJIT_DISABLE_GC64",
        }
    }

    pub fn gc64(self) -> bool {
        self == Variant::Gc64
    }
}

/// One built LuaJIT.
#[derive(Debug)]
pub struct LuaJit {
    pub variant: Variant,
    /// The build directory (`src/` is LuaJIT's source tree, built in place).
    pub dir: PathBuf,
    /// The interpreter with the VM linked in.
    pub luajit: PathBuf,
    /// The VM as a shared library (`libluajit-5.1.so.2`).
    pub libluajit: PathBuf,
    /// The interpreter linked against [`LuaJit::libluajit`].
    pub luajit_dyn: PathBuf,
}

impl LuaJit {
    /// `LUA_PATH` that finds LuaJIT's own modules (`jit.p` for `-jp`,
    /// `jit.v`, `jit.dump`) in this build.
    pub fn lua_path(&self) -> String {
        format!("{}/src/?.lua;;", self.dir.display())
    }

    /// Starts `exe` (one of this build's interpreters) on the workload
    /// `tests/lua/SCRIPT` with `args` before the script (`-joff` ...), and
    /// waits until the script printed `ready`.
    pub fn start(&self, exe: &Path, args: &[&str], script: &str) -> Proc {
        self.start_with(exe, args, script, &[])
    }

    /// As [`LuaJit::start`], with arguments for the script after it.
    pub fn start_with(
        &self,
        exe: &Path,
        args: &[&str],
        script: &str,
        script_args: &[&str],
    ) -> Proc {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .arg(workload(script))
            .args(script_args)
            .env("LUA_PATH", self.lua_path());
        let mut p = Proc::spawn(&mut cmd);
        p.wait_for_line("ready", Duration::from_secs(20));
        p
    }
}

/// `tests/lua/NAME`.
pub fn workload(name: &str) -> PathBuf {
    workspace_root().join("tests/lua").join(name)
}

/// The line (1-based) of `tests/lua/SCRIPT` that carries the comment
/// marker `-- @MARKER` (e.g. `hot:spin`, `def:spin`), for tests that
/// assert frames.
pub fn marker_line(script: &str, marker: &str) -> u32 {
    super::marker_line_of(&workload(script), marker)
}

/// The build of `variant`, fetched and built on first use (cached across
/// runs). `None` (after [`missing`]) when it cannot be had.
pub fn get(variant: Variant) -> Option<&'static LuaJit> {
    static GC64: OnceLock<Result<LuaJit, String>> = OnceLock::new();
    static NOGC64: OnceLock<Result<LuaJit, String>> = OnceLock::new();
    let cell = match variant {
        Variant::Gc64 => &GC64,
        Variant::NoGc64 => &NOGC64,
    };
    match cell.get_or_init(|| build(variant)) {
        Ok(lj) => Some(lj),
        Err(e) => {
            missing(&format!("LuaJIT ({}) test build: {e}", variant.name()));
            None
        }
    }
}

fn recipe(variant: Variant) -> String {
    format!(
        "luajit2 {VERSION}; make CCDEBUG=-g XCFLAGS={:?}; luajit-dyn; rev {RECIPE_REV}\n",
        variant.xcflags()
    )
}

fn build(variant: Variant) -> Result<LuaJit, String> {
    let _lock = super::fixture_lock("luajit.lock")?;
    let dir = fixtures_dir().join(format!("luajit-{}-{VERSION}", variant.name()));
    let lj = LuaJit {
        variant,
        luajit: dir.join("src/luajit"),
        libluajit: dir.join("lib/libluajit-5.1.so.2"),
        luajit_dyn: dir.join("bin/luajit-dyn"),
        dir: dir.clone(),
    };
    let stamp = dir.join(".stamp");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(recipe(variant).as_str())
        && lj.luajit.is_file()
        && lj.libluajit.is_file()
        && lj.luajit_dyn.is_file()
    {
        return Ok(lj);
    }
    let src = super::apt::source("luajit2", VERSION, "src/luajit.c")?;
    for tool in ["make", "cc"] {
        if !super::have_tool(tool) {
            return Err(format!("'{tool}' not found (packages make, gcc)"));
        }
    }
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    run(Command::new("cp").arg("-a").arg(src.join(".")).arg(&tmp))?;
    let log = run(Command::new("make")
        .current_dir(&tmp)
        .args(["-j2", "CCDEBUG=-g"])
        .arg(format!("XCFLAGS={}", variant.xcflags()))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS"))?;
    std::fs::write(tmp.join("build.log"), log).map_err(|e| e.to_string())?;
    for d in ["lib", "bin"] {
        std::fs::create_dir_all(tmp.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(
        tmp.join("src/libluajit.so"),
        tmp.join("lib/libluajit-5.1.so.2"),
    )
    .map_err(|e| format!("copy libluajit.so: {e}"))?;
    std::os::unix::fs::symlink("libluajit-5.1.so.2", tmp.join("lib/libluajit-5.1.so"))
        .map_err(|e| e.to_string())?;
    run(Command::new("cc")
        .current_dir(&tmp)
        .args(["-g", "-o", "bin/luajit-dyn", "src/luajit.o", "-Llib"])
        .args([
            "-l:libluajit-5.1.so.2",
            "-Wl,-rpath,$ORIGIN/../lib",
            "-lm",
            "-ldl",
        ]))?;
    std::fs::write(tmp.join(".stamp"), recipe(variant)).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &dir).map_err(|e| format!("rename to {}: {e}", dir.display()))?;
    // Smoke test: both interpreters run and agree on the layout.
    for exe in [&lj.luajit, &lj.luajit_dyn] {
        let out = run(Command::new(exe).args([
            "-e",
            "print(require('ffi').abi('gc64') and 'gc64' or 'nogc64')",
        ]))?;
        if out.trim() != variant.name() {
            return Err(format!("{} says {:?}", exe.display(), out.trim()));
        }
    }
    Ok(lj)
}

/// Builds `variant` or panics (for callers that already checked `CI`).
pub fn must_get(variant: Variant) -> &'static LuaJit {
    get(variant).unwrap_or_else(|| panic!("no LuaJIT {} build", variant.name()))
}

/// A fork of the same source that added a member to `global_State` (after
/// `allocf`, moving every member behind it), as LuaJIT forks do: a LuaJIT
/// none of the shipped layouts fits. Built without `-g` and stripped, as
/// a vendor would ship it; its `libluajit-5.1.so.2`, cached in
/// `target/fixtures/luajit-fork-<version>/`.
pub fn fork() -> Option<&'static Path> {
    static FORK: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match FORK.get_or_init(build_fork) {
        Ok(p) => Some(p),
        Err(e) => {
            missing(&format!("LuaJIT fork test build: {e}"));
            None
        }
    }
}

fn build_fork() -> Result<PathBuf, String> {
    const RECIPE: &str = "luajit2 fork: global_State.fork_extra after allocf; make; strip; rev 1\n";
    let patch = |tree: &Path| -> Result<(), String> {
        let header = tree.join("src/lj_obj.h");
        let text = std::fs::read_to_string(&header).map_err(|e| e.to_string())?;
        let anchor = "  lua_Alloc allocf;\t/* Memory allocator. */\n";
        if !text.contains(anchor) {
            return Err(format!("no {anchor:?} in lj_obj.h"));
        }
        let patched = text.replace(anchor, &format!("{anchor}  void *fork_extra;\n"));
        std::fs::write(&header, patched).map_err(|e| e.to_string())
    };
    let finish = |tree: &Path| -> Result<(), String> {
        run(Command::new("strip")
            .arg("--strip-all")
            .arg("-o")
            .arg(tree.join("libluajit-5.1.so.2"))
            .arg(tree.join("src/libluajit.so")))?;
        // Only the library is kept.
        for d in ["src", "doc", "dynasm", "etc", "debian", "t"] {
            let _ = std::fs::remove_dir_all(tree.join(d));
        }
        Ok(())
    };
    let dir = build_tree(
        ("luajit2", VERSION),
        &format!("luajit-fork-{VERSION}"),
        RECIPE,
        &patch,
        &["CCDEBUG="],
        &finish,
    )?;
    Ok(dir.join("libluajit-5.1.so.2"))
}

/// Debian's `luajit` source package (upstream LuaJIT, what Debian's
/// stripped `luajit` is built from) built with `-g` and nothing else
/// changed: the oracle for that binary. Its `src/luajit`, cached in
/// `target/fixtures/luajit-upstream-g-<version>/`.
pub fn upstream_g() -> Option<&'static Path> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let version = super::debian::LUAJIT;
        let dir = build_tree(
            ("luajit", version),
            &format!("luajit-upstream-g-{version}"),
            "luajit (Debian's upstream source); make CCDEBUG=-g; rev 1\n",
            &|_| Ok(()),
            &["CCDEBUG=-g"],
            &|_| Ok(()),
        )?;
        Ok(dir.join("src/luajit"))
    });
    match built {
        Ok(p) => Some(p),
        Err(e) => {
            missing(&format!("LuaJIT (Debian's upstream source) -g build: {e}"));
            None
        }
    }
}

/// Source package `(package, version)` copied to `target/fixtures/DIR`,
/// `patch`ed, built with LuaJIT's `make -j2 MAKE_ARGS`, then `finish`ed;
/// reused while its stamp says `recipe`.
fn build_tree(
    (package, version): (&str, &str),
    dir_name: &str,
    recipe: &str,
    patch: &dyn Fn(&Path) -> Result<(), String>,
    make_args: &[&str],
    finish: &dyn Fn(&Path) -> Result<(), String>,
) -> Result<PathBuf, String> {
    let _lock = super::fixture_lock("luajit.lock")?;
    let dir = fixtures_dir().join(dir_name);
    if std::fs::read_to_string(dir.join(".stamp")).ok().as_deref() == Some(recipe) {
        return Ok(dir);
    }
    let src = super::apt::source(package, version, "src/luajit.c")?;
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    run(Command::new("cp").arg("-a").arg(src.join(".")).arg(&tmp))?;
    patch(&tmp)?;
    run(Command::new("make")
        .current_dir(&tmp)
        .arg("-j2")
        .args(make_args)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS"))?;
    finish(&tmp)?;
    std::fs::write(tmp.join(".stamp"), recipe).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &dir).map_err(|e| format!("rename to {}: {e}", dir.display()))?;
    Ok(dir)
}
