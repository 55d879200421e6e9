//! Any LuaJIT embedder with no debug info (issue 16): Debian's neovim,
//! stripped, running its Lua on Debian's stripped `libluajit-5.1.so.2`
//! (upstream LuaJIT) with no debug package and no debuginfod server.
//!
//! neovim runs `tests/lua/nvim_split.lua` headless (`support::neovim`),
//! with `jit.off()` before it and with the JIT on. lj-lua-stacks finds the
//! VM of a process that is neither luajit.c nor nginx from the registers,
//! reads it with the LuaJIT layouts stapxx-rs ships (no DWARF to read
//! them from), and must give the workload's two backtraces exactly: frames
//! from the script's `-- @def:` markers, the chunk name as neovim's
//! `:luafile` makes it; in the workload's 3:1 split.

mod support;

use support::lj_stacks::{assert_dominant, jitted, pct, sample, stap_pp_stderr, PROBE_4KHZ};
use support::neovim::{self, def, main_chunk, Jit};

const SCRIPT: &str = "nvim_split.lua";

/// The precondition of every test here: neither nvim nor the libluajit
/// it runs has debug info (no `.debug_*` sections, no `.symtab`) or a
/// separate debug file where one would be looked for.
#[test]
fn nvim_and_its_libluajit_have_no_debug_info() {
    let Some(nvim) = neovim::get() else { return };
    let p = neovim::start(nvim, Jit::Off, SCRIPT);
    let lib = neovim::mapped(p.pid(), neovim::LIBLUAJIT)
        .unwrap_or_else(|| panic!("nvim maps no {}*", neovim::LIBLUAJIT));
    let exe = std::fs::read_link(format!("/proc/{}/exe", p.pid())).unwrap();
    for file in [exe.as_path(), lib.as_path()] {
        let facts = neovim::elf_debug(file);
        assert_eq!(
            facts.debug_sections,
            Vec::<String>::new(),
            "{}",
            file.display()
        );
        assert!(facts.debuglink.is_some(), "{}: {facts:?}", file.display());
        let found: Vec<_> = facts
            .debug_file_candidates(file)
            .into_iter()
            .filter(|c| c.exists())
            .collect();
        assert!(found.is_empty(), "{}: {found:?}", file.display());
    }
}

/// heavy's backtrace and light's, innermost first; with the JIT on, each
/// starts with the trace of its leaf's loop.
fn chains(jit: Jit) -> [Vec<String>; 2] {
    let s = SCRIPT;
    ["heavy", "light"].map(|leaf| {
        let mut want = Vec::new();
        if jit == Jit::On {
            want.push(format!("T:{}", def(s, leaf)));
        }
        want.extend([def(s, leaf), def(s, "round"), def(s, "run"), main_chunk(s)]);
        want
    })
}

/// lj-lua-stacks on neovim for two seconds at 4000 Hz: heavy's chain
/// dominates, heavy and light share the samples 3:1 within 5 points, and
/// nearly every sample is one of the two.
fn lj_lua_stacks(jit: Jit) {
    let Some(nvim) = neovim::get() else { return };
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let p = neovim::start(nvim, jit, SCRIPT);
    let (out, err) = sample(p.pid(), &["min=0", PROBE_4KHZ]);
    // stderr is stap++'s lines and nothing else: no word about the debug
    // info nvim and its libluajit lack, nor about the libraries the
    // tapsets look for and an embedder does not have.
    let n = jitted(&err);
    assert_eq!(err, stap_pp_stderr(p.pid(), nvim, n));
    let bts = support::backtraces(&out);
    let [heavy_chain, light_chain] = chains(jit);
    let total = assert_dominant(&bts, &heavy_chain, 60, &err);
    assert!(total >= 1000, "only {total} samples: {bts:#?}; {err}");
    let count = |want: &[String]| -> u64 { bts.iter().filter(|b| b.0 == want).map(|b| b.1).sum() };
    let heavy = pct(count(&heavy_chain), total);
    let light = pct(count(&light_chain), total);
    eprintln!("neovim {jit:?}: heavy {heavy:.1}%, light {light:.1}% of {total}");
    assert!(
        (heavy - 75.0).abs() <= 5.0 && (light - 25.0).abs() <= 5.0,
        "heavy {heavy:.1}%, light {light:.1}% of {total}: {bts:#?}"
    );
    match jit {
        Jit::Off => assert_eq!(n, 0, "{err}"),
        Jit::On => assert!(n * 100 >= total * 90, "{n} JITted of {total}"),
    }
}

#[test]
fn lj_lua_stacks_interpreted() {
    lj_lua_stacks(Jit::Off);
}

#[test]
fn lj_lua_stacks_jit() {
    lj_lua_stacks(Jit::On);
}
