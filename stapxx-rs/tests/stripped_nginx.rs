//! Lua flame graphs of production binaries (issue 16): lj-lua-stacks on
//! Debian 12's own nginx, lua-nginx-module and OpenResty's LuaJIT, as
//! packaged: stripped, with no debug package and no debuginfod server
//! (`support::debian_nginx`, run by `support::nginx::Server` with the
//! handlers of `tests/nginx/`). What our builds with debug info give
//! (tests/nginx.rs), these must give too: the hot handler's frames as the
//! dominant backtrace, on one worker and on every worker, with every
//! request answered.

mod support;

use std::collections::HashSet;
use std::path::Path;

use object::{Object, ObjectSection, ObjectSegment};
use support::debian_nginx;
use support::nginx::{Nginx, Server, Wrk};
use support::nginx_checks::{self, assert_dominant, assert_served, hot_backtrace_with, NGX_LOG};
use support::session;

/// Debian's nginx and the serializing lock, when this test can run.
fn setup() -> Option<(std::sync::MutexGuard<'static, ()>, &'static Nginx)> {
    nginx_checks::setup(debian_nginx::get)
}

/// The executable, the modules and the libluajit carry no debug info
/// (no DWARF, no symbol table, no MiniDebugInfo), and there is no separate
/// debug file for them where tools look: what lj-lua-stacks resolves on
/// them cannot come from debug info by accident.
#[test]
fn debian_binaries_are_stripped() {
    let Some(ng) = debian_nginx::get() else {
        return;
    };
    let files: Vec<&Path> = std::iter::once(ng.nginx.as_path())
        .chain(ng.modules.iter().map(|m| m.as_path()))
        .chain(std::iter::once(ng.libluajit.as_path()))
        .collect();
    assert_eq!(files.len(), 4);
    // The check sees debug info where there is some: in our LuaJIT built
    // with -g, from the same source as Debian's libluajit2.
    if let Some(lj) = support::luajit::get(support::luajit::Variant::Gc64) {
        let found = debian_nginx::debug_info_of(&lj.libluajit);
        for want in [".debug_info", ".symtab"] {
            assert!(found.iter().any(|f| f == want), "{found:?}");
        }
    }
    for f in files {
        assert_eq!(
            debian_nginx::debug_info_of(f),
            Vec::<String>::new(),
            "{}",
            f.display()
        );
    }
}

/// What lj-lua-stacks reads of the stripped libluajit comes from the
/// LuaJIT layout stapxx-rs ships for OpenResty's 2.1-20230119 (GC64, as
/// x86-64 builds it), matched against the library's machine code, as
/// `-p2 -v` says.
#[test]
fn debian_libluajit_is_read_through_the_shipped_layout() {
    let Some((_serial, ng)) = setup() else {
        return;
    };
    let s = Server::start(ng);
    let worker = s.workers()[0].to_string();
    let (_, err) = session::run(
        "examples/lj-lua-stacks.sxx",
        &session::strings(&["-p2", "-v", "-x", &worker]),
    );
    let lib = std::fs::canonicalize(&ng.libluajit).unwrap();
    let want = format!(
        "Pass 2: {}: no DWARF; its machine code matches the shipped LuaJIT layout \
         luajit2-openresty-2.1-20230119-gc64\n",
        lib.display()
    );
    assert!(err.contains(&want), "{err}");
}

/// The server runs the packages as our builds run: `/hot`, `/fast` and
/// `/chunk` answer 200 under wrk, every request logged with 200, served by
/// workers that map the private root's libluajit and no other.
#[test]
fn debian_nginx_serves_every_request() {
    let Some((_serial, ng)) = setup() else {
        return;
    };
    let s = Server::start(ng);
    for path in ["/hot", "/fast", "/chunk"] {
        let w = Wrk::start(&s.url(path), 1, 2, 8).wait();
        assert_served(&s, &w);
    }
    let log = s.access_log();
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|(_, status, _)| *status == 200),
        "{:?}",
        log.iter().filter(|l| l.1 != 200).collect::<Vec<_>>()
    );
    for path in ["/hot", "/fast", "/chunk"] {
        assert!(log.iter().any(|l| l.2 == path), "no {path} in the log");
    }
    let lib = std::fs::canonicalize(&ng.libluajit).unwrap();
    for w in s.workers() {
        let maps = std::fs::read_to_string(format!("/proc/{w}/maps")).unwrap();
        let luajits: HashSet<&str> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|p| p.contains("libluajit"))
            .collect();
        assert_eq!(
            luajits,
            HashSet::from([lib.to_str().unwrap()]),
            "worker {w}"
        );
    }
}

