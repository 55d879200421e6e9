//! The headline: `examples/lj-lua-stacks.sxx` sampling Lua backtraces from
//! a live LuaJIT process, on both object layouts, compiled from our tapset
//! to eBPF.

mod support;

use support::luajit::{self, marker_line, Variant};

/// Run lj-lua-stacks on `pid` for `secs` and return its stdout and stderr.
fn sample(pid: u32, secs: u32, extra: &[&str]) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(support::workspace_root())
        .args([
            "examples/lj-lua-stacks.sxx",
            "-x",
            &pid.to_string(),
            "--arg",
            &format!("time={secs}"),
        ])
        .args(extra)
        .output()
        .expect("run stapxx-rs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    (stdout, stderr)
}

/// Backtraces as (frames, count), in output order.
fn backtraces(out: &str) -> Vec<(Vec<String>, u64)> {
    let mut res = Vec::new();
    let mut frames = Vec::new();
    for line in out.lines() {
        if let Some(n) = line.strip_prefix('\t') {
            res.push((
                std::mem::take(&mut frames),
                n.trim().parse().expect("count"),
            ));
        } else if !line.is_empty() {
            frames.push(line.to_string());
        }
    }
    res
}

fn spin_interpreted(variant: Variant) {
    if !support::is_root() {
        support::missing("root (BPF)");
        return;
    }
    let Some(lj) = luajit::get(variant) else {
        return;
    };
    let proc_ = lj.start(&lj.luajit, &["-joff"], "spin.lua");
    let (out, err) = sample(proc_.pid(), 2, &[]);
    assert!(
        err.contains(&format!("Start tracing {} (", proc_.pid())),
        "{err}"
    );
    assert!(err.contains("Please wait for 2 seconds..."), "{err}");
    assert!(err.contains("Time's up. Quitting now..."), "{err}");
    assert!(err.contains("Found 0 JITted samples."), "{err}");
    let bts = backtraces(&out);
    assert!(!bts.is_empty(), "no backtraces; stderr: {err}");
    let chunk = format!("@{}", luajit::workload("spin.lua").display());
    let want: Vec<String> = vec![
        format!("{chunk}:{}", marker_line("spin.lua", "def:spin")),
        format!("{chunk}:{}", marker_line("spin.lua", "def:third")),
        format!("{chunk}:{}", marker_line("spin.lua", "def:second")),
        format!("{chunk}:{}", marker_line("spin.lua", "def:first")),
        format!("{chunk}:0"),
        // luajit.c runs the script inside lua_cpcall(pmain): a C frame.
        "C:pmain".to_string(),
    ];
    let total: u64 = bts.iter().map(|b| b.1).sum();
    assert_eq!(bts[0].0, want, "dominant backtrace; all: {bts:?}");
    assert!(
        bts[0].1 * 10 >= total * 9,
        "dominant backtrace has {} of {total} samples",
        bts[0].1
    );
    // Sorted by count, descending.
    assert!(bts.windows(2).all(|w| w[0].1 >= w[1].1));
}

#[test]
fn spin_interpreted_gc64() {
    spin_interpreted(Variant::Gc64);
}

#[test]
fn spin_interpreted_nogc64() {
    spin_interpreted(Variant::NoGc64);
}
