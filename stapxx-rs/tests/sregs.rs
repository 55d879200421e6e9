//! The syscall-register builtins run for real, as SystemTap's syscall
//! tapsets use them on a kernel without kprobes: `kernel.trace("sys_enter")`
//! hands `$regs` to `__set_syscall_pt_regs()`, then `_stp_syscall_nr()` and
//! `_stp_arg2()` read the call, directly and through script functions
//! written like the tapsets' `int_arg()`/`pointer_arg()` (the context is
//! the handler run's, not a local). The fixture (`tests/fixtures/sregs.c`,
//! built `-O0` and `-O2`) makes known calls; `_stp_arg2()` in a uprobe reads
//! the probed function's arguments; the errors are stap's.

mod support;

use std::path::PathBuf;

fn fixture(opt: &str) -> PathBuf {
    support::c_fixture("sregs.c", &format!("sregs{opt}"), &[opt])
}

/// The tapsets' argument functions, as x86_64/registers.stp defines them
/// over `_stp_arg2`.
const ARG_FUNCTIONS: &str = r#"
function int_arg:long (n:long) { return _stp_arg2(n, 1, 1, 0) }
function uint_arg:long (n:long) { return _stp_arg2(n, 0, 1, 0) }
function long_arg:long (n:long) { return _stp_arg2(n, 1, 0, 0) }
function ulong_arg:long (n:long) { return _stp_arg2(n, 0, 0, 0) }
function pointer_arg:long (n:long) { return _stp_arg2(n, 0, 0, 0) }
function open_args:string () {
  return sprintf("%d %s %#x", int_arg(1), user_string(pointer_arg(2)), uint_arg(3))
}
"#;

/// sys_enter: openat through the builtins and through the functions;
/// read and close through the functions. sys_exit: a handler run starts
/// with no registers set, where `_stp_syscall_nr()` reads the task's own
/// (stap's `_stp_current_pt_regs()`), then sets its own.
const SCRIPT: &str = r#"
probe kernel.trace("sys_enter") {
  if (pid() != target()) next
  __set_syscall_pt_regs($regs)
  if (_stp_syscall_nr() == 257)
    printf("openat %d %s %d | %s\n", _stp_arg2(1, 1, 1, 0), user_string(_stp_arg2(2, 0, 0, 0)), _stp_arg2(3, 1, 1, 0), open_args())
  else if (_stp_syscall_nr() == 0)
    printf("read %d %d\n", int_arg(1), ulong_arg(3))
  else if (_stp_syscall_nr() == 3)
    printf("close %d %d\n", int_arg(1), long_arg(1))
}
probe kernel.trace("sys_exit") {
  if (pid() != target()) next
  err = "none"
  try { err = sprint(_stp_syscall_nr()) } catch (m) { err = m }
  __set_syscall_pt_regs($regs)
  if (_stp_syscall_nr() == 257)
    printf("= %d (before: %s)\n", $ret, err)
}
"#;

#[test]
fn sys_enter_and_exit_read_the_call_s_registers() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let bin = fixture(opt);
        let script = format!("{ARG_FUNCTIONS}{SCRIPT}");
        let (code, out, err) = support::stapxx_c(&format!("{} 2", bin.display()), &script);
        assert_eq!(code, 0, "{opt}: {err}");
        assert_eq!(err, "", "{opt}");
        let fd: i64 = out
            .lines()
            .find_map(|l| l.strip_prefix("fd "))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{opt}: {out}"));
        let probe_lines: Vec<&str> = out
            .lines()
            .filter(|l| {
                ["openat ", "= ", "read ", "close "]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect();
        // (The dynamic loader's calls come first.)
        let round = [
            "openat -100 /nonexistent-xyz 524288 | -100 /nonexistent-xyz 0x80000".to_string(),
            "= -2 (before: 257)".to_string(),
            "openat -100 /dev/zero 0 | -100 /dev/zero 0x0".to_string(),
            format!("= {fd} (before: 257)"),
            format!("read {fd} 7"),
            format!("close {fd} {fd}"),
        ];
        let want: Vec<String> = round.iter().chain(round.iter()).cloned().collect();
        assert!(probe_lines.len() >= want.len(), "{opt}: {out}");
        assert_eq!(
            probe_lines[probe_lines.len() - want.len()..],
            want[..],
            "{opt}: {out}"
        );
    }
}

