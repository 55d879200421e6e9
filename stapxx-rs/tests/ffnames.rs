//! LuaJIT fast functions by name in flame graphs, folded stacks and pprof
//! (`builtin#N` -> `string.gsub`), read from the LuaJIT build itself.
//!
//! * The names `stapxx::flame::ffnames` reads from each test build (the
//!   executable and the libluajit DSO, both object layouts) equal, id for
//!   id, the `ffnames` table of the `jit.vmdef` module the same build
//!   generated (LuaJIT's own, what `-jp` prints).
//! * Live: `examples/lj-lua-stacks.sxx` on `tests/lua/ffunc.lua` with
//!   `--folded` and `--pprof`: the script's output keeps stap++'s
//!   `builtin#N` (N: the `FF_string_gsub` enumerator), the folded stacks
//!   and `go tool pprof -top` say `string.gsub`; the saved output through
//!   `stapxx-rs flamegraph --luajit` gives the same folded stacks.
//! * What `--luajit` says about a file it cannot use.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use stapxx::debuginfo::Module;
use stapxx::flame::{ffnames, lua::module_name};
use support::luajit::{self, marker_line, LuaJit, Variant};
use support::pprof::{go_pprof, have_go};

/// Sampling time of every live run, in seconds.
const SECS: u32 = 2;

/// `jit.vmdef`'s `ffnames` of this build: id -> name, ids 0 to the last.
fn vmdef_ffnames(lj: &LuaJit) -> BTreeMap<u32, String> {
    vmdef_ffnames_of(&lj.luajit, &lj.lua_path())
}

/// `jit.vmdef`'s `ffnames` as interpreter `exe` reads it from `lua_path`.
fn vmdef_ffnames_of(exe: &Path, lua_path: &str) -> BTreeMap<u32, String> {
    let code = "local n = require('jit.vmdef').ffnames \
                for i = 0, #n do io.write(i, '\\t', n[i], '\\n') end";
    let out = support::must(
        Command::new(exe)
            .args(["-e", code])
            .env("LUA_PATH", lua_path),
    );
    out.lines()
        .map(|l| {
            let (i, n) = l.split_once('\t').expect("id<TAB>name");
            (i.parse().expect("id"), n.to_string())
        })
        .collect()
}

/// Every id on which `ours` and vmdef's table differ, as
/// `id: ours | vmdef` lines (ids 0 and 1 are vmdef's "Lua" and "C", which
/// are not library functions: `builtin#N` never has them).
fn differences(ours: &ffnames::FastNames, vmdef: &BTreeMap<u32, String>) -> Vec<String> {
    let mine: BTreeMap<u32, &str> = ours.iter().collect();
    let mut ids: Vec<u32> = mine.keys().chain(vmdef.keys()).copied().collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .filter(|id| *id > 1)
        .filter_map(|id| {
            let a = mine.get(&id).copied();
            let b = vmdef.get(&id).map(String::as_str);
            (a != b).then(|| format!("{id}: {a:?} | {b:?}"))
        })
        .collect()
}

fn names_equal_vmdef(variant: Variant) {
    let Some(lj) = luajit::get(variant) else {
        return;
    };
    assert_names_equal(&vmdef_ffnames(lj), &[&lj.luajit, &lj.libluajit]);
}

/// The names read from each of `files` equal `vmdef`'s, id for id.
fn assert_names_equal(vmdef: &BTreeMap<u32, String>, files: &[&Path]) {
    assert_eq!(vmdef.get(&0).map(String::as_str), Some("Lua"));
    assert_eq!(vmdef.get(&1).map(String::as_str), Some("C"));
    for file in files {
        let module = Module::open(file).unwrap();
        let ours =
            ffnames::from_module(&module).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let diff = differences(&ours, vmdef);
        assert!(
            diff.is_empty(),
            "{}: {} of {} names differ from jit.vmdef's:\n{}",
            file.display(),
            diff.len(),
            vmdef.len() - 2,
            diff.join("\n")
        );
        // Every library function has a name: ids 2 to the last of vmdef.
        let last = *vmdef.keys().next_back().unwrap();
        assert_eq!(ours.id_range(), Some((2, last)));
        assert_eq!(ours.iter().count() as u32, last - 1);
    }
}

