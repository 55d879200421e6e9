//! A system call's own parameters as target variables in the probes of
//! SystemTap's syscall aliases (the installed tree), as stap reads them
//! from the kernel function's DWARF: `$op` in `syscall.epoll_ctl`, `$fd`
//! (its value at entry) and `$return` in `syscall.close.return`. Here the
//! aliases end on the raw `sys_enter`/`sys_exit` tracepoints, so the names
//! and C types come from `syscalls/sys_enter_NAME/format` and the values
//! from the registers the call passed them in. The C fixture
//! (`tests/fixtures/sysparams.c`) makes calls with known parameters.

mod support;

fn have_tree() -> bool {
    let ok = std::path::Path::new("/usr/share/systemtap/tapset/linux/sysc_epoll_ctl.stp").exists();
    if !ok {
        support::missing("SystemTap's tapset tree (systemtap-common)");
    }
    ok
}

fn have_tracefs() -> bool {
    let ok = std::path::Path::new("/sys/kernel/tracing/events/syscalls/sys_enter_close").exists();
    if !ok {
        support::missing("tracefs at /sys/kernel/tracing with the syscalls events");
    }
    ok
}

/// Every probe filters on the fixture's pid; `-c` runs it through a shell
/// that makes calls of its own (dup2, close) before it execs the fixture,
/// so the test reads from the fixture's first call (epoll_create1) on.
/// `syscall.epoll_create` ends on epoll_create1's tracepoint variant, so
/// its `$flags` are epoll_create1's; `tp_syscall.dup2` is the tree's
/// tracepoint variant named directly.
const SCRIPT: &str = r#"
probe syscall.epoll_create {
  if (pid() == target()) printf("epoll_create1 flags=0x%x\n", $flags)
}
probe tp_syscall.dup2 {
  if (pid() == target()) printf("dup2 oldfd=%d newfd=%d\n", $oldfd, $newfd)
}
probe syscall.epoll_ctl {
  if (pid() == target())
    printf("epoll_ctl epfd=%d op=%d fd=%d event=0x%x events=0x%x\n",
           $epfd, $op, $fd, $event, $event ? user_uint32($event) : 0)
}
probe syscall.epoll_ctl.return {
  if (pid() == target()) printf("epoll_ctl op=%d = %d (%s)\n", $op, $return, $$parms)
}
probe syscall.write {
  if (pid() == target() && $fd == 101)
    printf("write fd=%d buf=\"%s\" count=%d\n", $fd, user_string_n($buf, $count), $count)
}
probe syscall.close.return {
  if (pid() == target()) printf("close fd=%d = %d\n", $fd, $return)
}
"#;

#[test]
fn parameters_are_the_values_the_calls_were_made_with() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !have_tree() {
        return;
    }
    let bin = support::c_fixture("sysparams.c", "sysparams-O2", &["-O2"]);
    let (code, out, err) = support::stapxx_c(&bin.display().to_string(), SCRIPT);
    assert_eq!(code, 0, "{err}");
    // The fixture's report: "ep EP pipe P0 P1 ev ADDR".
    let report: Vec<&str> = out
        .lines()
        .find_map(|l| l.strip_prefix("ep "))
        .unwrap_or_else(|| panic!("no report line in:\n{out}"))
        .split(' ')
        .collect();
    let (ep, p0, p1, ev) = (report[0], report[2], report[3], report[5]);
    // `$$parms` prints in hex.
    let ep_hex = format!("{:x}", ep.parse::<u32>().unwrap());
    let start = out
        .find("epoll_create1 ")
        .unwrap_or_else(|| panic!("no epoll_create1 in:\n{out}"));
    let traced: Vec<&str> = out[start..]
        .lines()
        .filter(|l| !l.starts_with("ep "))
        .collect();
    let want = [
        "epoll_create1 flags=0x80000".to_string(),
        format!("dup2 oldfd={p0} newfd=100"),
        format!("dup2 oldfd={p1} newfd=101"),
        format!("close fd={p0} = 0"),
        format!("close fd={p1} = 0"),
        format!("epoll_ctl epfd={ep} op=1 fd=100 event={ev} events=0x1"),
        format!("epoll_ctl op=1 = 0 (epfd=0x{ep_hex} op=0x1 fd=0x64 event={ev})"),
        format!("epoll_ctl epfd={ep} op=3 fd=100 event={ev} events=0x80000001"),
        format!("epoll_ctl op=3 = 0 (epfd=0x{ep_hex} op=0x3 fd=0x64 event={ev})"),
        format!("epoll_ctl epfd={ep} op=2 fd=100 event=0x0 events=0x0"),
        format!("epoll_ctl op=2 = 0 (epfd=0x{ep_hex} op=0x2 fd=0x64 event=0x0)"),
        "write fd=101 buf=\"stapxx\" count=6".to_string(),
        "close fd=101 = 0".to_string(),
        "close fd=100 = 0".to_string(),
        format!("close fd={ep} = 0"),
        // close's fd is an `unsigned int`, as in stap.
        "close fd=4294967295 = -9".to_string(),
    ];
    assert_eq!(traced, want, "{out}");
}

/// `-p2` errors, exact: a wrong name lists the event's own variables and
/// the call's parameters, with the nearest.
#[test]
fn wrong_names_get_the_nearest_of_the_call_s_parameters() {
    if !have_tree() || !have_tracefs() {
        return;
    }
    let cases = [
        (
            "probe syscall.epoll_ctl { println($opp) }",
            "-e:1:35: error: tracepoint raw_syscalls:sys_enter has no variable '$opp' (nearest: op, epfd, fd; it has $regs $id, and system call epoll_ctl's parameters $epfd $op $fd $event)\n    probe syscall.epoll_ctl { println($opp) }\n                                      ^\n",
        ),
        (
            "probe syscall.close.return { println($fdd) }",
            "-e:1:38: error: tracepoint raw_syscalls:sys_exit has no variable '$fdd' (nearest: fd, ret, regs; it has $regs $ret $return, and system call close's parameters $fd)\n    probe syscall.close.return { println($fdd) }\n                                         ^\n",
        ),
        (
            "probe syscall.close { println($return) }",
            "-e:1:31: error: '$return' is only available in .return probes (system call close)\n    probe syscall.close { println($return) }\n                                  ^\n",
        ),
        (
            "probe syscall.close { println($fd->x) }",
            "-e:1:31: error: '$fd' of close(fd) is a system call parameter (unsigned int): it has no type to follow; use @cast\n    probe syscall.close { println($fd->x) }\n                                  ^\n",
        ),
    ];
    for (script, want) in cases {
        let (code, out, err) = support::stapxx(&["-p2", "-e", script]);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (1, "", want),
            "{script}"
        );
    }
}