/// `_stp_arg2` in a uprobe without syscall registers: the probed
/// function's arguments (rdi, rsi, rdx, rcx, r8, r9, then the stack),
/// truncated and sign-extended as asked.
#[test]
fn uprobes_read_the_function_s_arguments() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let regs = r#"_stp_arg2(1, 1, 0, 0), _stp_arg2(2, 1, 1, 0), _stp_arg2(3, 0, 1, 0), _stp_arg2(4, 1, 0, 0), _stp_arg2(5, 1, 1, 0), _stp_arg2(6, 1, 1, 0), _stp_arg2(3, 1, 1, 0), _stp_arg2(3, 1, 1, 1), __int32(_stp_arg2(1, 0, 0, 0)), probing_32bit_app()"#;
    for opt in ["-O0", "-O2"] {
        let bin = fixture(opt);
        // After the prologue of unoptimized code the stack pointer has
        // moved (stap reads the same wrong slots there): the stack
        // arguments are checked where the probe is at the entry.
        let stack = if opt == "-O2" {
            r#"printf("stack %d %d\n", _stp_arg2(7, 1, 0, 0), _stp_arg2(8, 1, 0, 0))"#
        } else {
            ""
        };
        let script = format!(
            r#"probe process("{}").function("args8") {{
  printf("regs %d %d %d %d %d %d | %d %d %d %d\n", {regs})
  {stack}
}}"#,
            bin.display()
        );
        let (code, out, err) = support::stapxx_c(&format!("{} 2", bin.display()), &script);
        assert_eq!(code, 0, "{opt}: {err}");
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("regs ") || l.starts_with("stack "))
            .collect();
        // Two calls, the same arguments.
        let mut once = vec!["regs -5 -7 4294967280 4886718345 120 6 | -16 4294967280 -5 0"];
        if opt == "-O2" {
            once.push("stack 77 -88");
        }
        let want: Vec<&str> = once.iter().chain(once.iter()).copied().collect();
        assert_eq!(lines, want, "{opt}: {out}");
    }
}

/// Without registers: stap's messages, as probe errors that end the
/// session (status 1) or that `try`/`catch` catches.
#[test]
fn missing_registers_and_bad_argument_numbers_are_errors() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = fixture("-O2");
    let cmd = format!("{} 1", bin.display());
    let first_error = |script: &str| {
        let (code, _out, err) = support::stapxx_c(&cmd, script);
        assert_eq!(code, 1, "{err}");
        err.lines().next().unwrap_or_default().to_string()
    };
    assert_eq!(
        first_error(
            r#"probe kernel.trace("sys_exit") { if (pid() == target()) println(_stp_arg2(1, 0, 0, 0)) }"#
        ),
        "ERROR: cannot access function args in this context near identifier '_stp_arg2' at <input>:1:65"
    );
    // A pointer that is no pt_regs: a kernel read fault.
    assert_eq!(
        first_error(
            r#"probe kernel.trace("sys_enter") { if (pid() == target()) { __set_syscall_pt_regs(16); println(_stp_syscall_nr()) } }"#
        ),
        "ERROR: kernel memory read fault near identifier '_stp_syscall_nr' at <input>:1:95"
    );
    let (code, out, err) = support::stapxx_c(
        &cmd,
        r#"probe kernel.trace("sys_enter") {
  if (pid() != target()) next
  __set_syscall_pt_regs($regs)
  n = 7
  try { println(_stp_arg2(n, 0, 0, 0)) } catch (m) { println(m); exit() }
}"#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines()
            .find(|l| l.starts_with("cannot"))
            .unwrap_or_default(),
        "cannot access arg: no such argument number (a system call has 1 to 6)",
        "{out}"
    );
}

/// The host's probes have no registers: stap's errors there too.
#[test]
fn host_probes_have_no_registers() {
    let (code, out, err) = support::stapxx(&[
        "-e",
        r#"probe begin { println(__int32(0xffffff9c), " ", __ushort(-1), " ", _stp_is_compat_task()); try { println(_stp_syscall_nr()) } catch (m) { println(m) } println(_stp_arg2(1, 1, 1, 0)) }"#,
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "-100 65535 0\nCannot access syscall number (no registers available)\n"
    );
    assert_eq!(
        err,
        "ERROR: cannot access function args in this context near identifier '_stp_arg2' at <input>:1:160\nWARNING: Number of errors: 1, skipped probes: 0\n"
    );
}

/// stap's tapsets name the raw syscall events without their group.
#[test]
fn sys_enter_without_a_group_is_raw_syscalls() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let (code, out, err) = support::stapxx(&[
        "-p2",
        "-e",
        r#"probe kernel.trace("sys_enter") { __set_syscall_pt_regs($regs) } probe kernel.trace("sys_exit") { println($ret) }"#,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        r#"# sites:
#   raw tracepoint sys_enter (raw_syscalls:sys_enter; arguments regs, id) <- kernel.trace("sys_enter")
probe kernel.trace("sys_enter") {
  __set_syscall_pt_regs(kernel_pointer(__stapxx_context()))
}
# sites:
#   raw tracepoint sys_exit (raw_syscalls:sys_exit; arguments regs, ret) <- kernel.trace("sys_exit")
probe kernel.trace("sys_exit") {
  println(kernel_pointer((__stapxx_context() + 8)))
}
"#
    );
}

/// The tapsets' `@__compat_task` (embedded C calling the runtime's
/// `_stp_is_compat_task()`) is the builtin: 0 for a 64-bit task.
#[test]
fn the_compat_task_macro_is_the_builtin() {
    let (code, out, err) = support::stapxx(&[
        "-e",
        "@define __compat_task %( %{ /* pure */ _stp_is_compat_task() %} %)\nprobe begin { println(@__compat_task ? \"compat\" : \"64-bit\"); exit() }",
    ]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "64-bit\n", ""));
}
