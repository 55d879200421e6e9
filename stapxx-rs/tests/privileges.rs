//! The privileges each probe kind needs, for real: stapxx-rs run by root
//! with its capabilities cut down by `setpriv` (util-linux), and by an
//! unprivileged user. Either the script runs (exact output), or the
//! preflight names the missing capability and the probe point before
//! anything is loaded (exact message).

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `setpriv` as root keeping only `caps` (names as setpriv spells them):
/// the bounding set is cut too, so exec cannot give root's full set back.
fn with_caps(caps: &[&str]) -> Command {
    let set: String = std::iter::once("-all".to_string())
        .chain(caps.iter().map(|c| format!("+{c}")))
        .collect::<Vec<_>>()
        .join(",");
    let mut c = Command::new("setpriv");
    c.arg(format!("--inh-caps={set}"))
        .arg(format!("--ambient-caps={set}"))
        .arg(format!("--bounding-set={set}"))
        .arg(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(support::workspace_root());
    c
}

/// (status, stdout, stderr) of `cmd`.
fn output(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run setpriv");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `cmd` to its end: status 0, exactly `want` on stdout, and none of
/// its BPF objects left behind.
fn succeeds(cmd: &mut Command, want: &str) {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stdout)),
        (Some(0), want.into()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    support::assert_no_bpf_leftovers(pid);
}

/// The BPF tests' lock, and setpriv; `None` when the test cannot run.
fn ready() -> Option<std::sync::MutexGuard<'static, ()>> {
    let serial = support::need_bpf()?;
    if !support::have_tool("setpriv") {
        support::missing("setpriv (util-linux)");
        return None;
    }
    Some(serial)
}

fn getppid_fixture() -> PathBuf {
    support::c_fixture("getppid.c", "getppid", &["-g", "-O0"])
}

/// Counts the target's getppid() calls from a uprobe on `tick`.
fn uprobe_script(bin: &Path) -> String {
    format!(
        "global n\n\
         probe process(\"{}\").function(\"tick\") {{ if (pid() == target()) n++ }}\n\
         probe end {{ printf(\"ticks %d\\n\", n) }}\n",
        bin.display()
    )
}

/// Counts the same calls from the syscall's tracepoint (the program's own:
/// the session's child may call getppid() before it execs the program).
const TRACEPOINT_SCRIPT: &str = "global n\n\
     probe kernel.trace(\"syscalls:sys_enter_getppid\") { if (pid() == target() && execname() == \"getppid\") n++ }\n\
     probe end { printf(\"getppid %d\\n\", n) }\n";

/// Takes CPU-clock samples while one CPU is kept busy.
const PROFILE_SCRIPT: &str = "global n\n\
     probe timer.profile { n++ }\n\
     probe timer.ms(300) { exit() }\n\
     probe end { printf(\"sampled %s\\n\", n > 0 ? \"yes\" : \"no\") }\n";

fn uprobe_lacks_sys_admin(bin: &Path, has: &str) -> String {
    let point = format!("process(\"{}\").function(\"tick\")", bin.display());
    format!(
        "-e:2:7: error: probe point '{point}' is a uprobe: it needs CAP_SYS_ADMIN (the kernel \
         creates uprobes for CAP_SYS_ADMIN only: CAP_BPF and CAP_PERFMON are not enough); this \
         process lacks CAP_SYS_ADMIN\n    \
         probe {point} {{ if (pid() == target()) n++ }}\n          ^\n\
         note: this process has {has}\n\
         note: the whole script needs CAP_SYS_ADMIN: run it as root, or with that capability \
         (e.g. setcap cap_sys_admin+ep on the stapxx-rs binary)\n"
    )
}

#[test]
fn uprobes_need_cap_sys_admin() {
    let Some(_serial) = ready() else {
        return;
    };
    let bin = getppid_fixture();
    let script = uprobe_script(&bin);
    let cmd = format!("{} 7", bin.display());
    // CAP_BPF and CAP_PERFMON load the program, but the kernel's uprobe
    // PMU refuses them: the preflight says so before loading.
    let (code, out, err) = output(with_caps(&["bpf", "perfmon"]).args(["-c", &cmd, "-e", &script]));
    assert_eq!(
        (code, out.as_str(), err),
        (1, "", uprobe_lacks_sys_admin(&bin, "CAP_BPF, CAP_PERFMON"))
    );
    // -p4 only loads: CAP_BPF and CAP_PERFMON are enough for that.
    let (code, out, err) = output(with_caps(&["bpf", "perfmon"]).args(["-p4", "-e", &script]));
    assert_eq!(code, 0, "{err}");
    let n = out
        .strip_prefix("stx_p0: verified, ")
        .and_then(|r| r.strip_suffix(" instructions\n"))
        .and_then(|n| n.parse::<u32>().ok());
    assert!(n.is_some_and(|n| n > 0), "{out}");
    // CAP_SYS_ADMIN alone does everything (it passes the CAP_BPF and
    // CAP_PERFMON checks too).
    succeeds(
        with_caps(&["sys_admin"]).args(["-c", &cmd, "-e", &script]),
        "ticks 7\n",
    );
}

