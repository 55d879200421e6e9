//! `@cast(p, "T", "kernel")` (also `"kernel<linux/sched.h>"`, stap's
//! alternatives `"nfs:kernel"`, and no module at all in a probe on a
//! kernel event, as stap resolves it there) typed by the running kernel's
//! BTF and read with kernel reads, as stap reads it with the kernel's
//! debuginfo. The C fixture (`tests/fixtures/kcast.c`) sets state only
//! the kernel holds (its scheduling policy, a socket's options) to known
//! values; the scripts read it back through `task_current()`, the task's
//! file table and the socket behind a descriptor. Offsets are checked
//! against pahole's reading of the same BTF.

mod support;

use std::path::Path;

fn have_btf() -> bool {
    let ok = Path::new("/sys/kernel/btf/vmlinux").exists();
    if !ok {
        support::missing("the kernel's BTF (/sys/kernel/btf/vmlinux)");
    }
    ok
}

fn have_event(event: &str) -> bool {
    let ok = Path::new("/sys/kernel/tracing/events/syscalls")
        .join(event)
        .exists();
    if !ok {
        support::missing(&format!("tracefs with the syscalls:{event} event"));
    }
    ok
}

fn have_tree() -> bool {
    let ok = Path::new("/usr/share/systemtap/tapset/linux/sysc_epoll_ctl.stp").exists();
    if !ok {
        support::missing("SystemTap's tapset tree (systemtap-common)");
    }
    ok
}

fn pahole_offset(name: &str, member: &str) -> Option<u64> {
    if !support::have_tool("pahole") {
        support::missing("pahole (dwarves)");
        return None;
    }
    Some(support::pahole::kernel_offset(name, member))
}

/// The fixture's own report: (pid, ppid, epoll fd).
fn report(out: &str) -> (u64, u64, u64) {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("kcast pid "))
        .unwrap_or_else(|| panic!("no report line in:\n{out}"));
    let f: Vec<u64> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert_eq!(f.len(), 3, "{line}");
    (f[0], f[1], f[2])
}

/// At the fixture's `getsockname(77, ...)`: its task, then the socket at
/// descriptor 77 through the file table (`fdt->fd[$fd]`, an index through
/// a pointer), a typedef'd enum (`state`), a struct member followed with
/// `->` (`__sk_common`), bitfields at bit 0 and bit 4 of one byte, the
/// address of an array member, an array element, and a cast with no
/// module (the kernel, in a tracepoint probe).
const SCRIPT: &str = r#"
probe kernel.trace("syscalls:sys_enter_getsockname") {
  if (pid() != target() || $fd != 77) next
  t = task_current()
  printf("task tgid=%d pid=%d parent=%d comm=%s comm0=%d policy=%d reset_on_fork=%d comm_at=%d\n",
    @cast(t, "task_struct", "kernel")->tgid,
    @cast(t, "struct task_struct", "kernel<linux/sched.h>")->pid,
    @cast(t, "task_struct")->real_parent->tgid,
    kernel_string(@cast(t, "task_struct", "kernel")->comm),
    @cast(t, "task_struct", "kernel")->comm[0],
    @cast(t, "task_struct", "kernel")->policy,
    @cast(t, "task_struct", "nfs:kernel")->sched_reset_on_fork,
    &@cast(t, "task_struct", "kernel")->comm - t)
  files = @cast(t, "task_struct", "kernel")->files
  fdt = @cast(files, "files_struct", "kernel<linux/fdtable.h>")->fdt
  file = @cast(fdt, "fdtable", "kernel")->fd[$fd]
  sock = @cast(file, "struct file", "kernel")->private_data
  printf("socket state=%d type=%d family=%d sk_state=%d reuse=%d reuseport=%d in_table=%d file_back=%d\n",
    @cast(sock, "socket", "kernel")->state,
    @cast(sock, "socket", "kernel")->type,
    @cast(sock, "socket", "kernel")->sk->__sk_common->skc_family,
    @cast(sock, "socket", "kernel")->sk->__sk_common->skc_state,
    @cast(sock, "socket", "kernel")->sk->__sk_common->skc_reuse,
    @cast(sock, "socket", "kernel")->sk->__sk_common->skc_reuseport,
    @cast(fdt, "fdtable", "kernel")->max_fds > $fd,
    @cast(sock, "socket", "kernel")->file == file)
}
"#;

