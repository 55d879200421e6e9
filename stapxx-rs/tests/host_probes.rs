//! Pass 5 for host probes (`begin`, `end`, `error`, `timer.*`), driven
//! through the real binary: each case is a small script with its exact
//! stdout, a fragment its stderr must contain, and its exit status.
//!
//! The expected outputs follow stap's semantics (its runtime's printf and
//! histogram code, its error messages and session rules; see
//! `src/runtime/`).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Case {
    name: &'static str,
    args: &'static [&'static str],
    script: &'static str,
    stdout: &'static str,
    /// Must appear in stderr ("" = stderr must be empty).
    stderr: &'static str,
    code: i32,
}

const fn case(
    name: &'static str,
    script: &'static str,
    stdout: &'static str,
    stderr: &'static str,
    code: i32,
) -> Case {
    Case {
        name,
        args: &[],
        script,
        stdout,
        stderr,
        code,
    }
}

const fn case_args(
    name: &'static str,
    args: &'static [&'static str],
    script: &'static str,
    stdout: &'static str,
    stderr: &'static str,
    code: i32,
) -> Case {
    Case {
        name,
        args,
        script,
        stdout,
        stderr,
        code,
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
}

/// Wait for `child` at most `limit`, then kill it; returns (code, stdout, stderr).
fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String, String) {
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.and_then(|s| s.code()), out, err)
}

fn spawn(args: &[&str], script: &str) -> Child {
    bin()
        .args(args)
        .arg("-e")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run stapxx-rs")
}

fn check(c: &Case) -> Result<(), String> {
    // Outputs are small: the pipes cannot fill up before the exit.
    let (code, out, err) = finish(spawn(c.args, c.script), Duration::from_secs(30));
    let mut problems = Vec::new();
    if out != c.stdout {
        problems.push(format!(
            "stdout:\n--- expected\n{}--- got\n{}---",
            c.stdout, out
        ));
    }
    if c.stderr.is_empty() {
        if !err.is_empty() {
            problems.push(format!("unexpected stderr: {err}"));
        }
    } else if !err.contains(c.stderr) {
        problems.push(format!("stderr lacks {:?}: {err}", c.stderr));
    }
    if err.contains("panicked") {
        problems.push(format!("panic: {err}"));
    }
    if code != Some(c.code) {
        problems.push(format!("exit status {code:?}, expected {}", c.code));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("[{}]\n{}", c.name, problems.join("\n")))
    }
}