#[test]
fn tracepoints_need_cap_bpf_and_cap_perfmon() {
    let Some(_serial) = ready() else {
        return;
    };
    let bin = getppid_fixture();
    let cmd = format!("{} 5", bin.display());
    let (code, out, err) = output(with_caps(&["bpf"]).args(["-c", &cmd, "-e", TRACEPOINT_SCRIPT]));
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            1,
            "",
            "-e:2:7: error: probe point 'kernel.trace(\"syscalls:sys_enter_getppid\")' is a \
             tracepoint: it needs CAP_BPF and CAP_PERFMON; this process lacks CAP_PERFMON\n    \
             probe kernel.trace(\"syscalls:sys_enter_getppid\") { if (pid() == target() && execname() == \"getppid\") n++ }\n          ^\n\
             note: this process has CAP_BPF\n\
             note: the whole script needs CAP_BPF and CAP_PERFMON: run it as root, or with those \
             capabilities (e.g. setcap cap_bpf,cap_perfmon+ep on the stapxx-rs binary)\n"
        )
    );
    // As root (tracefs is root's) those two are all it takes.
    succeeds(
        with_caps(&["bpf", "perfmon"]).args(["-c", &cmd, "-e", TRACEPOINT_SCRIPT]),
        "getppid 5\n",
    );
}

#[test]
fn timer_profile_needs_cap_bpf_and_cap_perfmon() {
    let Some(_serial) = ready() else {
        return;
    };
    let (code, out, err) = output(with_caps(&[]).args(["-e", PROFILE_SCRIPT]));
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            1,
            "",
            "-e:2:7: error: probe point 'timer.profile' is a perf event: it needs CAP_BPF and \
             CAP_PERFMON; this process lacks CAP_BPF and CAP_PERFMON\n    \
             probe timer.profile { n++ }\n          ^\n\
             note: this process has none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYSLOG, \
             CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH\n\
             note: the whole script needs CAP_BPF and CAP_PERFMON: run it as root, or with those \
             capabilities (e.g. setcap cap_bpf,cap_perfmon+ep on the stapxx-rs binary)\n"
        )
    );
    // An idle CPU takes no ticks (tickless idle): keep one busy.
    let busy = support::busy_cpus(1);
    succeeds(
        with_caps(&["bpf", "perfmon"]).args(["-e", PROFILE_SCRIPT]),
        "sampled yes\n",
    );
    drop(busy);
}

#[test]
fn host_probes_need_no_privilege() {
    let Some(_serial) = ready() else {
        return;
    };
    let (code, out, err) = output(with_caps(&[]).args([
        "-e",
        "probe begin { printf(\"begin\\n\") } probe timer.ms(20) { printf(\"tick\\n\"); exit() }",
    ]));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "begin\ntick\n", ""));
}

/// A copy of the binary an unprivileged user may run (the build tree may
/// not be open to others).
fn public_binary() -> PathBuf {
    let dir = support::scratch().join("public");
    std::fs::create_dir_all(&dir).unwrap();
    for d in [
        support::scratch().parent().unwrap(),
        support::scratch(),
        &dir,
    ] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let bin = dir.join("stapxx-rs");
    if !bin.exists() {
        std::fs::copy(env!("CARGO_BIN_EXE_stapxx-rs"), &bin).unwrap();
    }
    bin
}

#[test]
fn an_unprivileged_user_is_told_about_tracefs() {
    let Some(_serial) = ready() else {
        return;
    };
    let bin = public_binary();
    let tracefs = Path::new("/sys/kernel/tracing");
    let meta = std::fs::metadata(tracefs).unwrap();
    let (code, out, err) = output(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(&bin)
            .args(["-e", TRACEPOINT_SCRIPT])
            .current_dir(bin.parent().unwrap()),
    );
    let others_may_search = meta.mode() & 0o005 == 0o005;
    let want = if others_may_search {
        // A tracefs open to everyone: the capabilities are what is missing.
        "-e:2:7: error: probe point 'kernel.trace(\"syscalls:sys_enter_getppid\")' is a \
         tracepoint: it needs CAP_BPF and CAP_PERFMON; this process lacks CAP_BPF and CAP_PERFMON\n"
            .to_string()
    } else {
        format!(
            "-e:2:7: error: probe point 'kernel.trace(\"syscalls:sys_enter_getppid\")': \
             tracepoints need tracefs, and this process may not read /sys/kernel/tracing \
             (mode {:o}, owner uid {}): run as its owner, or with CAP_DAC_READ_SEARCH; loading \
             them also needs CAP_BPF and CAP_PERFMON, which this process lacks too\n    \
             probe kernel.trace(\"syscalls:sys_enter_getppid\") {{ if (pid() == target() && execname() == \"getppid\") n++ }}\n          ^\n",
            meta.mode() & 0o7777,
            meta.uid()
        )
    };
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "");
    assert!(err.starts_with(&want), "got:\n{err}\nwant:\n{want}");
}
