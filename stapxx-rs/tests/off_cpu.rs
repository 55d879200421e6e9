//! `examples/lj-lua-off-cpu.sxx` on a LuaJIT workload whose off-CPU time
//! is known: `tests/lua/offcpu.lua` sleeps in `poll(2)` (through the FFI,
//! under its function `nap`) and spins in `work`, and measures the wall
//! time its polls took. The script's backtraces must put at least 90 % of
//! the off-CPU time under `nap`, and their total must be within 10 % of
//! what the workload measured.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use support::luajit::{self, marker_line, Variant};

fn off_cpu(variant: Variant) {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let Some(lj) = luajit::get(variant) else {
        return;
    };
    let script = luajit::workload("offcpu.lua");
    let mut target = Command::new(&lj.luajit)
        .args(["-joff", &script.display().to_string(), "60", "wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(target.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let mut tracer = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(support::workspace_root())
        .args([
            "examples/lj-lua-off-cpu.sxx",
            "-x",
            &target.id().to_string(),
        ])
        .args(["--arg", "voluntary=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The probes are attached once the begin probe speaks.
    let mut err = BufReader::new(tracer.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains("Hit Ctrl-C to end.") {
        let mut l = String::new();
        if err.read_line(&mut l).unwrap() == 0 {
            panic!("stapxx-rs ended: {log}");
        }
        log.push_str(&l);
    }
    target.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut tail = String::new();
    std::io::Read::read_to_string(&mut out, &mut tail).unwrap();
    target.wait().unwrap();
    // The run ends when the target does.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    log.push_str(&rest);
    let result = tracer.wait_with_output().unwrap();
    assert_eq!(result.status.code(), Some(0), "{log}");
    // One interval per nap; a switch-out whose walk found no Lua frame
    // (between two of them) is not counted, and others may add a few.
    let intervals: u64 = log
        .lines()
        .find_map(|l| {
            l.strip_prefix("WARNING: ")?
                .strip_suffix(" off-CPU intervals.")
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{log}"));
    assert!((55..=70).contains(&intervals), "{log}");
    let slept: u64 = tail
        .lines()
        .find_map(|l| l.strip_prefix("slept_us "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("workload said: {tail}"));
    let bts = support::backtraces(&String::from_utf8_lossy(&result.stdout));
    let total: u64 = bts.iter().map(|(_, n)| n).sum();
    let nap = format!(
        "@{}:{}",
        script.display(),
        marker_line("offcpu.lua", "def:nap")
    );
    let under_nap: u64 = bts
        .iter()
        .filter(|(frames, _)| frames.contains(&nap))
        .map(|(_, n)| n)
        .sum();
    assert!(
        under_nap * 10 >= total * 9,
        "{under_nap} of {total} us under {nap}: {bts:?}"
    );
    let diff = total.abs_diff(slept);
    assert!(
        diff * 10 <= slept,
        "off-CPU total {total} us, the workload slept {slept} us: {bts:?}"
    );
}

#[test]
fn off_cpu_time_goes_to_the_sleeping_lua_function_gc64() {
    off_cpu(Variant::Gc64);
}

#[test]
fn off_cpu_time_goes_to_the_sleeping_lua_function_nogc64() {
    off_cpu(Variant::NoGc64);
}