fn run_cases(cases: &[Case]) {
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn arithmetic() {
    run_cases(&[
        case(
            "i64 overflow wraps",
            r#"probe begin { printf("%d %d %d\n", 9223372036854775807 + 1, -9223372036854775807 - 2, 4611686018427387904 * 4); exit() }"#,
            "-9223372036854775808 9223372036854775807 0\n",
            "",
            0,
        ),
        case(
            "division and modulo truncate as C",
            r#"probe begin { printf("%d %d %d %d\n", -7 / 2, -7 % 2, 7 / -2, 7 % -2); exit() }"#,
            "-3 -1 -3 1\n",
            "",
            0,
        ),
        case(
            "MIN / -1 and MIN % -1",
            r#"probe begin { x = -9223372036854775807 - 1; y = -1; printf("%d %d\n", x / y, x % y); exit() }"#,
            "-9223372036854775808 0\n",
            "",
            0,
        ),
        case(
            "shifts",
            r#"probe begin { a = 62; b = 63; c = -3; printf("%d %d %d %d %d\n", 1 << a, 1 << b, -16 >> 2, 5 << c, -1 >> b); exit() }"#,
            "4611686018427387904 -9223372036854775808 -4 5 -1\n",
            "",
            0,
        ),
        case(
            "bit operators, unary minus, abs, min, max",
            r#"probe begin { x = -9223372036854775807 - 1; printf("%d %d %d %d|%d %d %d %d %d\n", 12 & 10, 12 | 10, 12 ^ 10, ~0, -x, abs(x), abs(-5), min(3, -2), max(3, -2)); exit() }"#,
            "8 14 6 -1|-9223372036854775808 -9223372036854775808 5 -2 3\n",
            "",
            0,
        ),
        case(
            "compound assignment and increments",
            r#"probe begin { x = 5; x += 3; x *= 2; x -= 1; x /= 3; x %= 4; x <<= 3; x >>= 1; x |= 1; x &= 7; x ^= 2; printf("%d %d %d %d %d\n", x, x++, x, ++x, x--); exit() }"#,
            "7 7 8 9 9\n",
            "",
            0,
        ),
        case(
            "division by zero aborts the handler",
            r#"probe begin { x = 0; println("before"); y = 10 / x; println("after ", y) } probe end { println("end") }"#,
            "before\n",
            "ERROR: division by 0 near operator '/' at <input>:1:48\nWARNING: Number of errors: 1, skipped probes: 0\n",
            1,
        ),
        case(
            "modulo by zero is caught",
            r#"probe begin { x = 0; try { y = 10 % x; println("no ", y) } catch (e) { println("caught: " . e) } try { z = 1 / x; println(z) } catch { println("caught again") } exit() }"#,
            "caught: division by 0\ncaught again\n",
            "",
            0,
        ),
        case(
            "errors in functions are caught by the caller",
            r#"function f(d) { return 100 / d } function g(d) { return f(d) + 1 } probe begin { try { println(g(0)) } catch (m) { println("in catch: " . m) } println(g(50)); exit() }"#,
            "in catch: division by 0\n3\n",
            "",
            0,
        ),
        case(
            "logical operators short-circuit",
            r#"probe begin { x = 0; if (x != 0 && 10 / x > 1) println("no"); if (x == 0 || 10 / x) println("short"); printf("%d %d %d\n", !5, !0, 3 && 4); exit() }"#,
            "short\n0 1 1\n",
            "",
            0,
        ),
    ]);
}

#[test]
fn strings() {
    run_cases(&[
        case(
            "2 KB built with .=",
            r#"probe begin { for (i = 0; i < 2048; i++) s .= substr("abcdefgh", i % 8, 1); printf("%d %s %s\n", strlen(s), substr(s, 0, 10), substr(s, 2040, 8)); exit() }"#,
            "2048 abcdefghab abcdefgh\n",
            "",
            0,
        ),
        case(
            "default MAXSTRINGLEN keeps 4095 bytes",
            r#"probe begin { for (i = 0; i < 5000; i++) s .= "x"; println(strlen(s)); exit() }"#,
            "4095\n",
            "",
            0,
        ),
        case_args(
            "-D MAXSTRINGLEN truncates stored strings",
            &["-D", "MAXSTRINGLEN=10"],
            r#"probe begin { s = "0123456789abcdef"; t = s . "zz"; u = sprintf("%s!", "abcdefghijkl"); printf("%s %d %s %s\n", s, strlen(s), t, u); println("a literal longer than ten"); exit() }"#,
            "012345678 9 012345678 abcdefghi\na literal longer than ten\n",
            "",
            0,
        ),
        case(
            "tokenize: non-empty tokens, any delimiter, a new string restarts",
            r#"probe begin { t = tokenize(" a,,b c ", ", "); while (t != "") { printf("[%s]", t); t = tokenize("", ", ") } printf("%s|%s|%s\n", tokenize("x y", " "), tokenize("p q", " "), tokenize("", " ")); printf("[%s]\n", tokenize("", " ")); exit() }"#,
            "[a][b][c]x|p|q\n[]\n",
            "",
            0,
        ),
        case(
            "byte-wise comparison",
            r#"probe begin { printf("%d %d %d %d %d %d\n", "abc" < "abd", "b" > "abc", "" < "a", "Z" < "a", "abc" == "abc", "é" > "z"); exit() }"#,
            "1 1 1 1 1 1\n",
            "",
            0,
        ),
        case(
            "substr, isinstr, strlen, strtol, string",
            r#"probe begin { println(substr("hello world", 6, 5)); println(substr("hello", 3, 100)); println(substr("hello", 9, 2) . "|" . substr("hello", -1, 2) . "|" . substr("hello", 1, -1) . "|"); printf("%d %d %d %d\n", isinstr("hello", "ll"), isinstr("hello", "x"), isinstr("hello", ""), strlen("hé")); printf("%d %d %d %d %d %d\n", strtol("ff", 16), strtol("-42", 10), strtol("0x10", 0), strtol("017", 0), strtol("12abc", 10), strtol("zz", 10)); println(string(-5) . string(7)); exit() }"#,
            "world\nlo\n|||\n1 0 1 3\n255 -42 16 15 12 0\n-57\n",
            "",
            0,
        ),
        case(
            "regular expressions",
            r#"probe begin { printf("%d %d %d %d %d\n", "foo123" =~ "^[a-z]+[0-9]+$", "abc" =~ "b", "abc" !~ "^b", "Ab9" =~ "^[[:upper:]][[:lower:]][[:digit:]]$", "a.c" =~ "a\\.c"); exit() }"#,
            "1 1 1 1 1\n",
            "",
            0,
        ),
        case(
            "print, println, printd, printdln",
            r#"probe begin { print(1); print("a"); println(2); println("b"); printd(",", 1, "x", 3); println(""); printdln("-", "a", 2); exit() }"#,
            "1a2\nb\n1,x,3\na-2\n",
            "",
            0,
        ),
    ]);
}

#[test]
fn printf_conversions() {
    run_cases(&[
        case(
            "%d %i %u",
            r#"probe begin { printf("[%d][%i][%u][%d]\n", -1, 42, -1, -9223372036854775807 - 1); exit() }"#,
            "[-1][42][18446744073709551615][-9223372036854775808]\n",
            "",
            0,
        ),
        case(
            "%x %X %o and #",
            r#"probe begin { printf("[%x][%X][%o][%#x][%#X][%#o][%#x][%#o][%x]\n", 255, 255, 8, 255, 255, 8, 0, 0, -1); exit() }"#,
            "[ff][FF][10][0xff][0XFF][010][0x0][00][ffffffffffffffff]\n",
            "",
            0,
        ),
        case(
            "width, -, 0, +, space, precision",
            r#"probe begin { printf("[%5d][%-5d][%05d][%+d][% d][%+d][%.3d][%8.3d][%-8.3d][%08.3d][%05d][%-05d]\n", 42, 42, 42, 42, 42, -42, 7, 7, -7, 7, -42, -42); exit() }"#,
            "[   42][42   ][00042][+42][ 42][-42][007][     007][-007    ][00000007][-0042][-42  ]\n",
            "",
            0,
        ),
        case(
            "hex with width and flags",
            r#"probe begin { printf("[%#10x][%#-10x][%#010x][%.8x][%6o]\n", 255, 255, 255, 171, 8); exit() }"#,
            "[      0xff][0xff      ][0x000000ff][000000ab][    10]\n",
            "",
            0,
        ),
        case(
            "%p as stap prints it",
            r#"probe begin { printf("[%p][%p][%18p][%-8p]\n", 0, 4096, 255, 1); exit() }"#,
            "[0x0][0x1000][              0xff][0x1     ]\n",
            "",
            0,
        ),
        case(
            "%s with width and precision",
            r#"probe begin { s = "hello"; printf("[%s][%10s][%-10s][%.2s][%5.1s][%.0s][%2s]\n", s, s, s, s, s, s, s); exit() }"#,
            "[hello][     hello][hello     ][he][    h][][hello]\n",
            "",
            0,
        ),
        case(
            "%c and %#c",
            r#"probe begin { printf("%c%c%c|%3c|%-3c|%#c|%#c|%#c\n", 72, 105, 33, 65, 66, 10, 39, 1); exit() }"#,
            "Hi!|  A|B  |\\n|\\'|\\001\n",
            "",
            0,
        ),
        case(
            "%% and sprintf",
            r#"probe begin { s = sprintf("%d%%|%s|%5s|", 50, "ok", "r"); println(s); exit() }"#,
            "50%|ok|    r|\n",
            "",
            0,
        ),
        case(
            "%b writes raw bytes",
            r#"probe begin { printf("%1b%1b%.1b\n", 72, 105, 33); exit() }"#,
            "Hi!\n",
            "",
            0,
        ),
    ]);
}

#[test]
fn arrays() {
    run_cases(&[
        case(
            "string keys; reading a missing element creates nothing",
            r#"global a probe begin { a["x"] = 1; y = a["nope"]; printf("%d %d %d\n", y, ["nope"] in a, ["x"] in a); foreach (k in a) n++; println(n); exit() }"#,
            "0 0 1\n1\n",
            "",
            0,
        ),
        case(
            "assigning 0 or \"\" stores the element",
            r#"global a, b probe begin { a[1] = 0; b["k"] = ""; printf("%d %d\n", 1 in a, ["k"] in b); exit() }"#,
            "1 1\n",
            "",
            0,
        ),
        case(
            "multiple keys, delete element, delete array",
            r#"global a probe begin { a["x", 1] = 10; a["x", 2] = 20; a["y", 1] = 30; delete a["x", 2]; foreach ([s, n] in a) printf("%s,%d=%d\n", s, n, a[s, n]); delete a; foreach ([s, n] in a) println("none"); a["z", 9] += 5; printf("%d\n", a["z", 9]); exit() }"#,
            "x,1=10\ny,1=30\n5\n",
            "",
            0,
        ),
        case(
            "insertion order; updates keep the position; re-added keys go last",
            r#"global a probe begin { a[3] = 1; a[1] = 1; a[2] = 1; a[3] = 5; delete a[1]; a[1] = 7; foreach (k in a) printf("%d=%d ", k, a[k]); println(""); exit() }"#,
            "3=5 2=1 1=7 \n",
            "",
            0,
        ),
        case(
            "foreach sorted on each key, on the value, and limit",
            r#"global a probe begin { a["b", 2] = 30; a["a", 3] = 10; a["c", 1] = 20; a["a", 1] = 40
              foreach ([s+, n] in a) printf("%s%d ", s, n); println("")
              foreach ([s-, n] in a) printf("%s%d ", s, n); println("")
              foreach ([s, n+] in a) printf("%s%d ", s, n); println("")
              foreach ([s, n-] in a) printf("%s%d ", s, n); println("")
              foreach (v = [s, n] in a+) printf("%d ", v); println("")
              foreach (v = [s, n] in a-) printf("%d ", v); println("")
              foreach (v = [s, n] in a- limit 2) printf("%s%d=%d ", s, n, v); println("")
              foreach ([s, n] in a limit 0) println("never"); exit() }"#,
            "a3 a1 b2 c1 \nc1 b2 a3 a1 \nc1 a1 b2 a3 \na3 b2 c1 a1 \n10 20 30 40 \n40 30 20 10 \na1=40 b2=30 \n",
            "",
            0,
        ),
        case(
            "declared size overflow",
            r#"global a[3] probe begin { for (i = 0; i < 5; i++) a[i] = i; println("no") } probe error { println(count()) } function count() { foreach (k in a) n++; return n }"#,
            "3\n",
            "ERROR: Array overflow, check size limit (3) near identifier 'a' at <input>:1:51\n",
            1,
        ),
        case_args(
            "MAXMAPENTRIES overflow",
            &["-D", "MAXMAPENTRIES=2"],
            r#"global a probe begin { a["x"] = 1; a["y"] = 2; a["z"] = 3 }"#,
            "",
            "ERROR: Array overflow, check MAXMAPENTRIES near identifier 'a'",
            1,
        ),
        case(
            "wrapping arrays drop the oldest entry",
            r#"global a[3]% probe begin { for (i = 0; i < 5; i++) a[i] = i * i; foreach (k in a) printf("%d=%d ", k, a[k]); println(""); exit() }"#,
            "2=4 3=9 4=16 \n",
            "",
            0,
        ),
    ]);
}

