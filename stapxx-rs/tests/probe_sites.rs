//! `-p2` of every probe kind as insta snapshots: the sites pass 2 matched
//! each point to (kind, binary, file offset, prologue, DWARF) and the
//! handler the sites share. Function probes run against
//! `tests/fixtures/uprobes.c` built with `cc -g -O0` and `-O2`. No root
//! needed (tracepoints need tracefs, mounted by `.ci/run`).

mod support;

use std::process::Command;

/// `stapxx-rs -p2 -e SCRIPT` with `BIN` standing for the fixture built
/// with `opt`, in the listing too.
fn p2(opt: &str, script: &str) -> String {
    p2_on("uprobes", opt, script)
}

/// [`p2`] on the fixture `tests/fixtures/NAME.c`.
fn p2_on(name: &str, opt: &str, script: &str) -> String {
    let bin = support::c_fixture(&format!("{name}.c"), &format!("{name}{opt}"), &[opt]);
    // Run next to the fixture and name it by a relative path of fixed
    // length: columns in messages do not depend on the scratch directory.
    let name = format!("./{}", bin.file_name().unwrap().to_string_lossy());
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(bin.parent().unwrap())
        .args(["-p2", "-e", &script.replace("BIN", &name)])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.replace(&name, "BIN")
}

#[test]
fn host_kinds() {
    insta::assert_snapshot!(p2(
        "-O2",
        "probe begin, begin(-5), end(3), error, never { }\n\
         probe timer.s(2), timer.ms(250), timer.us(7), timer.ns(100000), timer.hz(4), timer.jiffies(25) { }"
    ));
}

#[test]
fn perf_kinds() {
    insta::assert_snapshot!(p2(
        "-O2",
        "probe timer.profile { }\nprobe perf.sw.cpu_clock.sample(100000), perf.sw.page_faults, perf.type(1).config(2).sample(3) { }"
    ));
}

#[test]
fn tracepoints() {
    if !std::path::Path::new("/sys/kernel/tracing/events/sched").exists() {
        support::missing("tracefs at /sys/kernel/tracing");
        return;
    }
    insta::assert_snapshot!(p2(
        "-O2",
        "probe kernel.trace(\"sched:sched_process_e*\") { }"
    ));
}

/// A script's own `*syscall.NAME` alias on the raw syscall tracepoints:
/// its sites are for the call (`for close(fd)`), `$fd` is the register it
/// was passed in, and in `.return` its value at entry, saved by a probe on
/// `syscalls:sys_enter_close`.
#[test]
fn syscall_alias_parameters() {
    if !std::path::Path::new("/sys/kernel/tracing/events/syscalls/sys_enter_close").exists() {
        support::missing("tracefs at /sys/kernel/tracing");
        return;
    }
    insta::assert_snapshot!(p2(
        "-O2",
        "probe my_syscall.close = kernel.trace(\"sys_enter\") { }\n\
         probe my_syscall.close.return = kernel.trace(\"sys_exit\") { }\n\
         probe my_syscall.close { printf(\"%d\\n\", $fd) }\n\
         probe my_syscall.close.return { printf(\"%d %d\\n\", $fd, $return) }"
    ));
}

#[test]
fn functions_unoptimized() {
    insta::assert_snapshot!(p2(
        "-O0",
        "probe process(\"BIN\").function(\"work\") { printf(\"%d\\n\", $n) }\n\
         probe process(\"BIN\").function(\"work*\").call { }\n\
         probe process(\"BIN\").function(\"twice@uprobes.c\").return { printf(\"%d %d\\n\", @entry($n), $return) }"
    ));
}

#[test]
fn functions_optimized() {
    insta::assert_snapshot!(p2(
        "-O2",
        "probe process(\"BIN\").function(\"work\") { printf(\"%d\\n\", $n) }\n\
         probe process(\"BIN\").function(\"work*\").call { }\n\
         probe process(\"BIN\").function(\"twice@uprobes.c\").return { printf(\"%d %d\\n\", @entry($n), $return) }"
    ));
}

#[test]
fn mixed_kinds_share_one_handler_body() {
    insta::assert_snapshot!(p2(
        "-O2",
        "global n\nprobe timer.s(1), timer.profile, process(\"BIN\").function(\"work\") if (n >= 0) { n++ }"
    ));
}

#[test]
fn optional_and_sufficient_points() {
    insta::assert_snapshot!(p2(
        "-O2",
        "probe kernel.function(\"vfs_read\")?, process(\"BIN\").function(\"nope\")?, process(\"BIN\").function(\"work\")!, timer.profile { }"
    ));
}

#[test]
fn errors() {
    let mut all = String::new();
    for script in [
        "probe process(\"BIN\").function(\"wrok\") { }",
        "probe process(\"BIN\").mark(\"x\") { }",
        "probe kernel.function(\"vfs_read\") { }",
        "probe kprobe.function(\"vfs_read\") { }",
        "probe syscal.open { }",
        "probe timer.profile(3) { }",
        "probe kernel.trace(\"sched:no_such_event\") { }",
        "probe perf.hw.cpu_cyclez { }",
        "probe begin(\"x\") { }",
        "probe timer.s(0) { }",
        "probe begin { $n }",
        "probe process(\"BIN\").function(\"work\") { $m }",
    ] {
        all.push_str(&format!("== {script}\n{}\n", p2("-O2", script)));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn process_begin_and_end() {
    if !std::path::Path::new("/sys/kernel/tracing/events/sched").exists() {
        support::missing("tracefs at /sys/kernel/tracing");
        return;
    }
    insta::assert_snapshot!(p2(
        "-O2",
        "probe process(\"BIN\").begin, process(\"BIN\").end { println(pid()) }\n\
         probe process(\"BIN\").thread.begin, process(\"BIN\").thread.end { println(tid()) }\n\
         probe process.begin { }"
    ));
}

#[test]
fn inlined_copies_and_instances() {
    insta::assert_snapshot!(p2_on(
        "sites",
        "-O2",
        "probe process(\"BIN\").function(\"scale\") { printf(\"%d %d\\n\", $factor, $mark) }\n\
         probe process(\"BIN\").function(\"scale\").inline { }\n\
         probe process(\"BIN\").function(\"scale\").call { }"
    ));
}

#[test]
fn statements_and_plt() {
    let line = support::c_line_of("sites.c", "loop_body");
    let script = format!(
        "probe process(\"BIN\").statement(\"walk@sites.c:{line}\") {{ println($i) }}\n\
         probe process(\"BIN\").plt(\"puts\"), process(\"BIN\").plt(\"get*\") {{ println($$name, ppfunc()) }}"
    );
    insta::assert_snapshot!(p2_on("sites", "-O0", &script));
}

#[test]
fn callees() {
    insta::assert_snapshot!(p2_on(
        "callees",
        "-O2",
        "probe process(\"BIN\").function(\"caller\").callee(\"use_pool\") { println($n) }\n\
         probe process(\"BIN\").function(\"caller\").callees { println(ppfunc()) }"
    ));
}
