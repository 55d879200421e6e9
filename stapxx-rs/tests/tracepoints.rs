//! `kernel.trace(...)` target variables, run for real: typed arguments of
//! raw tracepoints followed through the kernel's BTF (`$prev->pid` of
//! `sched:sched_switch`, checked against pahole's reading of the same BTF
//! and against two threads ping-ponging on pipes), record fields of the
//! system call tracepoints (`$filename`, `$dfd`, `$ret`) on a program whose
//! calls are known, and the errors for names that do not exist.

mod support;

use std::collections::HashMap;

fn fixture() -> std::path::PathBuf {
    support::c_fixture("pingpong.c", "pingpong-O2", &["-O2", "-pthread"])
}

#[test]
fn typed_arguments_follow_the_kernel_s_btf() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let script = r#"probe kernel.trace("sched:sched_switch") { printf("%d %s %d\n", $prev->pid, kernel_string($next->comm), $prev_state) }"#;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["-p2", "-e", script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = support::pahole::kernel_offset("task_struct", "pid");
    let comm = support::pahole::kernel_offset("task_struct", "comm");
    // prev, next and prev_state are TP_PROTO's arguments 1, 2 and 3 (after
    // preempt); prev_state is an unsigned int.
    let want = format!(
        "  printf(\"%d %s %d\\n\", kernel_int((kernel_pointer((__stapxx_context() + 8)) + {pid})), \
         kernel_string((kernel_pointer((__stapxx_context() + 16)) + {comm})), \
         (kernel_pointer((__stapxx_context() + 24)) & 4294967295))\n"
    );
    assert!(text.contains(&want), "{text}\nwant: {want}");
    assert!(
        text.contains("#   raw tracepoint sched_switch (sched:sched_switch; arguments preempt, prev, next, prev_state) <- kernel.trace(\"sched:sched_switch\")\n"),
        "{text}"
    );
}

#[test]
fn sched_switch_sees_two_threads_hand_over_the_cpu() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = fixture();
    let rounds = 300;
    let script = r#"probe kernel.trace("sched:sched_switch") {
  if (pid() == target())
    printf("switch %d %d %s -> %d %s\n", tid(), $prev->pid, kernel_string($prev->comm), $next->pid, kernel_string($next->comm))
}"#;
    let (code, out, err) = support::stapxx_c(&format!("{} {rounds}", bin.display()), script);
    assert_eq!(code, 0, "{err}");
    let tid_of = |who: &str| support::pingpong_tid(&out, who);
    let (ping, pong) = (tid_of("ping"), tid_of("pong"));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for l in out.lines().filter_map(|l| l.strip_prefix("switch ")) {
        let f: Vec<&str> = l.split(' ').collect();
        // The task leaving the CPU is the one the probe runs in.
        assert_eq!(f[0], f[1], "{l}");
        *counts.entry(f[1..].join(" ")).or_default() += 1;
    }
    let there = counts
        .get(&format!("{ping} ping -> {pong} pong"))
        .copied()
        .unwrap_or(0);
    let back = counts
        .get(&format!("{pong} pong -> {ping} ping"))
        .copied()
        .unwrap_or(0);
    let about = |n: usize| support::about_one_per_round(n, rounds);
    assert!(about(there), "{there}: {counts:?}");
    assert!(about(back), "{back}: {counts:?}");
}

#[test]
fn system_call_records_give_their_fields() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = fixture();
    let script = r#"probe kernel.trace("syscalls:sys_enter_openat") {
  if (pid() == target()) printf("openat(%d, \"%s\", %#x)\n", $dfd, user_string_warn($filename), $flags)
}
probe kernel.trace("syscalls:sys_exit_openat") {
  if (pid() == target()) printf("= %d\n", $ret)
}
probe kernel.trace("syscalls:sys_enter_close") {
  if (pid() == target()) printf("close %s\n", $$parms)
}"#;
    let (code, out, err) = support::stapxx_c(&format!("{} 1", bin.display()), script);
    assert_eq!(code, 0, "{err}");
    let fd: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("fd "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    let probe_lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("openat(") || l.starts_with("= ") || l.starts_with("close "))
        .collect();
    let tail = &probe_lines[probe_lines.len() - 5..];
    assert_eq!(
        tail,
        [
            "openat(-100, \"/etc/hostname\", 0x80000)".to_string(),
            format!("= {fd}"),
            format!("close __syscall_nr=0x3 fd=0x{fd:x}"),
            // (`%#x` of 0 is "0x0", as stap's runtime writes it; C
            // writes "0".)
            "openat(-100, \"/nonexistent/stapxx-rs\", 0x0)".to_string(),
            "= -2".to_string(),
        ],
        "{out}"
    );
}

#[test]
fn unknown_variables_and_members_name_the_nearest() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let run = |script: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
            .args(["-p2", "-e", script])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(
        run(r#"probe kernel.trace("sched:sched_switch") { println($prv) }"#),
        "-e:1:52: error: tracepoint sched:sched_switch has no variable '$prv' (nearest: prev, next, preempt; it has $preempt $prev $next $prev_state)\n    probe kernel.trace(\"sched:sched_switch\") { println($prv) }\n                                                       ^\n"
    );
    let err = run(r#"probe kernel.trace("sched:sched_switch") { println($prev->pidd) }"#);
    assert!(
        err.starts_with(
            "-e:1:52: error: '$prev': struct task_struct has no member 'pidd'; nearest: pid, "
        ),
        "{err}"
    );
    assert_eq!(
        run(r#"probe kernel.trace("syscalls:sys_enter_openat") { println($filename->x) }"#),
        "-e:1:59: error: '$filename' of syscalls:sys_enter_openat is a field of the event's record (const char *): it has no type to follow; use @cast\n    probe kernel.trace(\"syscalls:sys_enter_openat\") { println($filename->x) }\n                                                              ^\n"
    );
}

#[test]
fn kernel_casts_follow_the_kernel_s_btf_in_any_probe() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let tgid = support::pahole::kernel_offset("task_struct", "tgid");
    let real_parent = support::pahole::kernel_offset("task_struct", "real_parent");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args([
            "-p2",
            "-e",
            r#"probe timer.profile { println(@cast(task_current(), "task_struct", "kernel<linux/sched.h>")->real_parent->tgid, @defined(@cast(0, "struct task_struct", "kernel")->nope)) }"#,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "  println(kernel_int((kernel_pointer((task_current() + {real_parent})) + {tgid})), 0)\n"
        )),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same at run time, against what the kernel says of the process.
    let script = r#"probe timer.profile {
  if (pid() == target()) {
    t = task_current()
    printf("%d %d %s %d\n", @cast(t, "task_struct", "kernel")->tgid, pid(), kernel_string(@cast(t, "task_struct", "kernel")->comm), @cast(t, "task_struct", "kernel")->real_parent->tgid == ppid())
    exit()
  }
}"#;
    let (code, out, err) = support::stapxx_c(
        "sh -c 'i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); done'",
        script,
    );
    assert_eq!(code, 0, "{err}");
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f.len(), 4, "{out}");
    assert_eq!((f[0], f[2], f[3]), (f[1], "sh", "1"), "{out}");
}
