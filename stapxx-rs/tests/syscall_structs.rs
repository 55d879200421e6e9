//! The struct and flag formatters of SystemTap's syscall tapsets that are
//! embedded C there and served by our own `tapsets/linux/syscall_formats.stp`
//! (`_struct_timespec_u`, `_struct_timeval_u` and their 32-bit forms,
//! `_access_mode_str`, `_sched_policy_str`, `__sem_flags`, `_semctl_cmd`,
//! `__fork_flags`, `_msg_flags_str`, ...), and the value tables the
//! recogniser finds inside a function's own C (`_stp_clock_nanosleep_flags_str`).
//!
//! The C fixture (`tests/fixtures/sysfmt.c`) makes calls with known
//! structs and flags; an strace-like script over the tree's `syscall.NAME`
//! aliases must print for them what stap's C formatters print (their
//! formats read from `linux/aux_syscalls.stp` and the runtime's
//! `_stp_lookup_str`/`_stp_lookup_or_str`).

mod support;

fn have_tree() -> bool {
    let ok = std::path::Path::new("/usr/share/systemtap/tapset/linux/aux_syscalls.stp").exists();
    if !ok {
        support::missing("SystemTap's tapset tree (systemtap-common)");
    }
    ok
}

const STRACE: &str = r#"
probe syscall.nanosleep, syscall.clock_nanosleep, syscall.utimensat, syscall.select,
      syscall.pselect6, syscall.access, syscall.sched_get_priority_max,
      syscall.sched_get_priority_min, syscall.semget, syscall.semctl, syscall.unshare {
  if (pid() != target()) next
  printf("%s(%s)\n", name, argstr)
  // The same memory read with the 32-bit layouts (two s32 per struct).
  if (name == "utimensat" && tsp_uaddr)
    printf("compat %s %s\n", _struct_compat_timespec_u(tsp_uaddr, 2),
           _struct_compat_timespec_u(tsp_uaddr, 3))
  if (name == "select")
    printf("compat %s %s\n", _struct_compat_timeval_u(timeout_uaddr, 2),
           _struct_compat_timeval_u(timeout_uaddr, 1))
}
"#;

#[test]
fn struct_and_flag_arguments_print_as_stap_prints_them() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !have_tree() {
        return;
    }
    for opt in ["-O0", "-O2"] {
        let bin = support::c_fixture("sysfmt.c", &format!("sysfmt{opt}"), &[opt]);
        let (code, out, err) = support::stapxx_c(&bin.display().to_string(), STRACE);
        assert_eq!(code, 0, "{opt}: {err}");
        let report = out
            .lines()
            .find_map(|l| l.strip_prefix("bad "))
            .unwrap_or_else(|| panic!("no report line in:\n{out}"));
        let (bad, sem) = report.split_once(" sem ").expect("bad ADDR sem ID");
        // The shell that -c starts makes calls of its own (access()) first.
        let first = out
            .lines()
            .position(|l| l.starts_with("nanosleep("))
            .unwrap_or_else(|| panic!("{opt}: no nanosleep in:\n{out}"));
        let traced: Vec<&str> = out
            .lines()
            .skip(first)
            .filter(|l| !l.starts_with("bad "))
            .collect();
        let missing = "\"/nonexistent/stapxx-rs\"";
        assert_eq!(
            traced,
            [
                "nanosleep([0.000001000], 0x0)".to_string(),
                "clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, [0.000000000], 0x0)".into(),
                format!("utimensat(AT_FDCWD, {missing}, [5.000000006][UTIME_OMIT], 0x0)"),
                "compat [5.000000000][6.000000000] NULL".into(),
                format!(
                    "utimensat(AT_FDCWD, {missing}, [UTIME_NOW][0.000000000], AT_SYMLINK_NOFOLLOW)"
                ),
                "compat [1.000000000][1073741823.000000000] NULL".into(),
                "select(0, 0x0, 0x0, 0x0, [0.000500])".into(),
                "compat [0.000000][500.000000] [0.000000]".into(),
                "pselect6(0, 0x0, 0x0, 0x0, [0.000002000], 0x0)".into(),
                // Unreadable memory: its address, as stap prints it.
                format!("nanosleep({bad}, 0x0)"),
                format!("access({missing}, R_OK|W_OK)"),
                "sched_get_priority_max(SCHED_FIFO)".into(),
                "sched_get_priority_min(SCHED_RESET_ON_FORK|SCHED_RR)".into(),
                "semget(IPC_PRIVATE, 1, IPC_CREAT|IPC_EXCL|0600)".into(),
                format!("semctl({sem}, 0, IPC_RMID, 0x0)"),
                "unshare(0x0)".into(),
            ],
            "{opt}: {out}"
        );
    }
}

