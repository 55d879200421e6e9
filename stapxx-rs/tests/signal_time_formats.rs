//! `ctime()` and the signal-set formatters (`_stp_sigset_u`,
//! `_stp_sigmask_str`, `_sigprocmask_how_str`, `_sighandler_str`) that
//! SystemTap's tapsets write in embedded C and our bundled
//! `tapsets/linux/ctime.stp` and `signal_formats.stp` serve in the script
//! language: the same text as stap's C, on the host and in the kernel.

mod support;

/// Each expression with what stap prints for it (dates checked against
/// the C library's `asctime(gmtime())`; out-of-range times are stap's
/// errors, caught).
const CASES: &[(&str, &str)] = &[
    ("ctime(0)", "Thu Jan  1 00:00:00 1970"),
    ("ctime(1234567890)", "Fri Feb 13 23:31:30 2009"),
    // Leap days: a year divisible by 400, by 4, and a recent one.
    ("ctime(951782400)", "Tue Feb 29 00:00:00 2000"),
    ("ctime(68169600)", "Tue Feb 29 00:00:00 1972"),
    ("ctime(1709210096)", "Thu Feb 29 12:34:56 2024"),
    ("ctime(951868799)", "Tue Feb 29 23:59:59 2000"),
    ("ctime(-1)", "Wed Dec 31 23:59:59 1969"),
    ("ctime(-86400)", "Wed Dec 31 00:00:00 1969"),
    ("ctime(-2147483648)", "Fri Dec 13 20:45:52 1901"),
    ("ctime(2147483647)", "Tue Jan 19 03:14:07 2038"),
    ("strlen(ctime())", "24"),
    (
        "ctime(2147483648)",
        "error: Time too far in the future to be converted",
    ),
    (
        "ctime(-2147483649)",
        "error: Time too far in the past to be converted",
    ),
    ("_stp_sigmask_str(0)", "[EMPTY]"),
    // Only signals stap's table names: SIGSTKFLT (16), real-time ones not.
    ("_stp_sigmask_str(0x8000 | 1 << 40)", "[EMPTY]"),
    ("_stp_sigmask_str(0x4003)", "[SIGHUP|SIGINT|SIGTERM]"),
    // The table's order, not the numbers': SIGPIPE (13) before SIGUSR2 (12).
    ("_stp_sigmask_str(0x1800)", "[SIGPIPE|SIGUSR2]"),
    (
        "_stp_sigmask_str(-1)",
        "[SIGHUP|SIGINT|SIGQUIT|SIGILL|SIGTRAP|SIGABRT|SIGBUS|SIGFPE|SIGKILL|\
         SIGUSR1|SIGSEGV|SIGPIPE|SIGUSR2|SIGALRM|SIGTERM|SIGCHLD|SIGCONT|SIGSTOP|\
         SIGTSTP|SIGTTIN|SIGTTOU|SIGURG|SIGXCPU|SIGXFSZ|SIGVTALRM|SIGPROF|\
         SIGWINCH|SIGIO/SIGPOLL|SIGPWR|SIGSYS]",
    ),
    ("_stp_sigset_u(0)", "NULL"),
    ("_stp_sigset_u(8)", "0x8"),
    ("_stp_compat_sigset_u(0)", "NULL"),
    ("_sigprocmask_how_str(0)", "SIG_BLOCK"),
    ("_sigprocmask_how_str(1)", "SIG_UNBLOCK"),
    ("_sigprocmask_how_str(2)", "SIG_SETMASK"),
    ("_sigprocmask_how_str(7)", "0x7"),
    ("_sigprocmask_how_str(-1)", "0xffffffffffffffff"),
    ("_sighandler_str(0)", "SIG_DFL"),
    ("_sighandler_str(1)", "SIG_IGN"),
    ("_sighandler_str(4096)", "0x1000"),
    ("_struct_utimbuf_actime(0)", "0"),
    ("_struct_compat_utimbuf_modtime(8)", "0"),
];

/// Statements storing case i's text in `out[i]` ("error: MSG" when it
/// raises one).
fn cases_script() -> String {
    CASES
        .iter()
        .enumerate()
        .map(|(i, (expr, _))| {
            format!("  try {{ out[{i}] = sprint({expr}) }} catch (e) {{ out[{i}] = \"error: \" . e }}\n")
        })
        .collect()
}

fn expected() -> String {
    CASES
        .iter()
        .enumerate()
        .map(|(i, (_, want))| format!("{i} {want}\n"))
        .collect()
}

const PRINT: &str = "probe end { for (i = 0; i < %N%; i++) printf(\"%d %s\\n\", i, out[i]) }\n";

fn script(probe: &str) -> String {
    format!(
        "global out[64]\nprobe {probe} {{\n{}  exit()\n}}\n{}",
        cases_script(),
        PRINT.replace("%N%", &CASES.len().to_string())
    )
}

#[test]
fn ctime_and_signal_formatters_print_as_stap_on_the_host() {
    let (code, out, err) = support::stapxx(&["-e", &script("begin")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, expected());
}

#[test]
fn ctime_and_signal_formatters_print_as_stap_in_the_kernel() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    // One probe (one BPF program) per case keeps each program small; the
    // last exits once every case has stored its text. Every CPU's tick
    // may run a probe more than once before exit() takes hold; each run
    // stores the same text, which `end` prints once.
    let n = CASES.len();
    let mut script = String::from("global out[64]\n");
    for (i, (expr, _)) in CASES.iter().enumerate() {
        script.push_str(&format!(
            "probe timer.profile {{ try {{ out[{i}] = sprint({expr}) }} catch (e) {{ out[{i}] = \"error: \" . e }} }}\n"
        ));
    }
    script.push_str(&format!(
        "probe timer.profile {{\n  for (i = 0; i < {n}; i++)\n    if (!(i in out)) next\n  exit()\n}}\n"
    ));
    script.push_str(&PRINT.replace("%N%", &n.to_string()));
    let (code, out, err) = support::stapxx(&["-e", &script]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, expected());
}
