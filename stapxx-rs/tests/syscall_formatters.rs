//! `@const`, `errno_str`/`errno_p` and the embedded-C value-table
//! formatters of SystemTap's tapsets (`_sys_open_flag_str`, `_mmap_flags`,
//! ...), on the host and in the kernel.
//!
//! The formatters and their tables are SystemTap's own: each test takes
//! the functions it calls, with the `%{ %}` blocks holding their tables,
//! out of the installed tapset tree (`$STAP_TAPSET_DIR`, default
//! `/usr/share/systemtap/tapset`, package systemtap-common) when it runs,
//! and puts them before its own script; nothing of the tree is copied
//! into this repository.

mod support;

use std::path::PathBuf;

fn tapset_dir() -> Option<PathBuf> {
    let d = std::env::var_os("STAP_TAPSET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/systemtap/tapset"));
    d.join("linux/aux_syscalls.stp").is_file().then_some(d)
}

/// The text of `function NAME ...` in `text`, to the end of its body.
fn function_text(text: &str, name: &str) -> String {
    let start = text
        .find(&format!("function {name}:"))
        .or_else(|| text.find(&format!("function {name}(")))
        .or_else(|| text.find(&format!("function {name} ")))
        .unwrap_or_else(|| panic!("the tapset has no function {name}"));
    let rest = &text[start..];
    let brace = rest.find(['{', '%']).expect("a body");
    let end = if rest[brace..].starts_with("%{") {
        rest.find("%}").expect("embedded C ends") + 2
    } else {
        // A script body: to its matching brace.
        let mut depth = 0;
        let mut end = 0;
        for (i, c) in rest[brace..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = brace + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        end
    };
    rest[..end].to_string()
}

/// The `%{ %}` block of `text` that defines the value table `table`.
fn table_block(text: &str, table: &str) -> String {
    let at = text
        .find(&format!("_stp_val_array {table}[]"))
        .unwrap_or_else(|| panic!("the tapset has no table {table}"));
    let start = text[..at].rfind("%{").expect("in embedded C");
    let end = at + text[at..].find("%}").expect("embedded C ends") + 2;
    text[start..end].to_string()
}

/// Each (function, table) of `aux` (aux_syscalls.stp's text): the `%{ %}`
/// block holding the table, then the function.
fn with_tables(aux: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (func, table) in pairs {
        out.push_str(&table_block(aux, table));
        out.push('\n');
        out.push_str(&function_text(aux, func));
        out.push('\n');
    }
    out
}

/// SystemTap's formatters (with their tables) and `return_str`, from the
/// installed tree; `None` (or a failure under CI) without it.
fn library() -> Option<String> {
    let Some(dir) = tapset_dir() else {
        support::missing("SystemTap's tapset tree (package systemtap-common)");
        return None;
    };
    let aux = std::fs::read_to_string(dir.join("linux/aux_syscalls.stp")).unwrap();
    let errno = std::fs::read_to_string(dir.join("errno.stp")).unwrap();
    let mut out = with_tables(
        &aux,
        &[
            ("_sys_open_flag_str", "_stp_open_mode_flags_list"),
            ("_mmap_flags", "_stp_mmap_list"),
            ("_mprotect_prot_str", "_stp_mprotect_list"),
            ("_seek_whence_str", "_stp_seek_whence_list"),
            ("_at_flag_str", "_stp_atflag_list"),
        ],
    );
    // errno_str and errno_p are embedded C there: the builtins stand in.
    for func in ["errno_str", "errno_p", "return_str"] {
        out.push_str(&function_text(&errno, func));
        out.push('\n');
    }
    Some(out)
}

/// `stapxx-rs ARGS -e LIBRARY+SCRIPT`: (status, stdout, stderr).
fn with_library(args: &[&str], script: &str) -> Option<(i32, String, String)> {
    let src = format!("{}{script}", library()?);
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-e", &src]);
    Some(support::stapxx(&a))
}

#[test]
fn formatters_print_as_stap_on_the_host() {
    let script = r#"
probe begin {
  println(@const("AT_FDCWD"), " ", @const("__NR_openat"), " ", @const("__NR_compat_openat"))
  println(_sys_open_flag_str(0), " ", _sys_open_flag_str(0x241), " ", _sys_open_flag_str(0x80000))
  // O_DSYNC alone: stap's table has O_SYNC (which contains it) first.
  println(_sys_open_flag_str(0x1002), " ", _sys_open_flag_str(3), " ", _sys_open_flag_str(0x40000000))
  println(_mmap_flags(0x22), " ", _mmap_flags(0x40022 | (21 << 26)), " ", _mmap_flags(30 << 26), " ", _mmap_flags(0))
  println(_mprotect_prot_str(0), " ", _mprotect_prot_str(3), " ", _mprotect_prot_str(0x105))
  println(_seek_whence_str(1), " ", _seek_whence_str(9), " ", _seek_whence_str(-1))
  println(_at_flag_str(0x100), " ", _at_flag_str(0))
  println(errno_str(2), "|", errno_str(-13), "|", errno_str(11), "|", errno_str(0), "|", errno_str(3333), "|")
  println(errno_p(-2), " ", errno_p(2), " ", errno_p(0), " ", errno_p(133))
  println(return_str(1, -2), " ", return_str(2, 255), " ", return_str(1, -200), " ", return_str(1, 3))
  exit()
}
"#;
    let Some((code, out, err)) = with_library(&[], script) else {
        return;
    };
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "-100 257 295\n\
         O_RDONLY O_WRONLY|O_CREAT|O_TRUNC O_RDONLY|O_CLOEXEC\n\
         O_RDWR|O_SYNC O_RDONLY O_RDONLY|0x40000000\n\
         MAP_PRIVATE|MAP_ANONYMOUS MAP_HUGE_2MB|MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB MAP_HUGE_1GB|0x0 0x0\n\
         PROT_NONE PROT_READ|PROT_WRITE PROT_READ|PROT_EXEC|0x100\n\
         SEEK_CUR 0x9 0xffffffff\n\
         AT_SYMLINK_NOFOLLOW 0x0\n\
         ENOENT|EACCES|EAGAIN|||\n\
         2 2 0 0\n\
         -2 (ENOENT) 0xff -200 3\n"
    );
}