#[test]
fn statistics() {
    run_cases(&[
        case(
            "count, sum, min, max, avg",
            r#"global s probe begin { s <<< 5; s <<< -3; s <<< 10; s <<< 0; printf("%d %d %d %d %d\n", @count(s), @sum(s), @min(s), @max(s), @avg(s)); exit() }"#,
            "4 12 -3 10 3\n",
            "",
            0,
        ),
        case(
            "empty aggregates: @count and @sum are 0, @avg is an error",
            r#"global s probe begin { printf("%d %d\n", @count(s), @sum(s)); x = @avg(s); println(x) } probe end { println("not run") }"#,
            "0 0\n",
            "ERROR: empty aggregate near identifier '@avg' at <input>:1:67\n",
            1,
        ),
        case(
            "@variance",
            r#"global s probe begin { s <<< 1; s <<< 2; s <<< 3; s <<< 4; s <<< 10; println(@variance(s)); exit() }"#,
            "26\n",
            "",
            0,
        ),
        case(
            "@hist_log text",
            r#"global s probe begin { for (i = 0; i < 100; i++) s <<< i; s <<< 1000; print(@hist_log(s)); exit() }"#,
            "value |-------------------------------------------------- count\n    0 |@                                                   1\n    1 |@                                                   1\n    2 |@@                                                  2\n    4 |@@@@                                                4\n    8 |@@@@@@@@                                            8\n   16 |@@@@@@@@@@@@@@@@                                   16\n   32 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@                   32\n   64 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@               36\n  128 |                                                    0\n  256 |                                                    0\n  512 |@                                                   1\n 1024 |                                                    0\n 2048 |                                                    0\n\n",
            "",
            0,
        ),
        case(
            "@hist_log: negative buckets, elision, scaled bars (a count under the scale gets no @)",
            r#"global s probe begin { for (i = 0; i < 200; i++) s <<< 1; for (i = 0; i < 3; i++) s <<< 70000; s <<< -5; print(@hist_log(s)); exit() }"#,
            concat!(
                " value |-------------------------------------------------- count\n",
                "   -16 |                                                     0\n",
                "    -8 |                                                     0\n",
                "    -4 |                                                     1\n",
                "    -2 |                                                     0\n",
                "    -1 |                                                     0\n",
                "     0 |                                                     0\n",
                "     1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 200\n",
                "     2 |                                                     0\n",
                "     4 |                                                     0\n",
                "       ~\n",
                " 16384 |                                                     0\n",
                " 32768 |                                                     0\n",
                " 65536 |                                                     3\n",
                "131072 |                                                     0\n",
                "262144 |                                                     0\n",
                "\n",
            ),
            "",
            0,
        ),
        case(
            "@hist_linear text with underflow and overflow rows",
            r#"global h probe begin { for (i = 0; i < 20; i++) h <<< i * 7; h <<< -1; print(@hist_linear(h, 0, 100, 10)); exit() }"#,
            "value |-------------------------------------------------- count\n   <0 |@                                                  1\n    0 |@@                                                 2\n   10 |@                                                  1\n   20 |@@                                                 2\n   30 |@                                                  1\n   40 |@@                                                 2\n   50 |@                                                  1\n   60 |@                                                  1\n   70 |@@                                                 2\n   80 |@                                                  1\n   90 |@@                                                 2\n  100 |@                                                  1\n >100 |@@@@                                               4\n\n",
            "",
            0,
        ),
        case(
            "statistics arrays, foreach by value sorts on @count",
            r#"global s probe begin { s["a"] <<< 100; s["b"] <<< 1; s["b"] <<< 2; s["c"] <<< 5; s["c"] <<< 5; s["c"] <<< 5; foreach (k in s-) printf("%s %d %d\n", k, @count(s[k]), @sum(s[k])); printf("%d\n", @count(s["zz"])); exit() }"#,
            "c 3 15\nb 2 3\na 1 100\n0\n",
            "",
            0,
        ),
    ]);
}

