//! Small scripts whose kernel probe runs once for real (a uprobe on the
//! first call of a test program's function), each with its exact output.
//! The `end` probe prints what the kernel side computed; `printf` in the
//! probe itself travels through the ring buffer.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `script` (with `BIN` replaced by the target program) against the
/// program calling work(0), work(1), work(2); returns stdout and stderr.
fn run(tag: &str, script: &str, extra: &[&str]) -> (String, String) {
    let bin = support::c_fixture("calls.c", &format!("calls_ks_{tag}"), &["-g", "-O2"]);
    let mut target = Command::new(&bin)
        .arg("3")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut tout = BufReader::new(target.stdout.take().unwrap());
    let mut line = String::new();
    tout.read_line(&mut line).unwrap();
    let text = format!(
        "probe begin {{ printf(\"attached\\n\") }}\n{}",
        script.replace("BIN", &bin.display().to_string())
    );
    let path = support::scratch().join(format!("ks_{tag}.stp"));
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .arg(&path)
        .args(["-x", &target.id().to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    if first != "attached\n" {
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
        let _ = child.wait();
        let _ = target.kill();
        let _ = target.wait();
        return (first, err);
    }
    target.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    target.stdin.as_mut().unwrap().flush().unwrap();
    line.clear();
    tout.read_line(&mut line).unwrap();
    assert_eq!(line, "done 3\n");
    std::thread::sleep(std::time::Duration::from_millis(100));
    // SAFETY: SIGINT to our own child.
    unsafe { kill(child.id() as i32, 2) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
    child.wait().unwrap();
    let _ = target.kill();
    let _ = target.wait();
    (rest, err)
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// A kernel probe that runs once, on work(0).
fn once(body: &str) -> String {
    format!("probe process(\"BIN\").function(\"work\") {{ if (u_register(\"rdi\") == 0) {{ {body} }} }}\n")
}

struct Case {
    name: &'static str,
    script: String,
    stdout: &'static str,
}

fn case(name: &'static str, globals: &str, body: &str, end: &str, stdout: &'static str) -> Case {
    let g = if globals.is_empty() {
        String::new()
    } else {
        format!("global {globals}\n")
    };
    Case {
        name,
        script: format!("{g}{}probe end {{ {end} }}\n", once(body)),
        stdout,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case("add_wraps", "r", "r = 9223372036854775807 + 1", "printf(\"%d\\n\", r)", "-9223372036854775808\n"),
        case("mul_neg", "r", "r = -7 * 6", "printf(\"%d\\n\", r)", "-42\n"),
        case("div_trunc", "a, b", "a = -7 / 2; b = 7 / -2", "printf(\"%d %d\\n\", a, b)", "-3 -3\n"),
        case("mod_sign", "a, b", "a = -7 % 3; b = 7 % -3", "printf(\"%d %d\\n\", a, b)", "-1 1\n"),
        case("shifts", "a, b, c", "a = 1 << 40; b = -16 >> 2; c = 255 >> 4", "printf(\"%d %d %d\\n\", a, b, c)", "1099511627776 -4 15\n"),
        case("bit_ops", "a, b, c, d", "a = 12 & 10; b = 12 | 3; c = 12 ^ 5; d = ~0", "printf(\"%d %d %d %d\\n\", a, b, c, d)", "8 15 9 -1\n"),
        case("logic", "a, b, c", "a = 3 && 0; b = 0 || 5; c = !7", "printf(\"%d %d %d\\n\", a, b, c)", "0 1 0\n"),
        case("compare", "a, b, c", "a = (2 < 3) + (3 <= 3) + (4 > 5); b = -1 < 0; c = 5 != 5", "printf(\"%d %d %d\\n\", a, b, c)", "2 1 0\n"),
        case("ternary", "a", "x = 5; a = x > 3 ? x * 2 : -x", "printf(\"%d\\n\", a)", "10\n"),
        case("crement", "a, b, c", "x = 5; a = x++; b = ++x; c = x--", "printf(\"%d %d %d\\n\", a, b, c)", "5 7 7\n"),
        case("assign_ops", "x", "x = 10; x += 5; x -= 3; x *= 4; x /= 6; x %= 5; x <<= 3; x >>= 1; x |= 1; x &= 7; x ^= 2", "printf(\"%d\\n\", x)", "7\n"),
        case("div_zero_is_an_error", "x", "y = 0; x = 5 / y", "printf(\"x=%d\\n\", x)", "x=0\n"),
        case("string_concat", "s", "s = \"ab\" . \"cd\" . sprintf(\"%d\", 12)", "printf(\"%s\\n\", s)", "abcd12\n"),
        case("string_append_2k", "n", "s = \"\"; for (i = 0; i < 256; i++) s .= \"abcdefgh\"; n = strlen(s)", "printf(\"%d\\n\", n)", "2048\n"),
        case("string_truncates", "n", "s = \"\"; for (i = 0; i < 1000; i++) s .= \"abcdefgh\"; n = strlen(s)", "printf(\"%d\\n\", n)", "4095\n"),
        case("sprintf_d", "s", "s = sprintf(\"[%d|%5d|%-5d|%05d|%+d]\", 42, 42, 42, 42, 42)", "printf(\"%s\\n\", s)", "[42|   42|42   |00042|+42]\n"),
        case("sprintf_x", "s", "s = sprintf(\"[%x|%X|%#x|%08x]\", 255, 255, 255, 255)", "printf(\"%s\\n\", s)", "[ff|FF|0xff|000000ff]\n"),
        case("sprintf_u_neg", "s", "s = sprintf(\"%u\", -1)", "printf(\"%s\\n\", s)", "18446744073709551615\n"),
        case("sprintf_s_width", "s", "s = sprintf(\"[%s|%6s|%-6s|%.2s]\", \"abc\", \"abc\", \"abc\", \"abc\")", "printf(\"%s\\n\", s)", "[abc|   abc|abc   |ab]\n"),
        case("sprintf_c_pct", "s", "s = sprintf(\"%c%c%%\", 72, 105)", "printf(\"%s\\n\", s)", "Hi%\n"),
        case("sprintf_p", "s", "s = sprintf(\"%p\", 4096)", "printf(\"%s\\n\", s)", "0x0000000000001000\n"),
        case("string_compare_literal", "a, b, c", "s = \"abc\"; a = s == \"abc\"; b = s != \"abd\"; c = s < \"abd\"", "printf(\"%d %d %d\\n\", a, b, c)", "1 1 1\n"),
        case("empty_string", "a, b", "s = \"\"; a = s == \"\"; b = strlen(s)", "printf(\"%d %d\\n\", a, b)", "1 0\n"),
        case("substr", "s", "s = substr(\"hello world\", 6, 3)", "printf(\"%s\\n\", s)", "wor\n"),
        case("string_of_number", "s", "s = string(-12) . \"/\" . string(34)", "printf(\"%s\\n\", s)", "-12/34\n"),
        case("array_long_keys", "a", "a[1] = 10; a[2] = 20; a[1] += 5", "printf(\"%d %d %d\\n\", a[1], a[2], a[3])", "15 20 0\n"),
        case("array_string_keys", "a", "a[\"x\"] = 1; a[\"y\"] = 2", "foreach (k+ in a) printf(\"%s=%d\\n\", k, a[k])", "x=1\ny=2\n"),
        case("array_multi_keys", "a", "a[1, \"one\"] = 100; a[2, \"two\"] = 200", "foreach ([n, s] in a-) printf(\"%d %s %d\\n\", n, s, a[n, s])", "2 two 200\n1 one 100\n"),
        case("array_string_values", "a", "a[7] = \"seven\"; a[8] = sprintf(\"e%dt\", 8)", "printf(\"%s %s\\n\", a[7], a[8])", "seven e8t\n"),
        case("in_and_delete", "a, r", "a[1] = 1; a[2] = 2; delete a[1]; r = (1 in a) * 10 + (2 in a)", "printf(\"%d\\n\", r)", "1\n"),
        case("stats", "s", "for (i = 1; i <= 10; i++) s <<< i", "printf(\"%d %d %d %d %d\\n\", @count(s), @sum(s), @min(s), @max(s), @avg(s))", "10 55 1 10 5\n"),
        case("stats_array", "s", "s[\"a\"] <<< 3; s[\"a\"] <<< 5; s[\"b\"] <<< -2", "foreach (k+ in s) printf(\"%s %d %d\\n\", k, @count(s[k]), @sum(s[k]))", "a 2 8\nb 1 -2\n"),
        case("loop_while", "n", "i = 0; while (i < 10) { i++; if (i % 2) continue; n += i }", "printf(\"%d\\n\", n)", "30\n"),
        case("loop_break", "n", "for (i = 0; ; i++) { if (i == 7) break; n++ }", "printf(\"%d\\n\", n)", "7\n"),
        case("nested_loops_3x100", "n", "for (i = 0; i < 100; i++) for (j = 0; j < 100; j++) for (k = 0; k < 100; k++) n++", "printf(\"%d\\n\", n)", "1000000\n"),
        case("maxaction_is_an_error", "n", "while (1) n++", "printf(\"%d\\n\", n)", "100000\n"),
        case("next_leaves_the_probe", "a, b", "a = 1; next; b = 1", "printf(\"%d %d\\n\", a, b)", "1 0\n"),
        case("user_read_fault", "x, y", "x = 1; y = user_long(16); x = 2", "printf(\"%d %d\\n\", x, y)", "1 0\n"),
        case("printf_from_the_kernel", "", "printf(\"k %d %s\\n\", 5, \"five\")", "printf(\"end\\n\")", "k 5 five\nend\n"),
        case("pid_matches_target", "a", "a = pid() == target()", "printf(\"%d\\n\", a)", "1\n"),
        case("execname", "s", "s = execname()", "printf(\"%s\\n\", s)", "calls_ks_execna\n"),
    ]
}

fn functions_case() -> Case {
    let mut script = String::from("global r, s\n");
    // Eight calls deep, each adding its level.
    for i in 1..=8 {
        if i == 8 {
            script.push_str("function f8(x) { return x + 8 }\n");
        } else {
            script.push_str(&format!(
                "function f{i}(x) {{ return f{}(x + {i}) }}\n",
                i + 1
            ));
        }
    }
    script.push_str("function greet:string (who:string) { return \"hi \" . who }\n");
    script.push_str(&once("r = f1(0); s = greet(\"bob\")"));
    script.push_str("probe end { printf(\"%d %s\\n\", r, s) }\n");
    Case {
        name: "calls_8_deep",
        script,
        stdout: "36 hi bob\n",
    }
}

#[test]
fn kernel_scripts_give_exact_output() {
    if !support::is_root() {
        support::missing("root (BPF and uprobes)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut failures = Vec::new();
    let mut all = cases();
    all.push(functions_case());
    for c in &all {
        let (out, err) = run(c.name, &c.script, &[]);
        if out != c.stdout {
            failures.push(format!(
                "{}: got {out:?}, want {:?}\n  stderr: {err}",
                c.name, c.stdout
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn probe_errors_are_counted_and_reported() {
    if !support::is_root() {
        support::missing("root (BPF and uprobes)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let script = "global x\n\
        probe process(\"BIN\").function(\"work\") { y = 0; x = 5 / y }\n\
        probe end { printf(\"%d\\n\", x) }\n";
    let (out, err) = run("errors", script, &[]);
    assert_eq!(out, "0\n");
    assert!(
        err.contains("WARNING: 3 probe error(s): division by zero"),
        "{err}"
    );
    assert!(
        err.contains("WARNING: Number of errors: 3, skipped probes: 0"),
        "{err}"
    );
    // With --skip-badvars a faulting read gives 0 and no error.
    let script = "global y\n\
        probe process(\"BIN\").function(\"work\") { y = user_long(16) + 1 }\n\
        probe end { printf(\"%d\\n\", y) }\n";
    let (out, err) = run("skip_badvars", script, &["--skip-badvars"]);
    assert_eq!(out, "1\n");
    assert!(!err.contains("Number of errors"), "{err}");
}
