//! LuaJIT's object layouts and `@var("globalL")` against real LuaJIT builds
//! (OpenResty's fork, GC64 and 32-bit GCRef; see `support/luajit.rs`).
//!
//! * Every member pahole prints of the VM structs the tapsets read, plain
//!   and expanded (`-E`: members of nested structs/unions, absolute
//!   offsets), has the offset and size our DWARF resolution computes, in
//!   the `luajit` executable and in `libluajit-5.1.so.2`.
//! * On a running `luajit tests/lua/spin.lua`, `@var("globalL", exe)` plus
//!   the load bias from `/proc/PID/maps` is where `/proc/PID/mem` holds the
//!   main `lua_State *`: its `glref` leads to a `global_State` whose
//!   `mainthref` (and `cur_L`) point back to it, and which sits in the
//!   `GG_State` that starts with that `lua_State`.

mod support;

use std::path::Path;

use stapxx::debuginfo::{
    parse_chain, DebugSource, Fetch, LocateOptions, Module, Resolved, ValueKind,
};
use stapxx::target::TargetInfo;
use support::luajit::{self, LuaJit, Variant};
use support::{map_entries, missing, pahole, Mem};

/// The types the LuaJIT tapsets and stapxx scripts cast to.
const TYPES: [&str; 11] = [
    "lua_State",
    "global_State",
    "GG_State",
    "jit_State",
    "GCproto",
    "GCfunc",
    "GCfuncL",
    "GCfuncC",
    "GCstr",
    "TValue",
    "GCtrace",
];

fn pahole_ready() -> bool {
    if support::have_tool("pahole") {
        return true;
    }
    missing("pahole (package dwarves)");
    false
}

/// Compares one file's types with pahole; returns (members checked,
/// mismatches).
fn compare_file(file: &Path, expand: bool) -> (usize, Vec<String>) {
    compare_with(file, file, expand)
}

/// Compares the types we resolve in `file` with what pahole prints of
/// `oracle` (the same file, or the `-g` build a stripped file was made of).
fn compare_with(oracle: &Path, file: &Path, expand: bool) -> (usize, Vec<String>) {
    let module = Module::open(file).unwrap_or_else(|e| panic!("open {}: {e}", file.display()));
    let mut checked = 0;
    let mut bad = Vec::new();
    for ty in TYPES {
        let layout = pahole::layout(oracle, ty, expand);
        assert!(
            !layout.members.is_empty(),
            "pahole printed no members for {ty} in {}",
            file.display()
        );
        if let Some(size) = layout.size {
            match module.size_of_type(ty) {
                Ok(s) if s == size => {}
                other => bad.push(format!("sizeof({ty}): pahole {size}, ours {other:?}")),
            }
        }
        for m in &layout.members {
            checked += 1;
            let what = format!("{ty} .{}", m.display());
            let got = module.resolve_cast(ty, &m.steps(), m.bit.is_none());
            let r: Resolved = match got {
                Ok(r) => r,
                Err(e) => {
                    bad.push(format!("{what}: {e}"));
                    continue;
                }
            };
            if r.constant_offset() != Some(m.offset as i64) {
                bad.push(format!(
                    "{what}: offset: pahole {}, ours {:?} ({:?})",
                    m.offset,
                    r.constant_offset(),
                    r.accesses
                ));
            }
            match m.bit {
                None => {
                    if r.value.size != m.size {
                        bad.push(format!(
                            "{what}: size: pahole {}, ours {} ({})",
                            m.size, r.value.size, r.value.name
                        ));
                    }
                }
                Some(bit) => match r.fetch {
                    Fetch::Load {
                        size,
                        bitfield: Some(bf),
                        ..
                    } if u64::from(size) == m.size && u64::from(bf.shift) == bit => {}
                    f => bad.push(format!(
                        "{what}: bitfield: pahole unit {} bit {bit}, ours {f:?}",
                        m.size
                    )),
                },
            }
        }
    }
    (checked, bad)
}