#[test]
fn control_and_session() {
    run_cases(&[
        case(
            "exit() lets the handler finish, skips later begin probes, runs end",
            r#"probe begin { exit(); println("rest of this handler") } probe begin { println("next begin") } probe end { println("end") }"#,
            "rest of this handler\nend\n",
            "",
            0,
        ),
        case(
            "error() ends the session: end skipped, error probes run",
            r#"probe begin { println("one"); error("bad thing"); println("not reached") } probe begin { println("skipped") } probe end { println("end") } probe error { println("error probe") }"#,
            "one\nerror probe\n",
            "ERROR: bad thing\nWARNING: Number of errors: 1, skipped probes: 0\n",
            1,
        ),
        case(
            "error(\"\") says Unknown error.",
            r#"probe begin { error("") }"#,
            "",
            "ERROR: Unknown error.\n",
            1,
        ),
        case_args(
            "MAXERRORS lets the session go on",
            &["-D", "MAXERRORS=5"],
            r#"probe begin { error("e1") } probe begin { error("e2") } probe begin { println("third"); exit() } probe end { println("end") }"#,
            "third\nend\n",
            "ERROR: e1\nERROR: e2\nWARNING: Number of errors: 2, skipped probes: 0\n",
            1,
        ),
        case(
            "next leaves the handler",
            r#"probe begin { println("a"); if (1) next; println("no") } probe begin { println("b"); exit() }"#,
            "a\nb\n",
            "",
            0,
        ),
        case(
            "nested loops with break and continue",
            r#"probe begin { for (i = 0; i < 4; i++) { if (i == 1) continue; j = 0; while (1) { if (j >= i) break; printf("%d%d ", i, j); j++ } } println(""); exit() }"#,
            "20 21 30 31 32 \n",
            "",
            0,
        ),
        case(
            "calls eight deep",
            r#"function f1(x) { return x + 1 } function f2(x) { return f1(x) * 2 } function f3(x) { return f2(x) + 3 } function f4(x) { return f3(x) * 4 } function f5(x) { return f4(x) - 5 } function f6(x) { return f5(x) + 6 } function f7(x) { return f6(x) * 7 } function f8(s) { return sprintf("<%d>", f7(strlen(s))) } probe begin { println(f8("ab")); exit() }"#,
            "<259>\n",
            "",
            0,
        ),
        case(
            "recursion past MAXNESTING is an error",
            r#"function f(n) { return n <= 0 ? 0 : 1 + f(n - 1) } probe begin { println(f(9)); println(f(50)) }"#,
            "9\n",
            "ERROR: MAXNESTING exceeded near identifier 'f' at <input>:1:41\n",
            1,
        ),
        case(
            "MAXACTION exceeded",
            r#"probe begin { while (1) { x++ } } probe end { println("end not run") }"#,
            "",
            "ERROR: MAXACTION exceeded near identifier 'x' at <input>:1:27\n",
            1,
        ),
        case_args(
            "MAXACTION cannot be caught",
            &["-D", "MAXACTION=50"],
            r#"probe begin { try { for (i = 0; i < 100; i++) x++ } catch { println("caught") } println("after") }"#,
            "",
            "MAXACTION exceeded",
            1,
        ),
        case(
            "foreach sorted on an aggregate of a statistics array",
            r#"global s probe begin { s["x"] <<< 1; s["x"] <<< 1; s["x"] <<< 1; s["y"] <<< 100; s["z"] <<< 5; s["z"] <<< 50
              foreach (k in s @sum-) printf("%s=%d ", k, @sum(s[k])) println()
              foreach (k in s-) printf("%s=%d ", k, @count(s[k])) println()
              foreach (k in s @max+ limit 2) printf("%s=%d ", k, @max(s[k])) println()
              foreach (k in s @avg-) printf("%s=%d ", k, @avg(s[k])) println(); exit() }"#,
            "y=100 z=55 x=3 \nx=3 z=2 y=1 \nx=1 z=50 \ny=100 z=27 x=1 \n",
            "",
            0,
        ),
        case(
            "@variance with a bit shift",
            r#"global s probe begin { s <<< 1; s <<< 2; s <<< 10; println(@variance(s, 3)); exit() }"#,
            "24\n",
            "",
            0,
        ),
        case(
            "an aggregate sort on plain values is an error",
            r#"global a probe begin { a[1] = 2; foreach (k in a @sum-) println(k) }"#,
            "",
            "-e:1:34: error: '@sum' sorts a statistics array: 'a' holds plain values\n    global a probe begin { a[1] = 2; foreach (k in a @sum-) println(k) }\n                                     ^\n",
            1,
        ),
        case(
            "begin sequence numbers, pp(), a probe with two points",
            r#"probe begin(5) { println("five: " . pp()) } probe begin(-1) { println("minus one") } probe begin, end { println("both: " . pp()) } probe begin(5) { exit() }"#,
            "minus one\nboth: begin\nfive: begin(5)\nboth: end\n",
            "",
            0,
        ),
        case(
            "warnings go to stderr once each",
            r#"probe begin { warn("careful"); warn("careful"); warn("other\n"); println("out"); exit() }"#,
            "out\n",
            "WARNING: careful\nWARNING: other\n",
            0,
        ),
        case(
            "globals keep their initial values; locals start at 0 and \"\"",
            r#"global g = 7, t = "init" probe begin { printf("%d %s [%d][%s]\n", g, t, l, ls . ""); exit() }"#,
            "7 init [0][]\n",
            "",
            0,
        ),
        case(
            "user memory needs a target",
            r#"probe begin { println(user_int_error(4096)) }"#,
            "",
            "ERROR: user memory read in a begin/end probe needs -x",
            1,
        ),
        case(
            "module bias needs a target",
            r#"probe begin { println(__stapxx_module_bias("/bin/true")) }"#,
            "",
            "needs a target process (-x PID)",
            1,
        ),
        case(
            "stdout and stderr interleave in order",
            r#"probe begin { println("first"); warn("second"); println("third"); error("fourth") } probe error { println("fifth") }"#,
            "first\nthird\nfifth\n",
            "WARNING: second\nERROR: fourth\n",
            1,
        ),
    ]);
}