/// The flag formatters and the NULL cases, run by the host (`begin`):
/// the same script functions, so the same text as in the kernel.
#[test]
fn flag_formatters_print_as_stap_on_the_host() {
    if !have_tree() {
        return;
    }
    let script = r#"probe begin {
  println(_access_mode_str(0), " ", _access_mode_str(6), " ", _access_mode_str(0x11))
  println(_sched_policy_str(0), " ", _sched_policy_str(0x40000001), " ", _sched_policy_str(-1), " ", _sched_policy_str(4))
  println(_semctl_cmd(0), " ", _semctl_cmd(0x102), " ", _semctl_cmd(99))
  println(__fork_flags(0), " ", __fork_flags(0x1200011), " ", __fork_flags(0x85), " ", __fork_flags(0x10000900))
  println("[", __sem_flags(0), "] ", __sem_flags(01600), " ", __sem_flags(03000 | 04000), " ", __sem_flags(0644))
  println(_msg_flags_str(0), " ", _msg_flags_str(0x80000040), " ", _msg_flags_str(0x4002), " ", _msg_flags_str(0x210))
  println(_struct_timespec_u(0, 1), " ", _struct_timespec_u(8, 3), " ", _struct_compat_timespec_u(8, 0), " ",
          _struct_timeval_u(0, 2), " ", _struct_compat_timeval_u(0, 1), " ", _struct_rlimit_u(0), " ",
          _struct_itimerspec_u(0), " ", _struct_itimerval_u(0), " ", _struct_timezone_u(0))
  println(_stp_clock_nanosleep_flags_str(0), " ", _stp_clock_nanosleep_flags_str(1), " ",
          _opoll_op_str(1), " ", _opoll_op_str(3), " ", _opoll_op_str(9))
  exit()
}"#;
    let (code, out, err) = support::stapxx(&["-e", script]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "F_OK R_OK|W_OK X_OK|0x10\n\
         SCHED_OTHER SCHED_RESET_ON_FORK|SCHED_FIFO 0xffffffff 0x4\n\
         IPC_RMID IPC_64|IPC_STAT 0x63\n\
         0x0 CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD 0x0|TRACESYSGOOD CLONE_VM|CLONE_SIGHAND|CLONE_NEWUSER\n\
         [] IPC_CREAT|0600 IPC_CREAT|IPC_EXCL|0x800 0644\n\
         0x0 MSG_DONTWAIT MSG_PEEK|MSG_NOSIGNAL MSG_PROBE|MSG_FIN\n\
         NULL NULL NULL NULL NULL NULL NULL NULL NULL\n\
         0x0 TIMER_ABSTIME EPOLL_CTL_ADD EPOLL_CTL_MOD 0x9\n"
    );
}

/// Names of the bundled tables the constants data does not hold: glibc's
/// access modes (the kernel's MAY_* in stap's table), SCHED_OTHER (the
/// headers' SCHED_NORMAL), and the kernel-only MSG_PROBE and MSG_EOF.
const UNKNOWN: &[&str] = &[
    "F_OK",
    "R_OK",
    "W_OK",
    "X_OK",
    "SCHED_OTHER",
    "MSG_PROBE",
    "MSG_EOF",
];

/// The value tables written in `syscall_formats.stp` agree with the
/// constants data (the x86-64 headers) for every name the data has.
#[test]
fn bundled_tables_agree_with_the_headers() {
    let root = support::workspace_root();
    let text = std::fs::read_to_string(root.join("tapsets/linux/syscall_formats.stp")).unwrap();
    let consts = std::fs::read_to_string(root.join("stapxx-rs/data/constants.tsv")).unwrap();
    let value = |name: &str| {
        consts.lines().find_map(|l| {
            let (n, v) = l.split_once('\t')?;
            (n == name).then(|| v.parse::<i64>().unwrap())
        })
    };
    let table = regex::Regex::new(r#""((?:\w+=\d+;)*\w+=\d+)""#).unwrap();
    let (mut checked, mut unknown) = (0, Vec::new());
    for t in table.captures_iter(&text) {
        for e in t[1].split(';') {
            let (name, v) = e.split_once('=').unwrap();
            match value(name) {
                Some(want) => {
                    assert_eq!(v.parse::<i64>().unwrap(), want, "{name}");
                    checked += 1;
                }
                None => unknown.push(name.to_string()),
            }
        }
    }
    // Kernel-only names and user-space names the data does not hold
    // (stap's tables name the kernel's MAY_* as R_OK...).
    assert_eq!(checked, 59);
    assert_eq!(unknown, UNKNOWN);
}