fn layouts_match_pahole(variant: Variant) {
    if !pahole_ready() {
        return;
    }
    let Some(lj) = luajit::get(variant) else {
        return;
    };
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for file in [&lj.luajit, &lj.libluajit] {
        for expand in [false, true] {
            let (n, bad) = compare_file(file, expand);
            report.push(format!(
                "{} {}: {n} members",
                file.file_name().unwrap().to_string_lossy(),
                if expand { "pahole -E" } else { "pahole" }
            ));
            // Every type has a few members; the expanded listing many more.
            assert!(
                n >= if expand { 1000 } else { 150 },
                "only {n} members checked"
            );
            failures.extend(bad.into_iter().map(|b| format!("{}: {b}", file.display())));
        }
    }
    eprintln!("{}: {}", variant.name(), report.join(", "));
    assert!(
        failures.is_empty(),
        "{} mismatches with pahole:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn layouts_match_pahole_gc64() {
    layouts_match_pahole(Variant::Gc64);
}

#[test]
fn layouts_match_pahole_nogc64() {
    layouts_match_pahole(Variant::NoGc64);
}

// --- no DWARF anywhere: the shipped layouts -----------------------------------

/// The shipped layout file `name` (`stapxx-rs/data/luajit-layouts/`).
fn shipped_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/luajit-layouts")
        .join(format!("{name}.debug"))
}

/// The shipped layout made from the test builds' source (Debian's
/// `luajit2`, OpenResty's fork) in `variant`'s object layout.
fn openresty_layout(variant: Variant) -> String {
    let upstream = luajit::VERSION.rsplit_once('-').unwrap().0;
    format!("luajit2-openresty-{upstream}-{}", variant.name())
}

/// No DWARF, no `.symtab`: what a test of the no-debug-info path needs.
fn assert_bare(file: &Path) {
    let elf = stapxx::debuginfo::ElfFile::open(file).unwrap();
    assert!(!elf.has_debug_info(), "{} has DWARF", file.display());
    assert!(!elf.has_symtab(), "{} has a .symtab", file.display());
}

/// The shipped layout of the test builds' source is, type by type and
/// member by member, what pahole reads from the `-g` build's own DWARF.
fn shipped_layout_matches_pahole(variant: Variant) {
    if !pahole_ready() {
        return;
    }
    let Some(lj) = luajit::get(variant) else {
        return;
    };
    let shipped = shipped_file(&openresty_layout(variant));
    for expand in [false, true] {
        let (n, bad) = compare_with(&lj.libluajit, &shipped, expand);
        assert!(
            n >= if expand { 1000 } else { 150 },
            "only {n} members checked"
        );
        assert!(
            bad.is_empty(),
            "shipped layout against the -g build:\n{}",
            bad.join("\n")
        );
    }
}

#[test]
fn shipped_layout_matches_pahole_gc64() {
    shipped_layout_matches_pahole(Variant::Gc64);
}

#[test]
fn shipped_layout_matches_pahole_nogc64() {
    shipped_layout_matches_pahole(Variant::NoGc64);
}

/// Stripped copies of the test builds (the VM as a DSO and linked into
/// the executable) are read through exactly the shipped layout of their
/// source and object layout, and resolve every member as the `-g` build's
/// DWARF does.
fn stripped_build_uses_its_layout(variant: Variant) {
    if !pahole_ready() {
        return;
    }
    let Some(lj) = luajit::get(variant) else {
        return;
    };
    for file in [&lj.libluajit, &lj.luajit] {
        let bare = support::stripped_copy(
            file,
            &format!(
                "stripped-{}-{}",
                variant.name(),
                file.file_name().unwrap().to_string_lossy()
            ),
        );
        assert_bare(&bare);
        let module = Module::open(&bare).unwrap();
        assert_shipped(&module, &openresty_layout(variant));
        for expand in [false, true] {
            let (_, bad) = compare_with(file, &bare, expand);
            assert!(bad.is_empty(), "{}:\n{}", bare.display(), bad.join("\n"));
        }
    }
}

#[test]
fn stripped_build_uses_its_layout_gc64() {
    stripped_build_uses_its_layout(Variant::Gc64);
}

#[test]
fn stripped_build_uses_its_layout_nogc64() {
    stripped_build_uses_its_layout(Variant::NoGc64);
}