#[test]
fn timer_ticks_then_exit() {
    let start = Instant::now();
    let c = case(
        "timer.ms(100), exit after 3 ticks",
        r#"global n probe timer.ms(100) { n++; printf("tick %d %s\n", n, pp()); if (n == 3) exit() } probe end { printf("end after %d\n", n) }"#,
        "tick 1 timer.ms(100)\ntick 2 timer.ms(100)\ntick 3 timer.ms(100)\nend after 3\n",
        "",
        0,
    );
    check(&c).unwrap_or_else(|e| panic!("{e}"));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn two_timers_interleave_by_deadline() {
    let c = case(
        "timer.ms(30) and timer.ms(70)",
        r#"global n probe timer.ms(30) { print("a") } probe timer.ms(70) { print("B"); if (++n == 2) exit() } probe end { println("") }"#,
        // Deadlines: a at 30 60 90 120 150, B at 70 140; B's second run
        // exits before the a due at 150.
        "aaBaaB\n",
        "",
        0,
    );
    check(&c).unwrap_or_else(|e| panic!("{e}"));
}

/// Run `script` (whose first output line is `ready`, printed once its
/// signal handlers are in place), wait `delay` more, send `sig`, return
/// (status, the rest of stdout, stderr).
fn signal_when_ready(script: &str, delay: Duration, sig: i32) -> (Option<i32>, String, String) {
    use std::io::BufRead;
    let mut child = spawn(&[], script);
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    let _ = out.read_line(&mut first);
    assert_eq!(first, "ready\n");
    std::thread::sleep(delay);
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
    let (code, _, err) = finish(child, Duration::from_secs(20));
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    (code, rest, err)
}

#[test]
fn sigint_runs_end_probes() {
    let (code, out, err) = signal_when_ready(
        r#"probe begin { println("ready") } probe timer.s(60) {} probe end { println("bye") }"#,
        Duration::ZERO,
        libc::SIGINT,
    );
    assert_eq!(out, "bye\n", "{err}");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn busy_timers_do_not_starve_sigint() {
    let (code, out, err) = signal_when_ready(
        r#"global n probe begin { println("ready") } probe timer.us(1) { for (i = 0; i < 100; i++) n++ } probe timer.us(2) { n++ } probe end { printf("%d\n", n > 0) }"#,
        Duration::from_millis(300),
        libc::SIGINT,
    );
    assert_eq!((code, out.as_str()), (Some(0), "1\n"), "{err}");
}

#[test]
fn sigterm_runs_end_probes_without_timers() {
    let (code, out, err) = signal_when_ready(
        r#"probe begin { println("ready") } probe end { println("bye") }"#,
        Duration::ZERO,
        libc::SIGTERM,
    );
    assert_eq!(out, "bye\n", "{err}");
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn command_is_the_target_and_ends_the_session() {
    let o = bin()
        .args(["-c", "sh -c 'echo from-command'", "-e"])
        .arg(r#"probe begin { printf("target %d\n", target() > 0) } probe end { println("end") }"#)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let (code, out, err) = finish(o, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    // begin runs before the command is let go.
    assert_eq!(out, "target 1\nfrom-command\nend\n", "{err}");
}

#[test]
fn reads_of_a_target_process() {
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    let pid = sleeper.id().to_string();
    let bad = spawn(
        &["-x", &pid],
        r#"probe begin { printf("%d %d\n", target() > 0, user_long(8)); println(user_long_error(8)) }"#,
    );
    let (code, out, err) = finish(bad, Duration::from_secs(20));
    // user_long gives 0 on a fault; user_long_error is a probe error.
    assert_eq!(out, "1 0\n");
    assert!(
        err.contains(
            "ERROR: user long copy fault 0x8 [man error::fault] near identifier 'user_long_error'"
        ),
        "{err}"
    );
    assert_eq!(code, Some(1));
    let skip = spawn(
        &["-x", &pid, "--skip-badvars"],
        r#"probe begin { printf("%d [%s] %s\n", user_long_error(8), user_string(8), user_string(8, "dflt")); exit() }"#,
    );
    let (code, out, err) = finish(skip, Duration::from_secs(20));
    assert_eq!((code, out.as_str()), (Some(0), "0 [] dflt\n"), "{err}");
    // The two reads --skip-badvars hid are told (the one with a default
    // is no failure).
    assert_eq!(
        err,
        "WARNING: 2 skipped bad read(s): user memory read fault, 0 given (--skip-badvars)\n"
    );
    // The executable's load bias: its ELF header is mapped there.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe link");
    let script = format!(
        r#"probe begin {{ b = __stapxx_module_bias("{}"); printf("%d %d\n", b != 0, user_int(b) == 0x464c457f); exit() }}"#,
        exe.display()
    );
    let bias = spawn(&["-x", &pid], &script);
    let (code, out, err) = finish(bias, Duration::from_secs(20));
    assert_eq!((code, out.as_str()), (Some(0), "1 1\n"), "{err}");
    let missing = spawn(
        &["-x", &pid],
        r#"probe begin { println(__stapxx_module_bias("/no/such/lib.so")) }"#,
    );
    let (code, _, err) = finish(missing, Duration::from_secs(20));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("module /no/such/lib.so is not mapped in process"),
        "{err}"
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}