/// The same calls, compiled for the kernel: loaded and run in a
/// tracepoint of this test's own `openat` calls.
#[test]
fn formatters_print_as_stap_in_the_kernel() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let dir = support::scratch().join("formatters");
    std::fs::create_dir_all(&dir).unwrap();
    for (opt, tag) in [("-O0", "openat-O0"), ("-O2", "openat-O2")] {
        let bin = support::c_fixture("openat.c", tag, &[opt]);
        let script = r#"
probe kernel.trace("syscalls:sys_enter_openat") {
  if (pid() != target()) next
  printf("openat(%s, %s, %s)\n", $dfd == @const("AT_FDCWD") ? "AT_FDCWD" : sprintf("%d", $dfd),
         user_string_quoted($filename), _sys_open_flag_str($flags))
}
probe kernel.trace("syscalls:sys_exit_openat") {
  if (pid() != target()) next
  printf("= %s [%s] %d\n", return_str(1, $ret), errno_str($ret), errno_p($ret))
  if ($ret == -2)
    printf("others: %s %s %s %s [%s] [%s]\n", _mmap_flags(0x40022 | (21 << 26)), _mprotect_prot_str(0),
           _seek_whence_str(-1), _at_flag_str(0x1100), errno_str(0), errno_str(-3333))
}
"#;
        let cmd = format!("{} {}", bin.display(), dir.display());
        let Some((code, out, err)) = with_library(&["-c", &cmd], script) else {
            return;
        };
        assert_eq!(code, 0, "{tag}: {err}");
        let created = format!("\"{}/created\"", dir.display());
        let traced: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("openat(") || l.starts_with("= "))
            .collect();
        assert!(traced.len() >= 8, "{tag}: {out}");
        // errno_str and errno_p take |e|, as stap's do: fd 3 is "ESRCH".
        assert_eq!(
            traced[traced.len() - 8..],
            [
                "openat(AT_FDCWD, \"/etc/hostname\", O_RDONLY|O_CLOEXEC)".to_string(),
                "= 3 [ESRCH] 3".into(),
                format!("openat(AT_FDCWD, {created}, O_WRONLY|O_CREAT|O_TRUNC)"),
                "= 3 [ESRCH] 3".into(),
                "openat(AT_FDCWD, \"/nonexistent/stapxx-rs\", O_RDONLY)".into(),
                "= -2 (ENOENT) [ENOENT] 2".into(),
                format!("openat(AT_FDCWD, {created}, O_RDWR|O_APPEND|O_NONBLOCK)"),
                "= 3 [ESRCH] 3".into(),
            ],
            "{tag}: {out}"
        );
        let program: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("fd ") || l.starts_with("err "))
            .collect();
        assert_eq!(program, ["fd 3", "fd 3", "err 2", "fd 3"], "{tag}");
        // Once per missing file the program (and its loader) looked for.
        let others: std::collections::BTreeSet<&str> =
            out.lines().filter(|l| l.starts_with("others: ")).collect();
        assert_eq!(
            others.into_iter().collect::<Vec<_>>(),
            ["others: MAP_HUGE_2MB|MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB PROT_NONE 0xffffffff AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH [] []"],
            "{tag}"
        );
    }
}

