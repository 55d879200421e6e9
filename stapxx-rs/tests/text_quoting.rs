//! stap's quoting of user memory in the kernel: `user_buffer_quoted` as
//! SystemTap's own `syscall.write` alias calls it (`argstr` shows 50 bytes
//! of the buffer: `syscall_string_trunc`), and `user_string_quoted` of a
//! UTF-8 path as `syscall.openat` prints it. The fixture
//! (`tests/fixtures/writes.c`) writes known buffers to /dev/null on fd 9;
//! what is printed must be what stap prints for them. The rules, worked
//! by hand from stap's runtime, are unit-tested in `runtime/textstr.rs`.

mod support;

fn have_tree() -> bool {
    let ok = std::path::Path::new("/usr/share/systemtap/tapset/linux/sysc_write.stp").exists();
    if !ok {
        support::missing("SystemTap's tapset tree (systemtap-common)");
    }
    ok
}

const SCRIPT: &str = r#"
probe syscall.write { if (pid() == target()) printf("write(%s)\n", argstr) }
probe syscall.openat { if (pid() == target()) printf("openat(%s)\n", argstr) }
probe kernel.trace("syscalls:sys_enter_openat") {
  if (pid() == target())
    printf("%s %s\n", user_string_quoted($filename), user_buffer_quoted($filename, 16, 8))
}
"#;

#[test]
fn written_buffers_print_as_stap_prints_them() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !have_tree() {
        return;
    }
    let path = r#""/nonexistent/caf\u00E9-\U0001F600""#;
    for opt in ["-O0", "-O2"] {
        let bin = support::c_fixture("writes.c", &format!("writes{opt}"), &[opt]);
        let (code, out, err) = support::stapxx_c(&bin.display().to_string(), SCRIPT);
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() >= 10, "{opt}: {out}");
        // The dynamic loader's openat calls come first; ours are the last.
        assert_eq!(
            lines[lines.len() - 10..],
            [
                "openat(AT_FDCWD, \"/dev/null\", O_WRONLY)".to_string(),
                // 8 bytes of output: the quotes, 3 of the text, `"...`.
                "\"/dev/null\" \"/de\"...".to_string(),
                // NUL goes as \000 in a buffer; é as \u00E9.
                r#"write(9, "ab\000c\t\"\u00E9", 8)"#.to_string(),
                r#"write(9, "\U0001F600x", 5)"#.to_string(),
                // 60 digits, 50 bytes shown: the quotes, 45 digits, `"...`.
                r#"write(9, "012345678901234567890123456789012345678901234"..., 60)"#.to_string(),
                // The cut would split \u00E9: it goes whole.
                format!("write(9, \"{}\"..., 52)", "a".repeat(40)),
                // Count 0 means up to MAXSTRINGLEN - 1 bytes to stap; the
                // output stops at a NUL, so no "..." (its rule: the last
                // character read must not be NUL).
                format!("write(9, \"zero{}\", 0)", r"\000".repeat(11)),
                // Unreadable: the address, no quotes.
                "write(9, 0x1, 5)".to_string(),
                format!("openat(AT_FDCWD, {path}, O_RDONLY)"),
                format!("{path} \"/no\"...")
            ],
            "{opt}: {out}"
        );
    }
}

/// The same quoting on both sides: a `begin` probe (stapxx-rs reads the
/// target's memory) and a uprobe (BPF reads it) quote `quoted_sample` of
/// `tests/fixtures/calls.c` ("hi\t\"there\"\n\001\\" and its NUL) to the
/// same text: whole, cut to 12 bytes, unreadable, with outlen 0; and
/// `string_quoted` of a string value, which the tree's
/// `user_string_n_quoted` calls.
#[test]
fn host_and_kernel_quote_alike() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("calls.c", "calls_text_quoting", &["-O2"]);
    let q = "a = &@var(\"quoted_sample\"); s = sprintf(\"%s|%s|%s|%s|%s|%s|%s|%s\", \
             user_buffer_quoted(a, 14, 50), user_buffer_quoted(a, 14, 12), \
             user_buffer_quoted(16, 4, 50), user_buffer_quoted(a, 4, 0), \
             user_string_quoted(a), user_string_quoted(16), \
             string_quoted(user_string(a)), user_string_n_quoted(a, 5))";
    let script = format!(
        "probe begin {{ {q}; println(\"host \", s) }}\n\
         probe process(\"{}\").function(\"work\") {{\n  \
           if (u_register(\"rdi\") == 0) {{ {q}; println(\"kernel \", s); exit() }}\n}}\n",
        bin.display()
    );
    let mut target = Command::new(&bin)
        .arg("3")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut tout = BufReader::new(target.stdout.take().unwrap());
    let mut line = String::new();
    tout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["-x", &target.id().to_string(), "-e", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut host = String::new();
    out.read_line(&mut host).unwrap();
    // The begin probe ran: the uprobe is attached; make work(0) run.
    target.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    target.stdin.as_mut().unwrap().flush().unwrap();
    let mut kernel = String::new();
    std::io::Read::read_to_string(&mut out, &mut kernel).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
    let _ = target.kill();
    let _ = target.wait();
    assert!(status.success(), "{err}");
    let want = r#""hi\t\"there\"\n\001\\\000"|"hi\t\"t"...|0x10||"hi\t\"there\"\n\001\\"|0x10|"hi\t\"there\"\n\001\\"|"hi\t\"t""#;
    assert_eq!(host, format!("host {want}\n"), "{err}");
    assert_eq!(kernel, format!("kernel {want}\n"), "{err}");
}

