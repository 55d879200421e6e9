//! `--interval SECONDS`: each interval's statistics are reported by the
//! `end` probes and start afresh, with no sample lost or counted twice
//! (the kernel probes switch maps; `runtime/interval.rs`), and the flame
//! outputs are written per interval as numbered files.

mod support;

use std::process::Command;
use support::luajit::{self, Variant};

/// (per-CPU sum, @count, the kernel's own last read, running total) of
/// each `interval` line.
fn intervals(out: &str) -> Vec<(u64, u64, u64, u64)> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("interval ")?;
            let w: Vec<&str> = rest.split_whitespace().collect();
            let total = w.get(3)?.strip_prefix("total=")?.parse().ok()?;
            Some((
                w[0].parse().ok()?,
                w[1].parse().ok()?,
                w[2].parse().ok()?,
                total,
            ))
        })
        .collect()
}

#[test]
fn statistics_start_afresh_and_no_sample_is_lost() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    // An idle CPU takes no ticks: keep one busy so every interval has some.
    let _busy = support::busy_cpus(1);
    let script = support::workspace_root().join("stapxx-rs/tests/scripts/intervals.stp");
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .arg(&script)
        .arg("5")
        .args(["--interval", "1"])
        .output()
        .expect("run stapxx-rs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let iv = intervals(&stdout);
    // Five whole intervals and the rest (the exit and the fifth interval's
    // end fall at about the same time: either may come first).
    assert!((5..=6).contains(&iv.len()), "{stdout}");
    for (i, &(by_cpu, count, seen, _)) in iv.iter().enumerate() {
        assert_eq!(by_cpu, count, "interval {i}: {stdout}");
        // The kernel probe read the current interval's count only.
        assert!(seen <= count, "interval {i}: {stdout}");
        if i < 5 {
            assert!(count > 0, "interval {i}: {stdout}");
        }
    }
    // Scalars keep counting; the intervals add up to exactly the total.
    let sum: u64 = iv.iter().map(|x| x.1).sum();
    assert_eq!(sum, iv.last().unwrap().3, "{stdout}");
    assert!(iv.windows(2).all(|w| w[0].3 <= w[1].3), "{stdout}");
}

/// lj-lua-stacks on the 3:1 workload with `--interval 2`: a folded file
/// and a pprof profile per interval, numbered; together they hold exactly
/// the backtraces the run printed, each readable by `go tool pprof`, each
/// with the workload's split.
#[test]
fn lj_lua_stacks_numbered_profiles() {
    if !support::is_root() {
        support::missing("root (BPF)");
        return;
    }
    let Some(lj) = luajit::get(Variant::Gc64) else {
        return;
    };
    if !support::pprof::have_go() {
        return;
    }
    let _bpf = support::need_bpf();
    let p = lj.start(&lj.luajit, &["-joff"], "split.lua");
    let dir = support::scratch().join("intervals-split");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(support::workspace_root())
        .args(["examples/lj-lua-stacks.sxx", "-x", &p.pid().to_string()])
        .args(["--arg", "time=7", "--arg", "min=0", "--interval", "2"])
        .arg("--folded")
        .arg(dir.join("split.folded"))
        .arg("--pprof")
        .arg(dir.join("split.pb.gz"))
        .output()
        .expect("run stapxx-rs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Each interval's report, one after the other: the count lines.
    let printed: u64 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix('\t'))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    let mut n = 0;
    let mut folded_total = 0;
    while dir.join(format!("split.{}.folded", n + 1)).exists() {
        n += 1;
        let text = std::fs::read_to_string(dir.join(format!("split.{n}.folded"))).unwrap();
        let count = |leaf: &str| -> u64 {
            text.lines()
                .filter(|l| l.rsplit_once(' ').is_some_and(|(s, _)| s.ends_with(leaf)))
                .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
                .sum()
        };
        let (heavy, light) = (count(";split:heavy"), count(";split:light"));
        let all: u64 = text
            .lines()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
            .sum();
        folded_total += all;
        // The last interval may be short; whole ones have hundreds.
        if n <= 3 {
            assert!(all >= 200, "interval {n}: {text}");
            let share = heavy as f64 / (heavy + light) as f64;
            assert!((0.65..=0.85).contains(&share), "interval {n}: {text}");
        }
        let top = support::pprof::go_pprof(
            &dir.join(format!("split.{n}.pb.gz")),
            &["-top", "-sample_index=samples"],
        );
        assert!(
            top.contains(&format!(
                "Showing nodes accounting for {all}, 100% of {all} total"
            )),
            "interval {n}: {top}"
        );
    }
    assert!((3..=5).contains(&n), "{n} intervals: {stderr}");
    assert_eq!(folded_total, printed, "{stdout}");
}
