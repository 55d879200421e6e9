//! Wall-clock timers whose handlers read the interrupted task run in the
//! kernel, on one CPU's clock (`resolve/kernel_timers.rs`), as stap runs
//! every timer handler in the timer interrupt: `pid()`, `execname()` and
//! `cpu()` are the task and CPU the tick interrupted. A busy loop pinned
//! to that CPU is what the ticks find; pinned to another CPU, never. A
//! timer that reads no task stays in stapxx-rs (`host timer` at `-p2`).

mod support;

use std::process::Command;
use std::time::Duration;

/// A busy loop named `spin-timer` pinned to `cpu`.
fn spinner(cpu: u32) -> support::Proc {
    let mut p = support::Proc::spawn(Command::new("python3").args([
        "-c",
        &format!(
            "import ctypes, os\n\
             ctypes.CDLL(None).prctl(15, b'spin-timer', 0, 0, 0)\n\
             os.sched_setaffinity(0, {{{cpu}}})\n\
             print('ready', flush=True)\n\
             while True: pass\n"
        ),
    ]));
    p.wait_for_line("ready", Duration::from_secs(10));
    p
}

const SCRIPT: &str = r#"
global ticks, mine, cpus, name
probe timer.ms(20) {
  ticks++
  if (pid() == target()) { mine++; name = execname() }
  cpus[cpu()]++
  if (ticks == 25) exit()
}
probe end {
  printf("ticks %d mine %d name %s\n", ticks, mine, name)
  foreach (c in cpus) printf("cpu %d %d\n", c, cpus[c])
}
"#;

/// (ticks, ticks that found the target, its name as they saw it, the
/// ticks per CPU).
fn run_on(pid: u32) -> (u64, u64, String, Vec<String>) {
    let (code, out, err) = support::stapxx(&["-x", &pid.to_string(), "-e", SCRIPT]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let mut lines = out.lines();
    let first = lines.next().expect("ticks line");
    let head: Vec<u64> = first.split(' ').filter_map(|w| w.parse().ok()).collect();
    let name = first.split(" name ").nth(1).unwrap_or("").to_string();
    (head[0], head[1], name, lines.map(str::to_string).collect())
}

#[test]
fn a_timer_reading_the_task_sees_what_its_cpu_runs() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let cpus = ebpf_backend::sys::online_cpus().expect("online CPUs");
    let first = cpus[0];
    // Pinned to the timer's CPU: most ticks interrupt it (the machine's
    // other work takes some).
    let p = spinner(first);
    let (ticks, mine, name, per_cpu) = run_on(p.pid());
    assert_eq!(ticks, 25);
    assert!(
        mine >= 12,
        "{mine} of 25 ticks found the spinner on its CPU"
    );
    assert_eq!(name, "spin-timer");
    assert_eq!(per_cpu, [format!("cpu {first} 25")]);
    drop(p);
    // Pinned elsewhere: no tick ever finds it.
    if let Some(&other) = cpus.get(1) {
        let p = spinner(other);
        let (ticks, mine, name, per_cpu) = run_on(p.pid());
        assert_eq!((ticks, mine, name.as_str()), (25, 0, ""));
        assert_eq!(per_cpu, [format!("cpu {first} 25")]);
    }
}

/// The handler's kind shows at `-p2`: a perf event on one CPU for a
/// handler that reads the task (also through a function), a host timer
/// for one that does not.
#[test]
fn where_each_timer_runs_shows_at_p2() {
    let (code, out, err) = support::stapxx(&[
        "-p2",
        "-e",
        "function who() { return execname() }\n\
         probe timer.s(2) { print(who()) }\n\
         probe timer.ms(500) { print(target()) }",
    ]);
    assert_eq!(code, 0, "{err}");
    let sites: Vec<&str> = out.lines().filter(|l| l.starts_with("#   ")).collect();
    assert_eq!(sites.len(), 2, "{out}");
    assert!(
        sites[0].starts_with("#   perf event type 1 config 0 on CPU ")
            && sites[0].ends_with(", every 2000000000 events <- timer.s(2)"),
        "{out}"
    );
    assert_eq!(
        sites[1],
        "#   host timer every 500000000 ns <- timer.ms(500)"
    );
}