/// A literal's escaped bytes are bytes, as in stap: `"\303\251"` is the two
/// bytes of "é" (UTF-8), `"\351"` one byte equal to `"\xe9"`, in a host and
/// a kernel probe alike: lengths, printed bytes, a format's text, a
/// global's initial value, comparisons, regular expressions (each escape
/// one byte to match). `-p1` prints them back escaped.
#[test]
fn escaped_bytes_are_bytes_on_both_sides() {
    let body = r#"x = "\303\251"; printf("%d %d [%s] [%s] [%s] %d %d %d %d\n", strlen("aZ\303"), strlen("\351"), x, g, sprintf("\303\251%d", 1), "\351" == "\xe9", x == "é", x =~ "^\303\251$", x =~ "\351")"#;
    let want: &[u8] = b"3 1 [\xc3\xa9] [\xc3\xa9!] [\xc3\xa91] 1 1 1 0\n";
    let host = std::process::Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args([
            "-e",
            &format!("global g = \"\\303\\251!\" probe begin {{ {body}; exit() }}"),
        ])
        .output()
        .unwrap();
    assert!(
        host.status.success(),
        "{}",
        String::from_utf8_lossy(&host.stderr)
    );
    assert_eq!(host.stdout, want);
    let (code, out, _) =
        support::stapxx(&["-p1", "-e", r#"probe begin { print("\303\251é\001") }"#]);
    assert_eq!(code, 0);
    assert!(out.contains(r#"print("\303\251é\001")"#), "{out}");
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let getppid = support::c_fixture("getppid.c", "getppid-bytes", &["-O2"]);
    let kernel = std::process::Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args([
            "-c",
            &format!("{} 1", getppid.display()),
            "-e",
            &format!(
                "global g = \"\\303\\251!\" probe kernel.trace(\"syscalls:sys_enter_getppid\") {{ if (pid() == target() && execname() == \"getppid-bytes\") {{ {body} }} }}"
            ),
        ])
        .output()
        .unwrap();
    assert!(
        kernel.status.success(),
        "{}",
        String::from_utf8_lossy(&kernel.stderr)
    );
    assert_eq!(kernel.stdout, want);
}

/// `text_str(s)` and `text_strn(s, len, quoted)`, the string tapset's bare
/// forms of the same escaping: no quotes (unless `quoted`), a cut leaves
/// no mark and never splits an escape; `quoted` known only at run time
/// too. The same text from a host and a kernel probe.
#[test]
fn text_str_and_text_strn_escape_alike_in_host_and_kernel() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let calls = r#"sprintf("%s|%s|%s|%s|%s|%s", text_str("a\"b\n\303\251\001"),
      text_strn("abcdefgh", 6, 1), text_strn("abcdefgh", 3, 0),
      text_strn("abcd\n", 5, q - 1), text_strn("abcdefgh", 0, q), text_strn("ab\tcd", 100, 0))"#;
    let script = format!(
        "global q = 1\n\
         probe begin {{ println(\"host \", {calls}) }}\n\
         probe kernel.trace(\"sched:sched_process_exec\") {{\n  \
           if (pid() == target()) println(\"kernel \", {calls})\n}}\n"
    );
    let (code, out, err) = support::stapxx_c("/bin/true", &script);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let want = r#"a\"b\n\u00E9\001|"a"...|abc|abcd|"abcdefgh"|ab\tcd"#;
    assert_eq!(out, format!("host {want}\nkernel {want}\n"));
}

/// `%#c`, a character as stap escapes it (C's letters, `\'` and `\\`,
/// octal for other bytes outside printable ASCII), from a host and a
/// kernel probe alike (bpf_snprintf has no `#` for `%c`).
#[test]
fn escaped_characters_print_alike_in_host_and_kernel() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bytes = [
        0, 1, 7, 8, 9, 10, 11, 12, 13, 27, 32, 34, 39, 65, 92, 126, 127, 128, 255, 0x141,
    ];
    let calls: Vec<String> = bytes
        .iter()
        .map(|b| format!("sprintf(\"%#c\", {b})"))
        .collect();
    let joined = calls.join(" . \"|\" . ");
    let script = format!(
        "probe begin {{ println(\"host \", {joined}) }}\n\
         probe kernel.trace(\"sched:sched_process_exec\") {{\n  \
           if (pid() == target()) println(\"kernel \", {joined})\n}}\n"
    );
    let (code, out, err) = support::stapxx_c("/bin/true", &script);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let want = r#"\000|\001|\a|\b|\t|\n|\v|\f|\r|\033| |"|\'|A|\\|~|\177|\200|\377|A"#;
    assert_eq!(out, format!("host {want}\nkernel {want}\n"));
}
