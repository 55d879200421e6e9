//! The task functions SystemTap's linux/task.stp writes in embedded C,
//! served by our `tapsets/linux/task.stp` in the script language over the
//! kernel's structures: listings (offsets come from the running kernel's
//! BTF, so they are shown as `OFF` and the ones that matter are checked
//! against pahole), the host-probe forms, and a real run on a process
//! started with known ids and nice value, in a uprobe, a tracepoint and a
//! raw tracepoint.

mod support;

use std::path::Path;

/// `text` with the kernel's member offsets written `OFF`, as they differ
/// between kernels: a number added last (`+ N)` in `-p2`, `Add N)` in the
/// `-p3` IR), both sides of a difference of two numbers (`&@cast(0, ...)`
/// offsets subtracted: `(552 - 40)`), and an offset taken off a pointer
/// (`- N)` with N at least 256, which no constant of task.stp is).
fn offsets_hidden(text: &str) -> String {
    // Runs of digits and of everything else, in order.
    let mut runs: Vec<(bool, &str)> = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    for i in 1..=b.len() {
        if i == b.len() || b[i].is_ascii_digit() != b[start].is_ascii_digit() {
            runs.push((b[start].is_ascii_digit(), &text[start..i]));
            start = i;
        }
    }
    let mut out = String::new();
    let mut hidden = vec![false; runs.len()];
    for (k, &(digit, run)) in runs.iter().enumerate() {
        let before = if k > 0 { runs[k - 1].1 } else { "" };
        let after = runs.get(k + 1).map_or("", |r| r.1);
        let after_num = runs.get(k + 2).is_some_and(|r| r.0);
        let minus = |s: &str| s == " - " || s == " Sub ";
        let plus = before.ends_with("+ ") || before.ends_with("Add ");
        let hide = digit
            && ((plus && after.starts_with(')'))
                || (before.ends_with('(') && minus(after) && after_num)
                || (minus(before) && k >= 2 && hidden[k - 2])
                || ((before.ends_with(" - ") || before.ends_with(" Sub "))
                    && run.parse::<u64>().unwrap_or(0) >= 256));
        hidden[k] = hide;
        out.push_str(if hide { "OFF" } else { run });
    }
    out
}

fn have_tree() -> bool {
    if Path::new("/sys/kernel/btf/vmlinux").exists() {
        return true;
    }
    support::missing("the kernel's BTF (/sys/kernel/btf/vmlinux)");
    false
}

/// `-p2`: the functions come from our file, in the script language.
#[test]
fn listing_of_the_served_functions() {
    if !have_tree() {
        return;
    }
    let (code, out, err) = support::stapxx(&[
        "-p2",
        "-e",
        "probe timer.profile { t = task_current(); println(task_nice(t), task_prio(t), task_uid(t), task_ns_pid(t), pid2execname(pid())) }",
    ]);
    assert_eq!(code, 0, "{err}");
    // What the snapshot hides: nice and prio are read where pahole says.
    if support::have_tool("pahole") {
        let (st, pr) = (
            support::pahole::kernel_offset("task_struct", "static_prio"),
            support::pahole::kernel_offset("task_struct", "prio"),
        );
        assert!(
            out.contains(&format!("return (kernel_int((task + {st})) - 120)\n"))
                && out.contains(&format!("return (kernel_int((task + {pr})) - 100)\n")),
            "{out}"
        );
    } else {
        support::missing("pahole (dwarves)");
    }
    // The sites line names the kernel's CONFIG_HZ: not what this shows.
    let body: String = out
        .lines()
        .filter(|l| !l.starts_with("#   "))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!(offsets_hidden(&body));
}