/// With no debug info anywhere, the names come from the shipped layout the
/// file's code matched, once that build's library init tables are found
/// in the file: a stripped copy of each test build, and Debian's `luajit`
/// (its `jit.vmdef` from the package `libluajit-5.1-common`).
#[test]
fn names_of_stripped_builds_equal_vmdef() {
    for variant in Variant::ALL {
        let Some(lj) = luajit::get(variant) else {
            return;
        };
        let name = format!("ffnames-stripped-{}", variant.name());
        let stripped = support::stripped_copy(&lj.luajit, &name);
        assert_names_equal(&vmdef_ffnames(lj), &[&stripped]);
    }
    let v = support::debian::LUAJIT;
    let (Ok(exe), Ok(common)) = (
        support::apt::binary("luajit", v, "usr/bin/luajit"),
        support::apt::binary(
            "libluajit-5.1-common",
            v,
            "usr/share/luajit-2.1.0-beta3/jit/vmdef.lua",
        ),
    ) else {
        support::missing("Debian packages luajit and libluajit-5.1-common");
        return;
    };
    let exe = exe.join("usr/bin/luajit");
    let lua_path = format!("{}/usr/share/luajit-2.1.0-beta3/?.lua;;", common.display());
    assert_names_equal(&vmdef_ffnames_of(&exe, &lua_path), &[&exe]);
}

#[test]
fn names_equal_vmdef_gc64() {
    names_equal_vmdef(Variant::Gc64);
}

#[test]
fn names_equal_vmdef_nogc64() {
    names_equal_vmdef(Variant::NoGc64);
}

/// `FF_<name>`'s value in `file`'s DWARF: the N of `builtin#N`.
fn enumerator(file: &Path, name: &str) -> i64 {
    let module = Module::open(file).unwrap();
    let all = module.enumeration_with("FF__MAX").unwrap();
    all.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {}", file.display()))
        .1
}

/// lj-lua-stacks on ffunc.lua run by `exe` (`args` before the script),
/// with `--folded` and `--pprof` into a directory of its own; `vm` is the
/// file holding the VM (the executable, or the libluajit it maps).
fn live(lj: &LuaJit, exe: &Path, args: &[&str], vm: &Path, tag: &str) {
    let dir = support::scratch().join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let folded = dir.join("live.folded");
    let pprof = dir.join("live.pb.gz");
    let p = lj.start(exe, args, "ffunc.lua");
    let (status, out, err) = support::stapxx_in(
        &support::workspace_root(),
        &[
            "examples/lj-lua-stacks.sxx",
            "-x",
            &p.pid().to_string(),
            "--arg",
            &format!("time={SECS}"),
            "--folded",
            folded.to_str().unwrap(),
            "--pprof",
            pprof.to_str().unwrap(),
        ],
    );
    drop(p);
    assert_eq!(status, 0, "stderr: {err}");
    // Nothing to say about the names: they were found.
    assert!(!err.contains("builtin#"), "{err}");
    // With the JIT on, gsub's caller is sometimes compiled for a moment
    // (a trace that aborts at the call): only -joff promises none.
    if args.contains(&"-joff") {
        assert!(err.contains("WARNING: Found 0 JITted samples."), "{err}");
    }

    // The script's output is stap++'s: the fast function as builtin#N,
    // N its FastFunc enumerator, which is also jit.vmdef's id.
    let id = enumerator(vm, "FF_string_gsub");
    assert_eq!(
        vmdef_ffnames(lj).get(&(id as u32)).map(String::as_str),
        Some("string.gsub")
    );
    let script = luajit::workload("ffunc.lua");
    let chunk = format!("@{}", script.display());
    let bts = support::backtraces(&out);
    let want = vec![
        format!("builtin#{id}"),
        format!("{chunk}:{}", marker_line("ffunc.lua", "def:replacer")),
        format!("{chunk}:0"),
        "C:pmain".to_string(),
    ];
    assert!(!bts.is_empty(), "no backtraces: {err}");
    assert_eq!(bts[0].0, want, "dominant backtrace; all: {bts:#?}");
    let total: u64 = bts.iter().map(|b| b.1).sum();
    let n = bts[0].1;
    assert!(n * 100 >= total * 90, "{n} of {total}: {bts:#?}");

    // The folded stacks name it, and count every sample once.
    let m = module_name(script.to_str().unwrap());
    let text = std::fs::read_to_string(&folded).unwrap();
    let line = format!("C:pmain;{m}:main;{m}:replacer;string.gsub {n}");
    assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    assert!(!text.contains("builtin#"), "{text}");
    let sum: u64 = text
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(sum, total);

    // So does go tool pprof: string.gsub is the top leaf with its samples.
    if have_go() {
        let top = go_pprof(&pprof, &["-top", "-sample_index=samples"]);
        let first = top
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("flat"))
            .nth(1)
            .unwrap_or_else(|| panic!("no rows in {top}"));
        let cols: Vec<&str> = first.split_whitespace().collect();
        assert_eq!(cols.last(), Some(&"string.gsub"), "{top}");
        assert_eq!(cols[0], n.to_string(), "{top}");
        assert!(!top.contains("builtin#"), "{top}");
    }

    // The saved output, named with --luajit: the same folded stacks, byte
    // for byte; without it, the numbers stay and one warning says why.
    let saved = dir.join("saved.bt");
    std::fs::write(&saved, &out).unwrap();
    let (status, again, err) = support::stapxx_in(
        &dir,
        &[
            "flamegraph",
            "saved.bt",
            "--folded",
            "--luajit",
            vm.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 0, "{err}");
    assert_eq!(err, "");
    assert_eq!(again, text);
    let (status, plain, err) = support::stapxx_in(&dir, &["flamegraph", "saved.bt", "--folded"]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(plain, text.replace("string.gsub", &format!("builtin#{id}")));
    assert_eq!(
        err,
        "WARNING: builtin#N frames keep their numbers: to name them, give the LuaJIT that \
         ran (its executable or libluajit, with debug info) as --luajit PATH\n"
    );
}

/// The VM linked into luajit, interpreted.
#[test]
fn live_jit_off_gc64() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let Some(lj) = luajit::get(Variant::Gc64) else {
        return;
    };
    live(lj, &lj.luajit, &["-joff"], &lj.luajit, "joff-gc64");
}