#[test]
fn kernel_structures_read_back_what_the_fixture_set() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !have_btf() || !have_event("sys_enter_getsockname") {
        return;
    }
    let Some(comm_at) = pahole_offset("task_struct", "comm") else {
        return;
    };
    let bin = support::c_fixture("kcast.c", "kcast", &[]);
    let (code, out, err) = support::stapxx_c(&bin.display().to_string(), SCRIPT);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let (pid, ppid, _) = report(&out);
    let traced: Vec<&str> = out.lines().filter(|l| !l.starts_with("kcast ")).collect();
    assert_eq!(
        traced,
        [
            format!(
                "task tgid={pid} pid={pid} parent={ppid} comm=kcast comm0={} policy=3 reset_on_fork=1 comm_at={comm_at}",
                b'k'
            ),
            // SS_UNCONNECTED, SOCK_STREAM, AF_INET, TCP_CLOSE.
            "socket state=1 type=1 family=2 sk_state=7 reuse=0 reuseport=1 in_table=1 file_back=1"
                .to_string(),
        ],
        "{out}"
    );
}

/// OpenResty's epoll-et-lt.sxx reads `@cast($event, "epoll_event")->events`
/// in `syscall.epoll_ctl`. With no module, in a probe on a kernel event,
/// stap takes the type from the kernel, and reads with its kernel
/// dereference, which on Linux 5.10 and later (no `set_fs`) refuses the
/// user-space address `$event` is: a read fault, here too. Naming the
/// program as the module reads the program's memory.
#[test]
fn a_kernel_cast_of_a_user_pointer_faults_as_in_stap() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !have_btf() || !have_tree() {
        return;
    }
    let bin = support::c_fixture("kcast.c", "kcast", &[]);
    let script = |module: &str| {
        format!(
            r#"global ets, lts
probe syscall.epoll_ctl {{
  if (pid() == target() && $op == 1) {{
    if (@cast($event, "epoll_event"{module})->events & 0x80000000) ets++ else lts++
  }}
}}
probe end {{ printf("%d ET, %d LT.\n", ets, lts) }}
"#
        )
    };
    let cmd = bin.display().to_string();
    let (code, out, err) = support::stapxx_c(&cmd, &script(""));
    report(&out);
    assert_eq!(
        (code, out.lines().count(), err.as_str()),
        (
            1,
            1,
            "ERROR: kernel memory read fault near identifier '@cast' at <input>:4:9\n\
             WARNING: 1 probe error(s): kernel memory read fault\n\
             WARNING: Number of errors: 1, skipped probes: 0\n"
        ),
        "{out}"
    );
    let (code, out, err) = support::stapxx_c(&cmd, &script(&format!(", \"{cmd}\"")));
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    report(&out);
    assert!(out.ends_with("1 ET, 0 LT.\n"), "{out}");
}