/// `-p3` of a host probe: pid2execname() reads /proc there; the typed IR.
#[test]
fn listing_of_pid2execname_in_a_host_probe() {
    if !have_tree() {
        return;
    }
    let (code, out, err) = support::stapxx(&[
        "-p3",
        "-e",
        "probe begin { println(pid2execname(1)); exit() }",
    ]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(offsets_hidden(&out));
}

/// Host probes have no kernel tasks: pid2execname() is /proc/PID/comm
/// ("" for no such task, as stap gives), pid2task() a clear error.
#[test]
fn host_probes_read_proc_and_refuse_pid2task() {
    if !have_tree() {
        return;
    }
    let init = std::fs::read_to_string("/proc/1/comm").unwrap();
    let (code, out, err) = support::stapxx(&[
        "-e",
        // No pid reaches 2^22 (the kernel's largest pid_max).
        "probe begin { printf(\"[%s] [%s] [%s]\\n\", pid2execname(1), pid2execname(4194305), pid2execname(0)); exit() }",
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, format!("[{}] [] []\n", init.trim_end()));
    let (code, out, err) = support::stapxx(&["-e", "probe begin { println(pid2task(1)) }"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "ERROR: pid2task() needs a kernel probe: begin, end and timer probes run in stapxx-rs, where there are no kernel task addresses\n\
         WARNING: Number of errors: 1, skipped probes: 0\n"
    );
}

/// The fixture runs with real/effective uid 1234/4567, gid 2345/3456 and
/// nice 5 (setpriv, nice); in a uprobe on its report(), the getppid()
/// tracepoint and its exit (a raw tracepoint: typed arguments), every
/// function gives those, pid2task() finds the process itself and
/// pid2execname() its name and its parent's (stapxx-rs, which ran it).
/// The shell `-c` starts (the same pid before it runs the fixture) may
/// call getppid() too: the tracepoint keeps the fixture's calls only.
#[test]
fn task_ids_nice_and_pid2task_in_the_process() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !support::have_tool("setpriv") {
        support::missing("setpriv (util-linux)");
        return;
    }
    for opt in ["-O0", "-O2"] {
        let tag = format!("taskids{opt}");
        let bin = support::c_fixture("taskids.c", &tag, &[opt]);
        let script = format!(
            r#"function show(where) {{
  t = task_current()
  printf("%s uid=%d euid=%d gid=%d egid=%d nice=%d prio=%d ns_pid=%d ns_tid=%d ns_uid=%d ns_euid=%d ns_gid=%d ns_egid=%d self=%d parent=%s comm=%s\n",
    where, task_uid(t), task_euid(t), task_gid(t), task_egid(t), task_nice(t), task_prio(t),
    task_ns_pid(t) == target(), task_ns_tid(t) == target(), task_ns_uid(t), task_ns_euid(t),
    task_ns_gid(t), task_ns_egid(t), pid2task(pid()) == t, pid2execname(ppid()), pid2execname(pid()))
}}
probe process("{bin}").function("report") {{ show("uprobe") }}
probe kernel.trace("syscalls:sys_enter_getppid") {{ if (pid() == target() && execname() == "{tag}") show("tracepoint") }}
probe kernel.trace("sched:sched_process_exit") {{ if (pid() == target()) show("raw") }}
"#,
            bin = bin.display()
        );
        let cmd = format!(
            "setpriv --ruid 1234 --euid 4567 --rgid 2345 --egid 3456 --clear-groups nice -n 5 {}",
            bin.display()
        );
        let (code, out, err) = support::stapxx_c(&cmd, &script);
        assert_eq!((code, err.as_str()), (0, ""), "{opt}");
        let ids = "uid=1234 euid=4567 gid=2345 egid=3456 nice=5 prio=25 ns_pid=1 ns_tid=1 \
                   ns_uid=1234 ns_euid=4567 ns_gid=2345 ns_egid=3456 self=1 parent=stapxx-rs";
        assert_eq!(
            out,
            format!("uprobe {ids} comm={tag}\ntracepoint {ids} comm={tag}\nraw {ids} comm={tag}\n"),
            "{opt}"
        );
    }
}