/// The VM in libluajit (found among the process's mappings), JIT on.
#[test]
fn live_jit_on_nogc64_dso() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let Some(lj) = luajit::get(Variant::NoGc64) else {
        return;
    };
    live(lj, &lj.luajit_dyn, &[], &lj.libluajit, "jit-nogc64-dso");
}

/// `--luajit` with a file it cannot use: no such file is an error; a file
/// that is not LuaJIT, or a LuaJIT whose numbering is not certain, keeps
/// the numbers with one warning that says why. A stripped LuaJIT is named.
#[test]
fn luajit_option_on_unusable_files() {
    let Some(lj) = luajit::get(Variant::Gc64) else {
        return;
    };
    let dir = support::scratch().join("unusable");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("s.bt"), "builtin#3\n@a.lua:0\n\t2\n").unwrap();
    std::fs::write(dir.join("a.lua"), "return 1\n").unwrap();
    let flame = |luajit: &str| {
        support::stapxx_in(
            &dir,
            &["flamegraph", "s.bt", "--folded", "--luajit", luajit],
        )
    };
    let keep = "WARNING: builtin#N frames keep their numbers: ";

    let (status, out, err) = flame("nothing-here");
    assert_eq!(status, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "stapxx-rs: --luajit: cannot read nothing-here: No such file or directory (os error 2)\n"
    );

    // Its own binary: an ELF file, but not LuaJIT.
    let me = PathBuf::from(env!("CARGO_BIN_EXE_stapxx-rs"));
    let (status, out, err) = flame(me.to_str().unwrap());
    assert_eq!(status, 0);
    assert_eq!(out, "a:main;builtin#3 2\n");
    assert_eq!(
        err,
        format!(
            "{keep}cannot read LuaJIT's fast-function names from --luajit {me}: \
             {me} is not LuaJIT (it has no luaJIT_setmode symbol)\n",
            me = me.display()
        )
    );

    // LuaJIT without its debug info (nowhere to find it): the shipped
    // layout its code matches names the fast functions, its build's init
    // tables being in the file.
    let stripped = dir.join("luajit-stripped");
    support::must(
        Command::new("objcopy")
            .arg("--strip-debug")
            .arg(&lj.luajit)
            .arg(&stripped),
    );
    let (status, out, err) = flame("luajit-stripped");
    assert_eq!((status, err.as_str()), (0, ""));
    assert_eq!(out, format!("a:main;{} 2\n", vmdef_ffnames(lj)[&3]));

    // The same file with one byte of its string library's init table
    // changed (another build's list of functions): no names, and why.
    let layout = "luajit2-openresty-2.1-20230119-gc64";
    let tables = stapxx::debuginfo::layouts::by_name(layout)
        .unwrap()
        .lib_init_tables()
        .unwrap();
    let (_, table) = tables.iter().find(|(m, _)| m == "string").unwrap();
    let mut bytes = std::fs::read(&stripped).unwrap();
    let at = bytes
        .windows(table.len())
        .position(|w| w == table.as_slice())
        .expect("the string table in the file");
    bytes[at + table.len() / 2] ^= 0x20;
    std::fs::write(dir.join("luajit-other"), bytes).unwrap();
    let (status, out, err) = flame("luajit-other");
    assert_eq!((status, out.as_str()), (0, "a:main;builtin#3 2\n"));
    assert_eq!(
        err,
        format!(
            "{keep}cannot read LuaJIT's fast-function names from --luajit luajit-other: \
             luajit-other is read through the shipped layout {layout}, but it does not hold \
             that build's init table of library module 'string' ({} bytes), so its \
             fast-function ids may differ\n",
            table.len()
        )
    );
}