/// Debian's own packages, as users have them (stripped, no debug package):
/// `luajit` (upstream LuaJIT linked into the executable) and
/// `libluajit2-5.1-2` (OpenResty's, as lua-nginx-module uses it) each get
/// the layout of their source.
#[test]
fn debian_packages_use_their_layouts() {
    for (package, version, file, layout) in [
        (
            "luajit",
            support::debian::LUAJIT,
            "usr/bin/luajit",
            "luajit-2.1.0-beta3-20220320-gc64",
        ),
        (
            "libluajit2-5.1-2",
            support::debian::LIBLUAJIT2,
            "usr/lib/x86_64-linux-gnu/libluajit-5.1.so.2",
            "luajit2-openresty-2.1-20230119-gc64",
        ),
    ] {
        let root = match support::apt::binary(package, version, file) {
            Ok(r) => r,
            Err(e) => {
                missing(&format!("Debian package {package}: {e}"));
                return;
            }
        };
        let path = root.join(file);
        assert_bare(&path);
        let module = Module::open(&path).unwrap();
        assert_shipped(&module, layout);
        // The tapset's first questions, answered from the layout.
        assert!(module
            .resolve_cast("GCRef", &parse_chain(".gcptr64").unwrap(), true)
            .is_ok());
        assert!(module.size_of_type("GG_State").unwrap() > 0);
    }
}

/// `module`'s types come from the shipped layout `name`.
fn assert_shipped(module: &Module, name: &str) {
    match module.debug_source() {
        Ok(DebugSource::Shipped(n)) => assert_eq!(*n, name, "{}", module.target_path().display()),
        other => panic!("{}: {other:?}", module.target_path().display()),
    }
}

/// A library that is not LuaJIT gets the plain "no DWARF" error, without
/// any word of LuaJIT layouts.
#[test]
fn lua51_is_not_luajit() {
    let lib = "usr/lib/x86_64-linux-gnu/liblua5.1.so.0";
    let root = match support::apt::binary("liblua5.1-0", support::debian::LIBLUA51, lib) {
        Ok(r) => r,
        Err(e) => {
            missing(&format!("Debian package liblua5.1-0: {e}"));
            return;
        }
    };
    let module = Module::open(root.join(lib)).unwrap();
    let e = module.find_type("lua_State").unwrap_err().to_string();
    assert!(e.starts_with("no DWARF debuginfo for "), "{e}");
    assert!(!e.contains("LuaJIT"), "{e}");
}

/// A LuaJIT fork that moved `global_State`'s members (stripped, no debug
/// info anywhere) is refused with what was checked: per shipped layout,
/// the first function whose code does not read what the layout says.
/// The GC64 layouts fail on `lua_gethook` (the fork's extra member moved
/// `hookf`), the 32-bit ones already on `lua_gettop`.
#[test]
fn a_fork_no_layout_fits_is_refused() {
    let Some(lib) = luajit::fork() else { return };
    assert_bare(lib);
    let script = format!(
        "probe begin {{ println(&@cast(0, \"lua_State\", \"{}\")->top) }}",
        lib.display()
    );
    let (status, out, err) = support::stapxx(&["-p2", "-e", &script]);
    assert_eq!((status, out.as_str()), (1, ""), "{err}");
    let start = err
        .find("it is LuaJIT, but")
        .unwrap_or_else(|| panic!("no layout report in {err}"));
    let report: Vec<&str> = err[start..].lines().take(6).collect();
    assert_eq!(
        report,
        [
            "it is LuaJIT, but no LuaJIT layout shipped with stapxx-rs fits its machine code:",
            "  luajit-2.1.0-beta3-20220320-gc64: lua_gethook reads no global_State.hookf (L->glref + 0x150)",
            "  luajit-2.1.0-beta3-20220320-nogc64: lua_gettop reads no lua_State.top (L + 0x18)",
            "  luajit2-openresty-2.1-20230119-gc64: lua_gethook reads no global_State.hookf (L->glref + 0x150)",
            "  luajit2-openresty-2.1-20230119-nogc64: lua_gettop reads no lua_State.top (L + 0x18)",
            "install the -dbgsym/-debuginfo package, point DEBUGINFOD_URLS at a debuginfod server, or rebuild with -g",
        ],
        "{err}"
    );
    assert!(
        err.starts_with("-e:1:23: error: no DWARF debuginfo for "),
        "{err}"
    );
}

/// The layout-dependent member names (what the tapset picks with
/// `@defined(@cast(0, "GCRef")->gcptr64)`).
fn ref_fields(variant: Variant) -> (&'static str, &'static str) {
    if variant.gc64() {
        ("ptr64", "gcptr64")
    } else {
        ("ptr32", "gcptr32")
    }
}

fn cast(m: &Module, ty: &str, chain: &str) -> Resolved {
    m.resolve_cast(ty, &parse_chain(chain).unwrap(), false)
        .unwrap_or_else(|e| panic!("@cast(p, \"{ty}\"){chain}: {e}"))
}

