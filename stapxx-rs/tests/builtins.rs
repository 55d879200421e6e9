//! `-p2` and `-p3` of every builtin of `stapxx::ir::builtins` as insta
//! snapshots, one file per name (`snapshots/builtins__NAME.snap`): a call
//! with arguments of its signature, in a kernel probe (`timer.profile`)
//! and in a host probe (`begin`, also run: the host refuses some builtins
//! only when it runs them). A builtin one side refuses shows the refusal
//! there. One file per builtin keeps a change reviewable: the
//! file names the builtin whose code changed, and the coverage test
//! below is a check of file names.
//!
//! Some kernel code is built from facts of this machine, read when the
//! programs are built; those are masked here so that the snapshots hold
//! on any machine (see [`mask`]). No root needed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stapxx::ir::builtins::{Builtin, Signature, FORMATTERS, STRINGIFIERS};
use stapxx::ir::Ty;

/// An argument of type `ty` for position `i` of `name`: literals, with
/// values the builtin accepts where it checks them.
fn arg(name: &str, i: usize, ty: Option<Ty>) -> String {
    match (name, i) {
        ("u_register", 0) => return "\"rdi\"".into(),
        // The host probe runs it: a command that does nothing.
        ("system", 0) => return "\"true\"".into(),
        ("strtol", 0) => return "\"17\"".into(),
        ("strtol", 1) => return "10".into(),
        ("substr", 1) => return "1".into(),
        ("substr", 2) => return "3".into(),
        ("printd", 0) | ("printdln", 0) => return "\",\"".into(),
        // int_arg(2): argument 2, sign-extended from 32 bits.
        ("_stp_arg2", 0) => return "2".into(),
        ("_stp_arg2", 1 | 2) => return "1".into(),
        ("_stp_arg2", 3) => return "0".into(),
        ("__int32" | "__short" | "_stp_sign_extend8", 0) => return "0x1ff80".into(),
        _ => {}
    }
    match ty {
        Some(Ty::Str) => "\"stapxx\"".into(),
        // Longs, and arguments of any type.
        _ => "4096".into(),
    }
}

/// The statement calling `name`: `g = name(...)` when it has a value.
fn call(name: &str) -> String {
    if FORMATTERS.contains(&name) {
        let c = format!("{name}(\"%d %s\\n\", 4096, \"stapxx\")");
        return if name == "sprintf" {
            format!("g = {c}")
        } else {
            c
        };
    }
    if STRINGIFIERS.contains(&name) {
        return format!("g = {name}(4096, \"stapxx\")");
    }
    let b = Builtin::from_name(name).unwrap_or_else(|| panic!("{name} is not a builtin"));
    let Signature {
        args,
        variadic,
        ret,
        ..
    } = b.signature();
    // Every argument, optional ones too; one more for a variadic builtin.
    let mut a: Vec<String> = args
        .iter()
        .enumerate()
        .map(|(i, t)| arg(name, i, *t))
        .collect();
    if variadic {
        a.push("\"more\"".into());
    }
    let c = format!("{name}({})", a.join(", "));
    if ret.is_some() {
        format!("g = {c}")
    } else {
        c
    }
}

/// `stapxx-rs [PASS] -e SCRIPT` (no pass: a run): its stdout, its
/// stderr, and its exit status when it failed. A run that takes more than
/// a minute is killed and fails the test.
fn run(pass: Option<&str>, script: &str) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"));
    // One time zone wherever the snapshots are taken (`tz_gmtoff()`,
    // `tz_name()` are the session's).
    cmd.args(pass).args(["-e", script]).env("TZ", "UTC");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{pass:?} of {script}: still running after a minute");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        text.push_str(&format!("[exit {}]\n", out.status.code().unwrap_or(-1)));
    }
    (out.status.success(), text)
}

