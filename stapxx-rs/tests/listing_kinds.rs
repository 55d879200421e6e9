//! `-p3` of every probe kind as insta snapshots: the typed IR, then the BPF
//! of each kernel probe (program type, how the handler reads the kind's
//! context). A handler reads what its kind offers (`$n`, `$return`,
//! `$arg1`, a register, `pp()`). Process probes run against C fixtures
//! from `tests/fixtures/` built with `cc -g`; their path is `BIN` in the
//! script and in the snapshot. No root needed (tracepoints need tracefs,
//! mounted by `.ci/run`).
//!
//! What else could differ between machines: the listings of these probes
//! hold no kernel addresses, tracepoint ids or CPU counts (the program type
//! names the tracepoint, not its id; the frame map's size per CPU is not
//! printed). The process probes' code depends on what the C compiler made
//! of the fixture (registers and stack slots of `$n`), like the `-p2`
//! snapshots of `probe_sites.rs`. Handlers of process probes do not call
//! `pp()`: its string, which names the fixture's path (a scratch
//! directory named after the test's process id), would be in the listing
//! as the immediates that store it, which no replacement of the path can
//! reach.

mod support;

use std::path::Path;
use std::process::Command;

/// `stapxx-rs -p3 -e SCRIPT` (which must succeed), `BIN` standing for
/// `bin` in the script and in the output.
fn p3(bin: Option<&Path>, script: &str) -> String {
    let path = bin.map(|b| b.display().to_string());
    let script = match &path {
        Some(p) => script.replace("BIN", p),
        None => script.to_string(),
    };
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["-p3", "-e", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "-p3 of {script}:\n{stdout}{stderr}");
    assert!(stderr.is_empty(), "-p3 of {script} warned:\n{stderr}");
    match &path {
        Some(p) => stdout.replace(p, "BIN"),
        None => stdout,
    }
}

fn uprobes(opt: &str) -> std::path::PathBuf {
    support::c_fixture("uprobes.c", &format!("uprobes{opt}"), &[opt])
}

fn sites(opt: &str) -> std::path::PathBuf {
    support::c_fixture("sites.c", &format!("sites{opt}"), &[opt])
}

fn sdt(opt: &str) -> std::path::PathBuf {
    support::c_fixture("sdt.c", &format!("sdt{opt}"), &[opt])
}

/// The line of `tests/fixtures/sites.c` carrying `/* LINE:name */`.
fn sites_line(name: &str) -> usize {
    support::c_line_of("sites.c", name)
}

#[test]
fn timer_profile() {
    // addr(): the kernel address the tick interrupted, from the perf context.
    insta::assert_snapshot!(p3(None, "probe timer.profile { print(addr()) }"));
}

#[test]
fn timer_reading_the_task() {
    // A wall-clock timer whose handler reads the interrupted task runs as
    // a perf event program on one CPU (resolve/kernel_timers.rs).
    insta::assert_snapshot!(p3(
        None,
        "probe timer.s(1) { printf(\"%d %s\\n\", pid(), execname()) }"
    ));
}

#[test]
fn perf_sample() {
    // uaddr(): the user address, from the task's saved user registers.
    insta::assert_snapshot!(p3(
        None,
        "probe perf.sw.cpu_clock.sample(100000) { print(uaddr()) }"
    ));
}

#[test]
fn function_unoptimized() {
    let bin = uprobes("-O0");
    insta::assert_snapshot!(p3(
        Some(&bin),
        "probe process(\"BIN\").function(\"work\") { print($n) }"
    ));
}

#[test]
fn function_optimized() {
    let bin = uprobes("-O2");
    insta::assert_snapshot!(p3(
        Some(&bin),
        "probe process(\"BIN\").function(\"work\") { print($n) }"
    ));
}

#[test]
fn function_return() {
    let bin = uprobes("-O2");
    insta::assert_snapshot!(p3(
        Some(&bin),
        "probe process(\"BIN\").function(\"twice\").return { print($return) }"
    ));
}

#[test]
fn statement() {
    let bin = sites("-O2");
    let script = format!(
        "probe process(\"BIN\").statement(\"walk@sites.c:{}\") {{ print($i) }}",
        sites_line("loop_body")
    );
    // The line number is part of the snapshot: moving the marker in
    // sites.c changes it.
    insta::assert_snapshot!(p3(Some(&bin), &script));
}

#[test]
fn mark() {
    let bin = sdt("-O2");
    insta::assert_snapshot!(p3(
        Some(&bin),
        "probe process(\"BIN\").mark(\"ints_signed\") { print($arg1) }"
    ));
}

#[test]
fn plt() {
    let bin = sites("-O2");
    // A PLT entry has no DWARF: puts' argument is a register.
    insta::assert_snapshot!(p3(
        Some(&bin),
        "probe process(\"BIN\").plt(\"puts\") { print(u_register(\"rdi\")) }"
    ));
}

#[test]
fn tracepoint() {
    if !Path::new("/sys/kernel/tracing/events/sched").exists() {
        support::missing("tracefs at /sys/kernel/tracing");
        return;
    }
    insta::assert_snapshot!(p3(
        None,
        "probe kernel.trace(\"sched:sched_switch\") { print(pp()) }"
    ));
}

#[test]
fn syscall_return_parameter() {
    if !Path::new("/sys/kernel/tracing/events/syscalls/sys_enter_close").exists() {
        support::missing("tracefs at /sys/kernel/tracing");
        return;
    }
    // `$fd` in a `.return` probe of a system call: a program on
    // syscalls:sys_enter_close saves it by thread, the one on sys_exit
    // reads it back.
    insta::assert_snapshot!(p3(
        None,
        "probe my_syscall.close.return = kernel.trace(\"sys_exit\") { }\n\
         probe my_syscall.close.return { print($fd) }"
    ));
}

#[test]
fn host_kinds() {
    // Host probes run in the interpreter: their -p3 is the IR alone.
    insta::assert_snapshot!(p3(
        None,
        "probe begin { print(pp()) }\nprobe end { print(pp()) }\nprobe timer.s(1) { print(pp()) }"
    ));
}

#[test]
fn process_syscall() {
    if support::ci() || std::path::Path::new("/sys/kernel/tracing/events/raw_syscalls").exists() {
        // The task test (the executable's device and inode, which differ
        // from build to build: INODE and DEV here), then `$syscall`,
        // `$arg2` and `$return` from the raw_syscalls records.
        use std::os::unix::fs::MetadataExt;
        let bin = uprobes("-O0");
        let meta = std::fs::metadata(&bin).unwrap();
        let dev = (u64::from(libc::major(meta.dev())) << 20) | u64::from(libc::minor(meta.dev()));
        let listing = p3(
            Some(&bin),
            "probe process(\"BIN\").syscall { print($syscall + $arg2) }\n\
             probe process(\"BIN\").syscall.return { print($return) }",
        )
        .replace(&format!(" = {}\n", meta.ino()), " = INODE\n")
        .replace(&format!(" = {dev}\n"), " = DEV\n");
        assert!(
            listing.contains("INODE") && listing.contains("DEV"),
            "{listing}"
        );
        insta::assert_snapshot!(listing);
    }
}