/// Runs `exe` (static VM, or `luajit-dyn` with the VM in libluajit) on
/// spin.lua and follows globalL through the target's memory.
fn global_l_round_trip(lj: &LuaJit, exe: &Path, vm_in_dso: bool) {
    let variant = lj.variant;
    let proc = lj.start(exe, &["-joff"], "spin.lua");
    let pid = proc.pid();
    let info = TargetInfo::from_pid(pid).unwrap();
    assert_eq!(
        std::fs::canonicalize(&info.exe).unwrap(),
        std::fs::canonicalize(exe).unwrap()
    );
    let opts = LocateOptions::with_root(format!("/proc/{pid}/root"));
    let exe_mod = Module::open_in(&info.exe, opts.clone()).unwrap();
    let exe_bias = exe_mod
        .load_bias(&map_entries(&info, &info.exe))
        .unwrap_or_else(|e| panic!("load bias of {}: {e}", info.exe.display()));
    assert_ne!(
        exe_bias, 0,
        "luajit is a PIE: it is not at its link address"
    );
    assert_eq!(exe_bias % 4096, 0);

    // $^libluajit_path: the DSO when the VM is one, else the executable.
    let lib_mod;
    let vm: &Module = match info.find_library("luajit").path() {
        Some(lib) => {
            assert!(vm_in_dso, "{} maps a libluajit: {lib:?}", exe.display());
            assert_eq!(
                std::fs::canonicalize(lib).unwrap(),
                std::fs::canonicalize(&lj.libluajit).unwrap()
            );
            lib_mod = Module::open_in(lib, opts.clone()).unwrap();
            let bias = lib_mod.load_bias(&map_entries(&info, lib)).unwrap();
            assert_ne!(bias, 0, "a DSO is not at its link address");
            &lib_mod
        }
        None => {
            assert!(!vm_in_dso, "no libluajit mapped by {}", exe.display());
            &exe_mod
        }
    };

    let mem = Mem::open(pid);
    // @var("globalL", "$^exec_path"): a static of luajit.c.
    let var = exe_mod.resolve_var("globalL", &[], false).unwrap();
    assert_eq!(var.resolved.value.kind, ValueKind::Pointer);
    assert_eq!(
        var.resolved.fetch,
        Fetch::Load {
            size: 8,
            signed: false,
            bitfield: None
        }
    );
    assert!(
        var.variable
            .cu_name
            .as_deref()
            .is_some_and(|c| c.ends_with("luajit.c")),
        "{:?}",
        var.variable.cu_name
    );
    assert_eq!(
        exe_mod.variable("globalL@luajit.c").unwrap().link_address,
        var.variable.link_address
    );
    let var_addr = var.variable.link_address + exe_bias;
    let l = mem.eval(var_addr, &var.resolved, &[]) as u64;
    assert_ne!(l, 0, "globalL is NULL: the script runs, so pmain set it");
    assert_eq!(mem.uint(var_addr, 8), l);

    let (mref, gcref) = ref_fields(variant);
    let g = mem.eval(l, &cast(vm, "lua_State", &format!("->glref->{mref}")), &[]) as u64;
    assert_ne!(g, 0);
    let main = mem.eval(
        g,
        &cast(vm, "global_State", &format!("->mainthref->{gcref}")),
        &[],
    ) as u64;
    assert_eq!(
        main, l,
        "global_State {g:#x}: mainthref {main:#x} != globalL {l:#x}"
    );
    // Main thread running spin(): it is the current coroutine too.
    let cur = mem.eval(
        g,
        &cast(vm, "global_State", &format!("->cur_L->{gcref}")),
        &[],
    ) as u64;
    assert_eq!(cur, l, "cur_L");
    // The main lua_State and the global_State live in one GG_State.
    let gg_g = vm
        .resolve_cast("GG_State", &parse_chain("->g").unwrap(), true)
        .unwrap()
        .constant_offset()
        .unwrap() as u64;
    let gg_l = vm
        .resolve_cast("GG_State", &parse_chain("->L").unwrap(), true)
        .unwrap()
        .constant_offset()
        .unwrap() as u64;
    assert_eq!(g - gg_g, l - gg_l, "GG_State of g and of L");
    // The other layout's members do not exist (what @defined tests).
    let (other_mref, other_gcref) = ref_fields(if variant.gc64() {
        Variant::NoGc64
    } else {
        Variant::Gc64
    });
    assert!(vm
        .resolve_cast(
            "MRef",
            &parse_chain(&format!("->{other_mref}")).unwrap(),
            false
        )
        .is_err());
    assert!(vm
        .resolve_cast(
            "GCRef",
            &parse_chain(&format!("->{other_gcref}")).unwrap(),
            false
        )
        .is_err());

    // The whole chain from the variable in one go, where the executable's
    // DWARF has the complete lua_State (static VM): `@var("globalL")->glref->ptr64`.
    if !vm_in_dso {
        let chained = exe_mod
            .resolve_var(
                "globalL",
                &parse_chain(&format!("->glref->{mref}")).unwrap(),
                false,
            )
            .unwrap();
        assert_eq!(mem.eval(var_addr, &chained.resolved, &[]) as u64, g);
    }
    drop(proc);
}