/// What of a `-p3` listing depends on the machine, replaced by a name:
///
/// * `gettimeofday_*()`: the wall clock minus CLOCK_BOOTTIME, read when
///   the programs are built, is an immediate (`rN = 0x... ll`): any
///   immediate within a minute of this process's own reading of it is
///   `BOOT_TO_WALL_NS`;
/// * `ppid()`: the offsets of `task_struct.real_parent` and `.tgid` from
///   the kernel's BTF are added to pointers (`r3 += N`);
/// * `symname()`, `probefunc()`: the binary search over `/proc/kallsyms`
///   is unrolled once per bit of the symbol count, and without root the
///   kernel shows no addresses (no table, no search): the listing is left
///   out, the IR kept, and `-p3` must still have succeeded.
///
/// (`_stp_syscall_nr()`, `_stp_arg2()` add `struct pt_regs` offsets from
/// the kernel's BTF too; they are kept: x86-64's layout is fixed by the
/// ptrace ABI.)
fn mask(name: &str, listing: String) -> String {
    let b = Builtin::from_name(name);
    if b.is_some_and(|b| b.needs().kernel_symbols) {
        let Some(at) = listing.find("# program ") else {
            return listing;
        };
        return format!(
            "{}# (BPF listing not kept: it depends on this kernel's symbol table)\n",
            &listing[..at]
        );
    }
    let mut out = listing;
    if name.starts_with("gettimeofday_") {
        let ours = stapxx::loadinfo::boot_to_wall_ns();
        out = out
            .lines()
            .map(|l| {
                let imm = l
                    .split_once("= 0x")
                    .and_then(|(_, r)| r.strip_suffix(" ll"))
                    .and_then(|h| u64::from_str_radix(h, 16).ok());
                match imm {
                    Some(v) if (v as i64).abs_diff(ours) < 60_000_000_000 => {
                        format!("{}= BOOT_TO_WALL_NS ll", l.split_once("= 0x").unwrap().0)
                    }
                    _ => l.to_string(),
                }
            })
            .map(|l| l + "\n")
            .collect();
    }
    if name == "ppid" {
        if let Some(t) = stapxx::kernel_btf::TaskOffsets::get() {
            out = out
                .replace(
                    &format!("r3 += {}\n", t.real_parent),
                    "r3 += TASK_REAL_PARENT\n",
                )
                .replace(&format!("r3 += {}\n", t.tgid), "r3 += TASK_TGID\n");
        }
    }
    out
}

/// The snapshot of `name`: `-p2` and `-p3` of its call in a kernel probe
/// and in a host probe, and a run of the host probe. Nothing refuses a
/// builtin before a run: what the host cannot give (registers, user
/// memory without `-x`) is an error of the run, which needs no root,
/// unlike loading the kernel probe.
fn report(name: &str) -> String {
    let c = call(name);
    // The host probe ends the run itself.
    let host = if name == "exit" {
        c.clone()
    } else {
        format!("{c}; exit()")
    };
    let mut text = String::new();
    for (probe, body, passes) in [
        ("timer.profile", &c, &[Some("-p2"), Some("-p3")][..]),
        ("begin", &host, &[Some("-p2"), Some("-p3"), None][..]),
    ] {
        let script = format!("global g\nprobe {probe} {{ {body} }}\n");
        text.push_str(&format!("=== {script}"));
        for &pass in passes {
            let (ok, out) = run(pass, &script);
            text.push_str(&format!("--- {}\n", pass.unwrap_or("run")));
            text.push_str(&if ok && pass == Some("-p3") {
                mask(name, out)
            } else {
                out
            });
            assert!(
                !out_has_internal_error(&text),
                "{name} in {probe}, {pass:?}:\n{text}"
            );
        }
    }
    text
}

/// Text that says the tool itself went wrong, not the script.
fn out_has_internal_error(text: &str) -> bool {
    ["panicked", "internal error", "RUST_BACKTRACE"]
        .iter()
        .any(|m| text.contains(m))
}

/// The first builtin whose output changed stops the loop; `cargo insta
/// test` goes on and collects every change for review. The names are
/// those of `Builtin::names()`: `user_long_warn`, `user_long_error` and the
/// other `_warn`/`_error` forms of the sized user reads are not among them.
#[test]
fn every_builtin() {
    for name in Builtin::names() {
        insta::assert_snapshot!(name, report(name));
    }
}

/// A new name in the table needs its snapshot, and a snapshot goes when
/// its builtin does.
#[test]
fn every_builtin_has_a_snapshot() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let names: std::collections::BTreeSet<String> = Builtin::names().map(String::from).collect();
    let snaps: std::collections::BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let f = e.ok()?.file_name().to_string_lossy().into_owned();
            Some(
                f.strip_prefix("builtins__")?
                    .strip_suffix(".snap")?
                    .to_string(),
            )
        })
        .collect();
    let missing: Vec<_> = names.difference(&snaps).collect();
    let stale: Vec<_> = snaps.difference(&names).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "builtins without a snapshot: {missing:?}; snapshots of no builtin: {stale:?}"
    );
}