/// The context functions SystemTap's linux/context.stp writes in embedded
/// C, from our `tapsets/linux/context.stp`: in a uprobe of the fixture run
/// with real/effective uid 1234/4567 and gid 2345/3456 (setpriv), the ids,
/// its parent's name (stapxx-rs started it) and its session and process
/// group (stapxx-rs's, which are this test's: nothing in between changes
/// them); in a begin probe, the same functions about stapxx-rs itself.
#[test]
fn context_functions_in_the_process_and_on_the_host() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !support::have_tool("setpriv") {
        support::missing("setpriv (util-linux)");
        return;
    }
    // SAFETY: plain queries about this process.
    let (sid, pgrp, uid, gid) = unsafe {
        (
            libc::getsid(0),
            libc::getpgrp(),
            libc::getuid(),
            libc::getgid(),
        )
    };
    for opt in ["-O0", "-O2"] {
        let bin = support::c_fixture("taskids.c", &format!("taskids{opt}"), &[opt]);
        let script = format!(
            r#"probe begin {{
  printf("host %d %d %d %d %d %d %d %s\n", gid(), euid(), egid(), sid(), pgrp(), stp_pid() == pid(), ns_pid() == pid(), module_name())
}}
probe process("{bin}").function("report") {{
  printf("%d %d %d %d %s %d %d %d %d %d %d %d %d %d %d %d\n", gid(), euid(), egid(), ns_uid(), pexecname(), sid(), pgrp(),
    ns_sid(), ns_pgrp(), ns_pid() == pid(), ns_tid() == tid(), ns_ppid() == ppid(), stp_pid() == ppid(), ns_gid(), ns_euid(), ns_egid())
}}
"#,
            bin = bin.display()
        );
        let cmd = format!(
            "setpriv --ruid 1234 --euid 4567 --rgid 2345 --egid 3456 --clear-groups {}",
            bin.display()
        );
        let (code, out, err) = support::stapxx_c(&cmd, &script);
        assert_eq!((code, err.as_str()), (0, ""), "{opt}");
        assert_eq!(
            out,
            format!(
                "host {gid} {uid} {gid} {sid} {pgrp} 1 1 stapxx_rs\n\
                 2345 4567 3456 1234 stapxx-rs {sid} {pgrp} {sid} {pgrp} 1 1 1 1 2345 4567 3456\n"
            ),
            "{opt}"
        );
    }
}

/// task_utime(), task_stime(), their `(tid)` forms, task_start_time(),
/// cputime_to_msecs() and task_time_string() (our
/// `tapsets/linux/task_time.stp`) at the exit of a shell that counted to
/// 100000 (about 0.1 s of user time): the user time is at least 30 ms and
/// at most the run's wall time, the start time lies within the run on this
/// test's CLOCK_BOOTTIME, and the string shows the same milliseconds.
#[test]
fn task_times_of_a_busy_shell() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let boot = || support::clock_ns(libc::CLOCK_BOOTTIME);
    let before = boot();
    let (code, out, err) = support::stapxx_c(
        "sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done'",
        r#"probe kernel.trace("sched:sched_process_exit") {
  if (pid() == target())
    printf("%d %d %d %d %d %d %s\n", task_utime(), task_stime(), task_utime(tid()) == task_utime(),
      task_stime(tid()) == task_stime(), task_start_time(tid()), cputime_to_msecs(task_utime()), task_time_string())
}"#,
    );
    let after = boot();
    assert_eq!((code, err.as_str()), (0, ""));
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f.len(), 10, "{out}");
    let n = |i: usize| f[i].parse::<i64>().unwrap();
    let (utime, stime, start, ms) = (n(0), n(1), n(4), n(5));
    assert!(
        utime >= 30_000_000 && utime + stime <= after - before,
        "{out}"
    );
    assert_eq!((n(2), n(3)), (1, 1), "{out}");
    assert!(
        before <= start && start <= after,
        "{before} <= {start} <= {after}"
    );
    assert_eq!(ms, utime / 1_000_000);
    assert_eq!(
        f[6..].join(" "),
        format!(
            "usr: 0m{}.{:03}s, sys: 0m{}.{:03}s",
            ms / 1000,
            ms % 1000,
            stime / 1_000_000_000,
            stime / 1_000_000 % 1000
        ),
        "{out}"
    );
}