/// The addresses in `file` (link-time, as its symbols would give them)
/// where a function starts: the FDEs of its `.eh_frame`, which a stripped
/// file keeps (unwinding needs them).
fn function_entries(file: &Path) -> HashSet<u64> {
    use gimli::UnwindSection;
    let data = std::fs::read(file).unwrap();
    let obj = object::File::parse(&*data).unwrap();
    let sec = obj.section_by_name(".eh_frame").expect(".eh_frame");
    let eh = gimli::EhFrame::new(sec.data().unwrap(), gimli::LittleEndian);
    let mut bases = gimli::BaseAddresses::default().set_eh_frame(sec.address());
    if let Some(text) = obj.section_by_name(".text") {
        bases = bases.set_text(text.address());
    }
    let mut entries = eh.entries(&bases);
    let mut out = HashSet::new();
    while let Some(e) = entries.next().expect("a CFI entry") {
        if let gimli::CieOrFde::Fde(partial) = e {
            let fde = partial
                .parse(|s, b, o| s.cie_from_offset(b, o))
                .expect("an FDE");
            out.insert(fde.initial_address());
        }
    }
    out
}

/// Runtime address `addr` in process `pid` as an address of `file`
/// (link-time), where the process maps that file executable.
fn link_address(pid: u32, file: &Path, addr: u64) -> Option<u64> {
    let real = std::fs::canonicalize(file).unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let file_off = maps.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (lo, hi) = f.first()?.split_once('-')?;
        let (lo, hi) = (
            u64::from_str_radix(lo, 16).ok()?,
            u64::from_str_radix(hi, 16).ok()?,
        );
        let off = u64::from_str_radix(f.get(2)?, 16).ok()?;
        (f.get(1)?.contains('x') && Path::new(f.get(5)?) == real && (lo..hi).contains(&addr))
            .then(|| addr - lo + off)
    })?;
    let data = std::fs::read(file).unwrap();
    let obj = object::File::parse(&*data).unwrap();
    obj.segments().find_map(|s| {
        let (off, size) = s.file_range();
        (off..off + size)
            .contains(&file_off)
            .then(|| s.address() + (file_off - off))
    })
}

/// The hot backtrace as lj-lua-stacks gives it on Debian's packages. The C
/// function behind ngx.log is static: with no symbol table it has no name,
/// and is printed by address, `C:0x...`. That address must be where a
/// function of the Lua module starts, in each of `workers` (forked from
/// one master, they map the module alike); the Lua frames and the trace
/// are those of our builds.
fn stripped_hot_backtrace(ng: &Nginx, out: &str, workers: &[u32]) -> Vec<String> {
    let bts = support::backtraces(out);
    let printed = bts.first().and_then(|b| b.0.get(2)).cloned();
    let Some(addr) = printed
        .as_deref()
        .and_then(|f| f.strip_prefix("C:0x"))
        .and_then(|a| u64::from_str_radix(a, 16).ok())
    else {
        // Not an address where the C frame should be: the comparison
        // fails, showing what came.
        return hot_backtrace_with(&format!("{NGX_LOG} (by address)"));
    };
    let module = &ng.modules[1];
    assert!(module.ends_with("ngx_http_lua_module.so"));
    let entries = function_entries(module);
    for &w in workers {
        let at = link_address(w, module, addr).unwrap_or_else(|| {
            panic!("C:{addr:#x} is not in the Lua module's code in worker {w}: {bts:#?}")
        });
        assert!(
            entries.contains(&at),
            "C:{addr:#x} ({at:#x} in {}) starts no function: {bts:#?}",
            module.display()
        );
    }
    hot_backtrace_with(&format!("C:{addr:#x}"))
}

/// lj-lua-stacks with `-x` on one worker of Debian's nginx under wrk on
/// `/hot`.
#[test]
fn lua_stacks_on_a_worker_of_debian_nginx() {
    let Some((_serial, ng)) = setup() else {
        return;
    };
    let s = Server::start(ng);
    let (out, err) = nginx_checks::lua_stacks_on_a_worker(ng, &s);
    let want = stripped_hot_backtrace(ng, &out, &s.workers()[..1]);
    let total = assert_dominant(&out, &err, &want);
    assert!(total >= 50, "{total} samples: {err}");
}

/// lj-lua-stacks with `--master` on Debian's nginx: every worker's Lua VM
/// found (by the luajit tapset: the nginx tapset's way, through
/// `ngx_cycle`'s structures, needs nginx's debug info), and the hot
/// handler dominant.
#[test]
fn master_traces_every_worker_of_debian_nginx() {
    let Some((_serial, ng)) = setup() else {
        return;
    };
    let s = Server::start(ng);
    let (out, err) = nginx_checks::lua_stacks_on_every_worker(ng, &s, "luajit", "luajit_sample_G");
    let want = stripped_hot_backtrace(ng, &out, &s.workers());
    let total = assert_dominant(&out, &err, &want);
    assert!(total >= 50, "{total} samples: {err}");
}