/// Value tables whose entries cast (`{(unsigned int)RLIM_INFINITY, ...}`),
/// name enumerators (`BPF_MAP_CREATE`, `KCMP_FILE`) or sit under `#ifdef
/// CONFIG_*` (the running kernel's configuration decides, as its headers
/// would for stap): the same text on the host and in the kernel.
#[test]
fn tables_with_casts_enumerators_and_kernel_configuration() {
    let Some(dir) = tapset_dir() else {
        return support::missing("SystemTap's tapset tree (package systemtap-common)");
    };
    let aux = std::fs::read_to_string(dir.join("linux/aux_syscalls.stp")).unwrap();
    let lib = with_tables(
        &aux,
        &[
            ("_rlimit_resource_str", "_stp_rlimit_resource_list"),
            ("_rusage_who_str", "_stp_rusage_who_list"),
            ("_bpf_cmd_str", "_stp_bpf_cmd_list"),
            ("_kcmp_type_str", "_stp_kcmp_type_list"),
            ("_stp_ioprio_which_str", "_stp_ioprio_who_list"),
        ],
    );
    let calls = r#"printf("%s %s %s %s|%s %s %s|%s %s|%s %s|%s %s\n", _rlimit_resource_str(7), _rlimit_resource_str(-1), _rlimit_resource_str(0xffffffff), _rlimit_resource_str(99), _rusage_who_str(0), _rusage_who_str(-1), _rusage_who_str(-2), _bpf_cmd_str(5), _bpf_cmd_str(77), _kcmp_type_str(0), _kcmp_type_str(6), _stp_ioprio_which_str(1), _stp_ioprio_which_str(9))"#;
    // This kernel is built with CONFIG_BPF_SYSCALL and
    // CONFIG_CHECKPOINT_RESTORE (the tables' guards).
    let want = "RLIMIT_NOFILE RLIM_INFINITY RLIM_INFINITY 0x63|RUSAGE_SELF RUSAGE_CHILDREN RUSAGE_BOTH|BPF_PROG_LOAD 0x4d|KCMP_FILE KCMP_SYSVSEM|IOPRIO_WHO_PROCESS 9\n";
    let k = stapxx::system::kconfig();
    assert_eq!(
        (
            k.get("CONFIG_BPF_SYSCALL").map(String::as_str),
            k.get("CONFIG_CHECKPOINT_RESTORE").map(String::as_str)
        ),
        (Some("y"), Some("y")),
        "the expected text assumes both"
    );
    support::same_on_host_and_kernel_after(&lib, calls, want);
}

#[test]
fn unknown_constants_and_c_expressions_are_errors_at_the_const() {
    let (code, _, err) = support::stapxx(&["-p2", "-e", "probe begin { x = @const(\"O_CRAET\") }"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "-e:1:19: error: @const(\"O_CRAET\"): no C constant of that name in x86-64 Linux's headers (nearest: O_CREAT, IPC_SET, O_DIRECT)\n    \
         probe begin { x = @const(\"O_CRAET\") }\n                      \
         ^\n"
    );
    let (code, _, err) =
        support::stapxx(&["-p2", "-e", "probe begin { x = @const(\"current->pid\") }"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("-e:1:19: error: @const(\"current->pid\") is a C expression: only a named C constant (an identifier such as \"O_CREAT\") can be used without a kernel module\n"),
        "{err}"
    );
}

#[test]
fn embedded_c_of_another_shape_is_refused_with_the_reason() {
    let script = "function twice:long(x:long) %{ STAP_RETVALUE = STAP_ARG_x * 2; %}\nprobe begin { println(twice(2)) }\n";
    let (code, _, err) = support::stapxx(&["-p2", "-e", script]);
    assert_eq!(code, 1);
    assert_eq!(
        err.lines().next().unwrap(),
        "-e:1:1: error: function 'twice' is embedded C: eBPF cannot run C code (stapxx-rs has no kernel module), and its C statement 'STAP_RETVALUE = STAP_ARG_x * 2' is not one stapxx-rs can translate"
    );
    let script = "%{ static const _stp_val_array t_list[] = { V(NO_SUCH_FLAG), {0, NULL} }; %}\n\
                  function f:string(x:long) %{ _stp_lookup_str(t_list, STAP_ARG_x, STAP_RETVALUE, MAXSTRINGLEN); %}\n\
                  probe begin { println(f(2)) }\n";
    let (code, _, err) = support::stapxx(&["-p2", "-e", script]);
    assert_eq!(code, 1);
    assert_eq!(
        err.lines().next().unwrap(),
        "-e:2:1: error: function 'f' is embedded C: eBPF cannot run C code (stapxx-rs has no kernel module), and its table t_list: 'NO_SUCH_FLAG' (not a known C constant)"
    );
}

/// `-p2` shows what the formatters became, `-p3` the kernel code of the
/// errno and lookup builtins.
#[test]
fn translated_formatters_listings() {
    let script = r#"
global g, s
probe begin { s = _sys_open_flag_str(g) . _seek_whence_str(g) . _mprotect_prot_str(g); g = @const("O_CREAT") }
"#;
    let Some((code, out, err)) = with_library(&["-p2"], script) else {
        return;
    };
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("formatters_p2", out);
    let script = r#"
global g, s
probe timer.profile { s = errno_str(g) . _seek_whence_str(g); g = errno_p(g) }
"#;
    let Some((code, out, err)) = with_library(&["-p3"], script) else {
        return;
    };
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("formatters_p3", out);
}