/// Wrong names get the nearest, as for DWARF types; a host probe cannot
/// read kernel memory; kernel variables are not to be had. Exact texts.
#[test]
fn p2_errors_name_the_nearest_and_the_probe_kinds() {
    if !have_btf() {
        return;
    }
    let p2 = |script: &str| {
        let (code, out, err) = support::stapxx(&["-p2", "-e", script]);
        assert_eq!((code, out.as_str()), (1, ""), "{script}\n{err}");
        err
    };
    let caret = |script: &str, col: usize, msg: &str| {
        format!(
            "-e:1:{col}: error: {msg}\n    {script}\n    {}^\n",
            " ".repeat(col - 1)
        )
    };
    for module in [", \"kernel\"", ", \"kernel<linux/list.h>\"", ""] {
        let s = format!(
            r#"probe kernel.trace("sched:sched_switch") {{ println(@cast($prev, "list_head"{module})->nxt) }}"#
        );
        assert_eq!(
            p2(&s),
            caret(
                &s,
                52,
                "struct list_head has no member 'nxt'; nearest: next, prev"
            )
        );
    }
    // (The third nearest name depends on the kernel's task_struct.)
    let s = r#"probe kernel.trace("sched:sched_switch") { println(@cast($prev, "task_struct", "kernel")->real_parent->tgidd) }"#;
    let e = p2(s);
    let (first, rest) = e.split_once('\n').unwrap();
    assert!(
        first.starts_with(
            "-e:1:52: error: struct task_struct has no member 'tgidd'; nearest: tgid, pid, "
        ) && first.matches(", ").count() == 2,
        "{e}"
    );
    assert_eq!(rest, caret(s, 52, "").split_once('\n').unwrap().1);
    let s = r#"probe kernel.trace("sched:sched_switch") { println(&@cast($prev, "task_struct", "kernel")->sched_reset_on_fork) }"#;
    assert_eq!(
        p2(s),
        caret(
            s,
            52,
            "cannot take the address of bitfield 'sched_reset_on_fork' (type unsigned int)"
        )
    );
    // A type the kernel lacks, and one with no module (a user-space type
    // meant, the module forgotten).
    let s = r#"probe kernel.trace("sched:sched_switch") { println(@cast($prev, "list_heda", "kernel")->next) }"#;
    let e = p2(s);
    assert!(
        e.starts_with("-e:1:52: error: type 'list_heda' not found in /sys/kernel/btf/vmlinux; nearest: list_head, "),
        "{e}"
    );
    let s =
        r#"probe kernel.trace("sched:sched_switch") { println(@cast($prev, "lua_State")->top) }"#;
    let e = p2(s);
    assert!(
        e.starts_with("-e:1:52: error: type 'lua_State' not found in /sys/kernel/btf/vmlinux; nearest: ")
            && e.lines().next().unwrap().ends_with(
                " (a @cast with no module in a probe on a kernel event names a kernel type, as in stap: name the executable or library for a user-space type)"
            ),
        "{e}"
    );
    // Host probes run in stapxx-rs: no kernel memory there.
    for point in ["begin", "timer.s(1)"] {
        let s = format!(r#"probe {point} {{ println(@cast(0, "list_head", "kernel")->next) }}"#);
        assert_eq!(
            p2(&s),
            caret(
                &s,
                point.len() + 18,
                "@cast to kernel type 'list_head' reads kernel memory, which begin, end, error and timer.s/ms/us/ns/hz/jiffies probes cannot: stapxx-rs runs them in user space (it loads no kernel module)"
            ) + "note: read it in a kernel probe (kernel.trace, syscall.*, timer.profile, perf.*, a process probe) and keep the value in a global\n"
        );
    }
    let s = r#"probe timer.profile { println(&@var("socket_file_ops@net/socket.c", "kernel")) }"#;
    assert_eq!(
        p2(s),
        caret(
            s,
            31,
            "the kernel's variables are not available to @var: its BTF describes no global variables (only per-CPU ones), and /proc/kallsyms has data symbols only on kernels built with CONFIG_KALLSYMS_ALL (kernel types are: @cast(p, \"T\", \"kernel\"))"
        )
    );
}

/// What needs no kernel memory works in host probes too: offsets
/// (`&@cast(0, ...)->m`) and `@defined`.
#[test]
fn host_probes_take_kernel_offsets() {
    if !have_btf() {
        return;
    }
    let Some(comm) = pahole_offset("task_struct", "comm") else {
        return;
    };
    let (code, out, err) = support::stapxx(&[
        "-e",
        r#"probe begin { printf("%d %d %d %d\n", &@cast(0, "list_head", "kernel")->prev, &@cast(0, "task_struct", "kernel")->comm, @defined(@cast(0, "list_head", "kernel")->nope), @defined(@cast(0, "list_head", "kernel")->next)); exit() }"#,
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, format!("8 {comm} 0 1\n"));
}

/// `-p2` and `-p3` of kernel casts in a tracepoint probe, the kernel's
/// offsets named by what pahole says they are (a number left where one
/// is added to a task pointer is one pahole disagrees with). `task_struct`
/// members only: their offsets are large enough not to be mistaken for
/// the program's own constants.
#[test]
fn listings_of_kernel_casts() {
    if !have_btf() {
        return;
    }
    let named: Vec<(String, u64)> = ["real_parent", "tgid", "pid", "comm", "sched_reset_on_fork"]
        .iter()
        .filter_map(|m| Some((format!("task_struct.{m}"), pahole_offset("task_struct", m)?)))
        .collect();
    if named.len() < 5 {
        return;
    }
    // Where the listings show an offset: `t + N)` (-p2), `l0 Add N)` (the
    // IR), `rK = N` (the BPF immediate).
    let name = |text: String| {
        let mut t = text;
        for (n, off) in &named {
            t = t
                .replace(&format!("+ {off})"), &format!("+ {n})"))
                .replace(&format!("Add {off})"), &format!("Add {n})"));
            for k in 0..10 {
                t = t.replace(&format!(": r{k} = {off}\n"), &format!(": r{k} = {n}\n"));
            }
        }
        t
    };
    let script = r#"probe kernel.trace("sched:sched_process_fork") {
  t = task_current()
  printf("%d %s %d %d\n", @cast(t, "task_struct", "kernel")->real_parent->tgid,
    kernel_string(@cast(t, "task_struct")->comm),
    @cast(t, "task_struct", "kernel<linux/sched.h>")->sched_reset_on_fork,
    @cast(t, "task_struct", "kernel")->comm[$child->pid % 3])
}
"#;
    let mut text = String::new();
    for pass in ["-p2", "-p3"] {
        let (code, out, err) = support::stapxx(&[pass, "-e", script]);
        assert_eq!(code, 0, "{err}");
        text.push_str(&format!("--- {pass}\n{}", name(out)));
    }
    insta::assert_snapshot!(text);
}