#[test]
fn global_l_gc64_static_vm() {
    let Some(lj) = luajit::get(Variant::Gc64) else {
        return;
    };
    global_l_round_trip(lj, &lj.luajit, false);
}

#[test]
fn global_l_nogc64_static_vm() {
    let Some(lj) = luajit::get(Variant::NoGc64) else {
        return;
    };
    global_l_round_trip(lj, &lj.luajit, false);
}

#[test]
fn global_l_gc64_vm_in_libluajit() {
    let Some(lj) = luajit::get(Variant::Gc64) else {
        return;
    };
    global_l_round_trip(lj, &lj.luajit_dyn, true);
}

#[test]
fn global_l_nogc64_vm_in_libluajit() {
    let Some(lj) = luajit::get(Variant::NoGc64) else {
        return;
    };
    global_l_round_trip(lj, &lj.luajit_dyn, true);
}

/// The workloads' markers name existing, distinct lines.
#[test]
fn workload_markers() {
    let spin = luajit::marker_line("spin.lua", "hot:spin");
    assert!(spin > luajit::marker_line("spin.lua", "def:spin"));
    for (script, markers) in [
        (
            "spin.lua",
            &["def:first", "call:first", "call:second", "call:third"][..],
        ),
        (
            "split.lua",
            &["hot:heavy", "hot:light", "call:heavy", "call:light"],
        ),
        (
            "pcall_sort.lua",
            &["hot:cmp", "call:sort", "call:sorter", "call:pcall"],
        ),
        (
            "coro.lua",
            &["hot:crunch", "call:crunch", "call:co", "call:driver"],
        ),
        (
            "recurse.lua",
            &["hot:spin", "call:spin", "call:descend", "call:descend50"],
        ),
    ] {
        let mut lines: Vec<u32> = markers
            .iter()
            .map(|m| luajit::marker_line(script, m))
            .collect();
        lines.sort();
        lines.dedup();
        assert_eq!(lines.len(), markers.len(), "{script}");
    }
}

/// The pahole parser the layout checks rely on, on a hand-made sample of
/// everything it must read.
#[test]
fn pahole_parser_reads_expanded_nested_output() {
    let t = "union TValue {
	/* typedef uint64_t -> __uint64_t */ long unsigned int          u64;             /*     0     8 */
	/* typedef GCRef */ struct GCRef {
		/* typedef uint64_t -> __uint64_t */ long unsigned int  gcptr64;         /*     0     8 */
	} gcr; /*     0     8 */
	struct {
		int                i;                  /*     0     4 */
		unsigned int       it;              /*     4     4 */
	};                                                                               /*     0     8 */
	struct X {
		int a:3;  /*    16: 0  4 */
		void * (*f)(void *, int); /* 24 8 */
	} arr[2] __attribute__((__aligned__(8))); /*    16    32 */

	/* size: 48, cachelines: 1, members: 4 */
};
";
    let l = pahole::parse(t).unwrap();
    let got: Vec<(String, u64, u64, Option<u64>)> = l
        .members
        .iter()
        .map(|m| (m.display(), m.offset, m.size, m.bit))
        .collect();
    assert_eq!(l.keyword, "union");
    assert_eq!(l.size, Some(48));
    assert_eq!(
        got,
        vec![
            ("u64".into(), 0, 8, None),
            ("gcr".into(), 0, 8, None),
            ("gcr.gcptr64".into(), 0, 8, None),
            ("i".into(), 0, 4, None),
            ("it".into(), 4, 4, None),
            ("arr".into(), 16, 32, None),
            ("arr[0].a".into(), 16, 4, Some(0)),
            ("arr[0].f".into(), 24, 8, None),
        ]
    );
}
