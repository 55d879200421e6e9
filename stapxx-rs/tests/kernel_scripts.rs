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
        // The cases check values computed around probe errors: errors must
        // not end the session (stap's default MAXERRORS is 0; see
        // `the_first_probe_error_ends_the_session`).
        .args(["-D", "MAXERRORS=1000"])
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

/// Run a script that needs no target (host probes, or kernel probes that
/// end by themselves); returns stdout and stderr.
fn run_host(tag: &str, script: &str) -> (String, String) {
    run_host_with(tag, script, &[])
}

fn run_host_with(tag: &str, script: &str, args: &[&str]) -> (String, String) {
    let path = support::scratch().join(format!("ks_host_{tag}.stp"));
    std::fs::write(&path, script).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `script` with `-x` on a `dd` copying one byte at a time, a process
/// that lives in read/write system calls; returns stdout and stderr.
fn run_on_dd(tag: &str, script: &str) -> (String, String) {
    let mut dd = Command::new("dd")
        .args(["if=/dev/zero", "of=/dev/null", "bs=1", "count=1000000000"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Once it runs dd itself (a target that execs later ends the session,
    // and the child may still be this test binary for a moment).
    let exe = format!("/proc/{}/exe", dd.id());
    for _ in 0..200 {
        if std::fs::read_link(&exe).is_ok_and(|p| p.ends_with("dd")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let path = support::scratch().join(format!("ks_{tag}.stp"));
    std::fs::write(&path, script).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .arg(&path)
        .args(["-x", &dd.id().to_string()])
        .output()
        .unwrap();
    let _ = dd.kill();
    let _ = dd.wait();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A kernel probe that runs once, on work(0).
fn once(body: &str) -> String {
    format!("probe process(\"BIN\").function(\"work\") {{ if (u_register(\"rdi\") == 0) {{ {body} }} }}\n")
}

struct Case {
    name: &'static str,
    script: String,
    stdout: &'static str,
    /// The same statements as a host `begin` probe, for the differential
    /// check (None where the host rightly differs: see `host_script`).
    host: Option<String>,
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
        host: host_script(name, &g, body, end),
    }
}

/// Cases whose host run differs from the kernel's for a reason of the
/// probe's context, not of the compiler: what the host interpreter does in
/// a `begin` probe is stap's begin-probe behaviour there.
const KERNEL_ONLY: &[&str] = &[
    "div_zero_is_an_error",   // an error in `begin` ends the session
    "maxaction_is_an_error",  // (same as division by 0)
    "next_leaves_the_probe",  // `next` in `begin` skips only that probe
    "user_read_fault",        // no user memory to fault in `begin`
    "pid_matches_target",     // no target process in `begin`
    "execname",               // the host's own name in `begin`
    "foreach_ties_by_key",    // host ties keep insertion order, BPF maps have none
    "try_catches_a_bad_read", // no user memory in `begin`
];

/// The statements of a case run by the host interpreter in `begin`.
fn host_script(name: &str, globals: &str, body: &str, end: &str) -> Option<String> {
    if KERNEL_ONLY.contains(&name) {
        return None;
    }
    Some(format!(
        "{globals}probe begin {{ {body} }}\nprobe begin {{ exit() }}\nprobe end {{ {end} }}\n"
    ))
}

const HIST_1_TO_8: &str = "value |-------------------------------------------------- count
    0 |                                                   0
    1 |@                                                  1
    2 |@@                                                 2
    4 |@@@@                                               4
    8 |@                                                  1
   16 |                                                   0
   32 |                                                   0

";

const HIST_LINEAR_SQUARES: &str = "1240 38
value |-------------------------------------------------- count
    0 |@@@@                                               4
   20 |@@                                                 2
   40 |@                                                  1
   60 |@                                                  1
   80 |@                                                  1
  100 |@                                                  1

";

const HIST_LOG_SIGNED: &str = "  value |-------------------------------------------------- count
-262144 |                                                   0
-131072 |                                                   0
 -65536 |@                                                  1
 -32768 |                                                   0
 -16384 |                                                   0
        ~
    -16 |                                                   0
     -8 |                                                   0
     -4 |@                                                  1
     -2 |                                                   0
     -1 |                                                   0
      0 |@                                                  1
      1 |                                                   0
      2 |@                                                  1
      4 |                                                   0
      8 |                                                   0
        ~
    128 |                                                   0
    256 |                                                   0
    512 |@                                                  1
   1024 |                                                   0
   2048 |                                                   0

";

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
        // `*`: the width and precision from the arguments (a negative
        // width left-justifies, a negative precision is none), as in C.
        case("sprintf_star", "s", "s = sprintf(\"[%*d|%-*s|%*s|%.*s|%-*.*s|%*x|%.*s]\", 5, 42, 4, \"ab\", -4, \"cd\", 2, \"xyz\", 6, 1, \"pq\", 1, 255, -1, \"all\")", "printf(\"%s\\n\", s)", "[   42|ab  |cd  |xy|p     |ff|all]\n"),
        case("sprint", "s", "s = sprint(1, \"a\", -2) . sprintln(\"x\") . sprint()", "printf(\"%s\", s)", "1a-2x\n"),
        // Left to right, not overlapping; an empty `old` changes nothing.
        case("str_replace", "s", "s = str_replace(\"aXbXc\", \"X\", \"--\") . \"|\" . str_replace(\"hello\", \"\", \"Z\") . \"|\" . str_replace(\"aaaa\", \"aa\", \"b\") . \"|\" . str_replace(\"abc\", \"abcd\", \"x\") . \"|\" . str_replace(\"xyzxyz\", \"xyz\", \"\") . \"|\"", "printf(\"%s\\n\", s)", "a--b--c|hello|bb|abc||\n"),
        case("sprintf_c_pct", "s", "s = sprintf(\"%c%c%%\", 72, 105)", "printf(\"%s\\n\", s)", "Hi%\n"),
        case("sprintf_p", "s", "s = sprintf(\"%p|%p\", 4096, 0)", "printf(\"%s\\n\", s)", "0x1000|0x0\n"),
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
        // print/println take any number of arguments, printed back to back.
        case("println_several", "", "println(\"a\", 5, \"b\"); print(); print(1, 2); println()", "", "a5b\n12\n"),
        case("loop_break", "n", "for (i = 0; ; i++) { if (i == 7) break; n++ }", "printf(\"%d\\n\", n)", "7\n"),
        // 27000 increments: 2 statements each, under the default MAXACTION.
        case("nested_loops_3x30", "n", "for (i = 0; i < 30; i++) for (j = 0; j < 30; j++) for (k = 0; k < 30; k++) n++", "printf(\"%d\\n\", n)", "27000\n"),
        // 1 for the loop, then 2 per iteration (the iteration and `n++`).
        case("maxaction_is_an_error", "n", "while (1) n++", "printf(\"%d\\n\", n)", "49999\n"),
        case("next_leaves_the_probe", "a, b", "a = 1; next; b = 1", "printf(\"%d %d\\n\", a, b)", "1 0\n"),
        case("user_read_fault", "x, y", "x = 1; y = user_long_error(16); x = 2", "printf(\"%d %d\\n\", x, y)", "1 0\n"),
        case("user_read_fault_gives_0", "x, y", "x = 1; y = user_long(16) + user_int(8) + user_char(1); x = 2", "printf(\"%d %d\\n\", x, y)", "2 0\n"),
        case("printf_from_the_kernel", "", "printf(\"k %d %s\\n\", 5, \"five\")", "printf(\"end\\n\")", "k 5 five\nend\n"),
        case("pid_matches_target", "a", "a = pid() == target()", "printf(\"%d\\n\", a)", "1\n"),
        case("execname", "s", "s = execname()", "printf(\"%s\\n\", s)", "calls_ks_execna\n"),
        case("string_compare_computed", "r", "a = \"hello\"; b = \"help\"; r = sprintf(\"%d%d%d%d%d\", a < b, a > b, a == b . \"\", (a . \"\") == a, sprintf(\"v%d\", 1) < sprintf(\"v%d\", 2))", "printf(\"%s\\n\", r)", "10011\n"),
        case("isinstr", "r", "r = isinstr(\"hello world\", \"o w\") * 100 + isinstr(\"hello\", \"hellox\") * 10 + isinstr(\"abc\", \"\")", "printf(\"%d\\n\", r)", "101\n"),
        case("isinstr_long_needle", "r", "h = \"\"; for (i = 0; i < 40; i++) h .= \"abcdefghij\"; r = isinstr(h, \"ghijabcdefghijabcdefg\") + 2 * isinstr(h, \"ghijabcdefghijabcdefx\")", "printf(\"%d\\n\", r)", "1\n"),
        case("strtol", "a, b, c, d", "a = strtol(\"-0x1F\", 16); b = strtol(\"0755\", 0); c = strtol(\"12abz\", 36); d = strtol(\"42xyz\", 10)", "printf(\"%d %d %d %d\\n\", a, b, c, d)", "-31 493 1786319 42\n"),
        case("foreach_unsorted_sum", "a, n", "a[1] = 1; a[2] = 2; a[3] = 3; foreach (k in a) n += k * a[k]", "printf(\"%d\\n\", n)", "14\n"),
        case("foreach_keys_asc_desc", "a, s", "for (i = 5; i >= 1; i--) a[i] = i * i; foreach (k+ in a) s .= sprintf(\"%d,\", k); foreach (k- in a) s .= sprintf(\"%d,\", k)", "printf(\"%s\\n\", s)", "1,2,3,4,5,5,4,3,2,1,\n"),
        case("foreach_value_desc_limit", "a, s", "a[1] = 5; a[2] = 50; a[3] = 20; a[4] = 40; foreach (k in a- limit 2) s .= sprintf(\"%d=%d,\", k, a[k])", "printf(\"%s\\n\", s)", "2=50,4=40,\n"),
        case("foreach_unsorted_limit", "a, n", "for (i = 0; i < 10; i++) a[i] = 1; foreach (k in a limit 4) n++", "printf(\"%d\\n\", n)", "4\n"),
        case("foreach_ties_by_key", "a, s", "a[9] = 1; a[3] = 1; a[5] = 0; foreach (v = [k] in a+) s .= sprintf(\"%d:%d,\", k, v)", "printf(\"%s\\n\", s)", "5:0,3:1,9:1,\n"),
        case("foreach_string_keys_desc", "a, s", "a[\"pear\"] = 1; a[\"apple\"] = 2; a[\"fig\"] = 3; a[\"figs\"] = 4; foreach (k- in a) s .= k . \",\"", "printf(\"%s\\n\", s)", "pear,figs,fig,apple,\n"),
        case("foreach_string_values", "a, s", "a[1] = \"b\"; a[2] = \"a\"; a[3] = \"c\"; foreach (v = [k] in a+) s .= sprintf(\"%d%s,\", k, v)", "printf(\"%s\\n\", s)", "2a,1b,3c,\n"),
        case("foreach_second_key_column", "a, s", "a[\"x\", 3] = 1; a[\"y\", 1] = 1; a[\"z\", 2] = 1; foreach ([p, q+] in a) s .= p", "printf(\"%s\\n\", s)", "yzx\n"),
        case("foreach_break_continue", "a, s", "for (i = 1; i <= 6; i++) a[i] = i; foreach (k+ in a) { if (k == 2) continue; if (k == 5) break; s .= sprintf(\"%d,\", k) }", "printf(\"%s\\n\", s)", "1,3,4,\n"),
        case("foreach_nested", "a, b, s", "a[1] = 1; a[2] = 2; b[10] = 1; b[20] = 1; foreach (i+ in a) foreach (j+ in b) s .= sprintf(\"%d-%d,\", i, j)", "printf(\"%s\\n\", s)", "1-10,1-20,2-10,2-20,\n"),
        case("delete_whole_array", "a, n", "for (i = 0; i < 50; i++) a[i] = i; delete a; a[7] = 7; foreach (k in a) n++", "printf(\"%d %d %d\\n\", n, 7 in a, 8 in a)", "1 1 0\n"),
        case("delete_string_keyed_array", "a, n", "a[\"x\", 1] = \"v\"; a[\"y\", 2] = \"w\"; delete a; foreach ([p, q] in a) n++", "printf(\"%d\\n\", n)", "0\n"),
        case("try_catches_division", "s", "try { y = 0; x = 5 / y; s = sprintf(\"not here %d\", x) } catch (m) { s = \"caught: \" . m }", "printf(\"%s\\n\", s)", "caught: division by 0\n"),
        case("try_catches_error", "s, n", "try { error(\"boom\"); n = 1 } catch (m) { s = m }; n += 10", "printf(\"%s %d\\n\", s, n)", "boom 10\n"),
        case("try_catches_a_bad_read", "n", "try { x = user_long_error(16); n = x } catch { n = 1 }; n += 10", "printf(\"%d\\n\", n)", "11\n"),
        case("global_string_append", "s", "for (i = 0; i < 3; i++) s .= \"ab\"", "printf(\"%s\\n\", s)", "ababab\n"),
        case("sprintf_i_X", "s", "s = sprintf(\"%i|%X|%#X|%-4i|\", -5, 3054, 3054, 7)", "printf(\"%s\\n\", s)", "-5|BEE|0XBEE|7   |\n"),
        case("regex_match", "r", "s = \"nginx: worker process\"; r = sprintf(\"%d%d%d%d%d%d\", s =~ \"worker\", s =~ \"^worker\", s !~ \"master\", \"foo.lua:12\" =~ \"\\\\.lua:[0-9]+$\", \"\" =~ \"^$\", \"abc\" =~ \"^(ab|cd)+$\")", "println(r)", "101110\n"),
        case("regex_classes_and_counts", "r", "r = (\"ab12\" =~ \"^[[:alpha:]]+[0-9]{2}$\") * 10 + (\"ab123\" =~ \"^[[:alpha:]]+[0-9]{2}$\")", "println(r)", "10\n"),
        case("stats_read_in_the_probe", "s, a, r", "for (i = 1; i <= 10; i++) s <<< i; a[\"x\"] <<< -4; a[\"x\"] <<< 9; r = sprintf(\"%d %d %d %d %d|%d %d %d %d\", @count(s), @sum(s), @min(s), @max(s), @avg(s), @count(a[\"x\"]), @min(a[\"x\"]), @max(a[\"x\"]), @avg(a[\"x\"]))", "println(r)", "10 55 1 10 5|2 -4 9 2\n"),
        case("stats_empty_aggregate", "e, r", "r = sprintf(\"%d %d\", @count(e), @sum(e)); try { x = @max(e); r .= sprint(x) } catch (m) { r .= \" \" . m }", "println(r)", "0 0 empty aggregate\n"),
        case("stats_variance_and_linear", "s", "for (i = 1; i <= 10; i++) s <<< i * i", "printf(\"%d %d\\n\", @variance(s), @avg(s)); print(@hist_linear(s, 0, 100, 20))", HIST_LINEAR_SQUARES),
        case("hist_log_negative_values", "s", "s <<< -5; s <<< 0; s <<< 3; s <<< 1000; s <<< -70000", "print(@hist_log(s))", HIST_LOG_SIGNED),
        case("crement_globals_and_elements", "g, a, b, c, m", "g = 5; a = g++; b = ++g; c = g--; m[1] = 3; a += m[1]++; b += ++m[2]", "printf(\"%d %d %d %d %d %d\\n\", a, b, c, g, m[1], m[2])", "8 8 7 6 4 1\n"),
        case("hist_log_of_kernel_stats", "h", "for (i = 1; i <= 8; i++) h <<< i", "print(@hist_log(h))", HIST_1_TO_8),
    ]
}

/// A case whose script also defines `functions` (before its probes).
fn case_with_functions(
    name: &'static str,
    functions: &str,
    globals: &str,
    body: &str,
    end: &str,
    stdout: &'static str,
) -> Case {
    let c = case(name, globals, body, end, stdout);
    Case {
        script: format!("{functions}{}", c.script),
        host: c.host.map(|h| format!("{functions}{h}")),
        ..c
    }
}

/// Lengths of string keys around the key classes' widths (64, 128, ...,
/// 4096 with MAXSTRINGLEN 4096): each key goes to the narrowest class that
/// holds it with its NUL, so 63 and 64 bytes are in different maps. The
/// scripts compute them in a loop (`len_of(j)`), so that every access is
/// one site in the code.
const KEY_LENGTHS: [usize; 14] = [
    0, 63, 64, 127, 128, 255, 256, 511, 512, 1023, 1024, 2047, 2048, 4095,
];

/// `rep(n)`: n times "z"; `len_of(j)`: [`KEY_LENGTHS`]`[j]`.
const REP: &str = "function rep:string(len) { r = \"\"; for (i = 0; i < len; i++) r .= \"z\"; return r }\n\
function len_of(j) { if (j == 0) return 0; if (j % 2) return (32 << ((j + 1) / 2)) - 1; return 32 << (j / 2) }\n";

/// String-keyed arrays and statistics with keys of every class: each
/// element is found again, in place, by lookups, increments, `in`,
/// `delete`, `<<<` and `@count` in the kernel, and read back whole by the
/// host; the entry count keeps an array's capacity across its classes.
fn string_key_cases() -> Vec<Case> {
    let body = "for (j = 0; j < 14; j++) { l = len_of(j); k = rep(l); a[k] += l; a[k]++; \
                s[k] <<< l; s[k] <<< 1; q += @count(s[k]); \
                b[k, l] = sprintf(\"%d\", l); t[sprintf(\"%d\", l), k] = l; x[k] = \"v\"; y .= x[k]; \
                if (l % 2) delete a[k]; p += k in a }";
    let end = "foreach (k+ in a) printf(\"a %d %d\\n\", strlen(k), a[k]); \
               foreach (k+ in s) printf(\"s %d %d %d\\n\", strlen(k), @count(s[k]), @sum(s[k])); \
               foreach ([k+, l] in b) printf(\"b %d %d %s\\n\", strlen(k), l, b[k, l]); \
               foreach ([n+, k] in t) printf(\"t %s %d %d\\n\", n, strlen(k), t[n, k]); \
               printf(\"p %d q %d y %d\\n\", p, q, strlen(y))";
    let mut want = String::new();
    for l in KEY_LENGTHS.iter().filter(|l| *l % 2 == 0) {
        want.push_str(&format!("a {l} {}\n", l + 1));
    }
    for l in KEY_LENGTHS {
        want.push_str(&format!("s {l} 2 {}\n", l + 1));
    }
    for l in KEY_LENGTHS {
        want.push_str(&format!("b {l} {l} {l}\n"));
    }
    let mut by_text: Vec<String> = KEY_LENGTHS.iter().map(|l| l.to_string()).collect();
    by_text.sort();
    for n in by_text {
        want.push_str(&format!("t {n} {n} {n}\n"));
    }
    want.push_str("p 7 q 28 y 14\n");
    vec![
        case_with_functions(
            "string_keys_of_every_class",
            REP,
            "a, s, b, t, x, y, p, q",
            body,
            end,
            Box::leak(want.into_boxed_str()),
        ),
        // Three places: a fourth key fails whatever its class; a replaced
        // value takes no place; a deleted key frees one.
        case_with_functions(
            "array_capacity_across_classes",
            REP,
            "c[3], caught, n",
            "c[\"a\"] = 1; c[rep(100)] = 2; c[rep(1000)] = 3; \
             try { c[rep(200)] = 4 } catch { caught++ } \
             c[rep(100)] = 5; delete c[\"a\"]; c[rep(300)] = 6; \
             try { c[rep(70)] = 7 } catch { caught++ }",
            "foreach (k+ in c) { n++; printf(\"%d %d\\n\", strlen(k), c[k]) } printf(\"%d %d\\n\", caught, n)",
            "100 5\n300 6\n1000 3\n2 3\n",
        ),
        case_with_functions(
            "element_appended_to_a_string",
            REP,
            "a, s, g",
            "a[\"x\"] = \"ab\"; a[rep(300)] = \"cd\"; s = \"1\"; s .= a[\"x\"]; s .= a[\"missing\"]; s .= a[\"x\"]; g = \"2\"; g .= a[rep(300)]",
            "printf(\"%s %s\\n\", s, g)",
            "1abab 2cd\n",
        ),
        // A parameter hides the global of its name, as in stap.
        case_with_functions(
            "parameter_hides_a_global",
            "function f(n) { return n * 2 }\nfunction g(s:string) { return s . \"!\" }\n",
            "n, s, r, t",
            "n = 7; s = \"g\"; r = f(3); t = g(\"x\")",
            "printf(\"%d %s %d %s\\n\", r, t, n, s)",
            "6 x! 7 g\n",
        ),
        case(
            "string_appended_to_itself",
            "s, t",
            "s = \"ab\"; s .= s; s .= s; t = \"x\"; t .= t . t",
            "printf(\"%s %s\\n\", s, t)",
            "abababab xxx\n",
        ),
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
    script.push_str("function fails() { error(\"deep\") }\n");
    let body = "r = f1(0); s = greet(\"bob\"); try { fails() } catch (m) { s .= \" \" . m }";
    let end = "probe end { printf(\"%d %s\\n\", r, s) }\n";
    let host = format!("{script}probe begin {{ {body} }}\nprobe begin {{ exit() }}\n{end}");
    script.push_str(&once(body));
    script.push_str(end);
    Case {
        name: "calls_8_deep",
        script,
        stdout: "36 hi bob deep\n",
        host: Some(host),
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
    all.extend(string_key_cases());
    for c in &all {
        let (out, err) = run(c.name, &c.script, &[]);
        if out != c.stdout {
            failures.push(format!(
                "{}: got {out:?}, want {:?}\n  stderr: {err}",
                c.name, c.stdout
            ));
        }
        // Differential: the host interpreter runs the same IR to the same output.
        if let Some(host) = &c.host {
            let (hout, herr) = run_host(c.name, host);
            if hout != out {
                failures.push(format!(
                    "{}: host gave {hout:?}, kernel {out:?}\n  host stderr: {herr}",
                    c.name
                ));
            }
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
        err.contains("WARNING: 3 probe error(s): division by 0"),
        "{err}"
    );
    assert!(
        err.contains("WARNING: Number of errors: 3, skipped probes: 0"),
        "{err}"
    );
    // Counts by kind, when MAXERRORS lets the session run on.
    let script = "global x\n\
        probe process(\"BIN\").function(\"work\") {\n\
          y = 0; if (u_register(\"rdi\") == 1) { x = 5 / y } else { x = user_long_error(16) } }\n\
        probe end { printf(\"%d\\n\", x) }\n";
    let (out, err) = run("error_kinds", script, &[]);
    assert_eq!(out, "0\n");
    assert_eq!(
        err,
        "WARNING: 2 probe error(s): user memory read fault\n\
         WARNING: 1 probe error(s): division by 0\n\
         WARNING: Number of errors: 3, skipped probes: 0\n"
    );
    // With --skip-badvars a faulting read gives 0 (or "") and no error,
    // but the reads are counted and told.
    let script = "global y, s\n\
        probe process(\"BIN\").function(\"work\") { y = user_long_error(16) + 1; s = user_string(8) }\n\
        probe end { printf(\"%d\\n\", y) }\n";
    let (out, err) = run("skip_badvars", script, &["--skip-badvars"]);
    assert_eq!(out, "1\n");
    assert_eq!(
        err,
        "WARNING: 6 skipped bad read(s): user memory read fault, 0 given (--skip-badvars)\n"
    );
    // user_long_warn warns and gives 0; no probe error.
    let script = "global y\n\
        probe process(\"BIN\").function(\"work\") { y = user_long_warn(24) + 2 }\n\
        probe end { printf(\"%d\\n\", y) }\n";
    let (out, err) = run("warn_read", script, &[]);
    assert_eq!(out, "2\n");
    assert!(
        err.contains("WARNING: user long copy fault 0x18 [man error::fault]"),
        "{err}"
    );
    assert!(!err.contains("Number of errors"), "{err}");
}

/// Three nested loops in a sampling handler, a million iterations: MAXACTION
/// bounds the whole run (2 per increment here), so it is raised to let them
/// all run.
#[test]
fn nested_loops_in_a_timer_profile_handler() {
    if !support::is_root() {
        support::missing("root (BPF and perf events)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let script = "global n, done\n\
        probe timer.profile { if (cpu() == 0 && !done) { done = 1\n\
          for (i = 0; i < 100; i++) for (j = 0; j < 100; j++) for (k = 0; k < 100; k++) n++ } }\n\
        probe timer.ms(500) { exit() }\n\
        probe end { printf(\"%d %d\\n\", done, n) }\n";
    let (out, err) = run_host_with("profile_loops", script, &["-D", "MAXACTION=2100000"]);
    assert_eq!(out, "1 1000000\n", "{err}");
    assert!(!err.contains("error"), "{err}");
}

/// A sample that hits a system call still sees the task's user registers
/// (`uaddr`, `u_register`), as in stap, while `user_mode()` is 0 and
/// `addr()` is the kernel address. `dd` with 1-byte blocks lives in
/// read/write system calls.
#[test]
fn kernel_mode_samples_read_the_user_registers() {
    if !support::is_root() {
        support::missing("root (BPF and perf events)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let script = "global k, u, ua, rsp, kaddr\n\
        probe timer.profile { if (pid() == target()) {\n\
          if (user_mode()) u++\n\
          else { k++; if (uaddr() != 0 && uaddr() < 0x800000000000) ua++;\n\
                 if (u_register(\"rsp\") > 0x7f0000000000 && u_register(\"rsp\") < 0x800000000000) rsp++;\n\
                 if (addr() > 0xffff800000000000) kaddr++ } } }\n\
        probe timer.ms(700) { exit() }\n\
        probe end { printf(\"%d %d %d %d %d\\n\", k > 10, k == ua, k == rsp, k == kaddr, u >= 0) }\n";
    let (out, err) = run_on_dd("kernel_mode", script);
    assert_eq!(out, "1 1 1 1 1\n", "{err}");
}

/// `--dump-bpf` writes an object libbpf loads, for a script whose programs
/// use the globals and errors maps, strings, loops and foreach callbacks.
#[test]
fn dump_bpf_writes_an_object_libbpf_loads() {
    if !support::is_root() || !support::have_tool("bpftool") {
        support::missing("root and bpftool");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = support::scratch();
    let script = dir.join("ks_dump.stp");
    std::fs::write(
        &script,
        "global n, s, a\n\
         probe timer.profile { n++; s .= \"x\"; a[cpu()] = n; foreach (k in a) n += a[k]; if (s == execname()) n = 0 }\n",
    )
    .unwrap();
    let obj = dir.join("ks_dump.o");
    let _ = std::fs::remove_file(&obj);
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .arg(&script)
        .args(["-p3", "--dump-bpf"])
        .arg(&obj)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pins = std::path::PathBuf::from(format!("/sys/fs/bpf/stx_dump_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&pins);
    let load = Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(&obj)
        .arg(&pins)
        .output()
        .unwrap();
    let pinned: Vec<String> = std::fs::read_dir(&pins)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&pins);
    assert!(
        load.status.success(),
        "bpftool prog loadall failed: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    assert_eq!(pinned, vec!["stx_p0".to_string()]);
}

/// `probefunc()` of a sample in a system call is the kernel function (from
/// /proc/kallsyms), as stap's `symname(addr())`; in user code it is the
/// user function (`dd`'s own symbols are stripped: a hex address then).
#[test]
fn probefunc_names_kernel_functions() {
    if !support::is_root() {
        support::missing("root (BPF and perf events)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let script = "global f\n\
        probe timer.profile { if (pid() == target() && !user_mode()) f[probefunc()]++ }\n\
        probe timer.ms(700) { exit() }\n\
        probe end { foreach (n in f) println(n); println(symname(0)) }\n";
    let (stdout, err) = run_on_dd("probefunc", script);
    let mut lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.pop(), Some("0x0"), "{stdout}{err}");
    assert!(lines.len() >= 2, "too few kernel functions: {stdout}");
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let text: std::collections::HashSet<&str> = kallsyms
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (_, kind, name) = (it.next()?, it.next()?, it.next()?);
            matches!(kind, "t" | "T").then_some(name)
        })
        .collect();
    for name in lines {
        assert!(text.contains(name), "{name} is not a kernel text symbol");
    }
}

/// A host timer that resets a counter the kernel probes keep adding to
/// (the ngx-rps pattern) loses no increment: the host's write goes back as
/// a difference. `c` counts the same events without ever being reset.
#[test]
fn host_resets_keep_concurrent_kernel_increments() {
    if !support::is_root() {
        support::missing("root (BPF and perf events)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Ticks on every CPU at once, and busy CPUs, make the race likely.
    let busy = support::busy_cpus(2);
    let script = "global n, c, total, resets\n\
        probe timer.profile { n++; c++ }\n\
        probe timer.ms(7) { total += n; n = 0; resets++ }\n\
        probe timer.ms(1500) { exit() }\n\
        probe end { printf(\"%d %d\\n\", total + n == c, resets > 20) }\n";
    let (out, err) = run_host("host_reset_race", script);
    drop(busy);
    assert_eq!(out, "1 1\n", "{err}");
}

/// The timer turn that ends the session keeps its writes: a handler that
/// prints a kernel counter, zeroes it and calls exit() (every "print the
/// count, reset it" sample stopped by a time limit) leaves the `end` probe
/// only what came after, here nothing. Its writes used to be dropped, and
/// `end` saw the three calls again.
#[test]
fn the_last_timer_turn_keeps_its_resets() {
    if !support::is_root() {
        support::missing("root (BPF and uprobes)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let script = "global n, seen\n\
        probe process(\"BIN\").function(\"work\") { n++ }\n\
        probe timer.ms(10) { if (n == 3 && !seen) { seen = 1; printf(\"saw %d\\n\", n); n = 0; exit() } }\n\
        probe end { printf(\"end %d\\n\", n) }\n";
    let (out, err) = run("last_turn_resets", script, &[]);
    assert_eq!(out, "saw 3\nend 0\n", "{err}");
}

/// The builtins that need load-time facts, in a uprobe: `ppid()` (the
/// kernel's BTF), `umodname()` (the target's mappings),
/// `user_string_quoted()` (the address in hex when it cannot be read, as
/// the tree's `user_string_quoted` gives it), `printd`/`printdln`;
/// `usymname()` of an
/// address in no function (the stack) is the address in hex.
#[test]
fn task_and_module_builtins() {
    if !support::is_root() {
        support::missing("root (BPF and uprobes)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let script = once(
        "printf(\"%d\\n\", ppid()); println(umodname(uaddr())); println(umodname(0));\n\
         println(user_string_quoted(&@var(\"quoted_sample\"))); println(user_string_quoted(0));\n\
         printd(\"-\", 1, \"a\", 2); printdln(\", \", \"x\", 3);\n\
         println(usymname(uaddr())); sp = u_register(\"rsp\"); println(usymname(sp) == sprintf(\"%p\", sp))",
    );
    let (out, err) = run("task_builtins", &script, &[]);
    let bin = support::c_fixture("calls.c", "calls_ks_task_builtins", &["-g", "-O2"]);
    let want = format!(
        "{}\n{}\n<unknown>\n\"hi\\t\\\"there\\\"\\n\\001\\\\\"\n0x0\n1-a-2x, 3\nwork\n1\n",
        std::process::id(),
        bin.display()
    );
    assert_eq!(out, want, "{err}");
}

/// As in stap, a probe error beyond MAXERRORS (default 0) ends the session:
/// the error is shown with its place in the script, the `end` probes are
/// skipped, the `error` probes run, and the exit status is 1.
#[test]
fn the_first_probe_error_ends_the_session() {
    if !support::is_root() {
        support::missing("root (BPF and perf events)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let path = support::scratch().join("ks_maxerrors.stp");
    std::fs::write(
        &path,
        "global n, x\nprobe timer.profile {\n  n++\n  x = 5 / (n - n)\n}\n\
         probe timer.s(5) { exit() }\n\
         probe end { println(\"end ran\") }\n\
         probe error { println(\"error probe ran\") }\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .arg(&path)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "error probe ran\n", "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("ERROR: division by 0 near operator '/' at ")
            && first.ends_with("ks_maxerrors.stp:4:9"),
        "{stderr}"
    );
    assert!(stderr.contains("WARNING: Number of errors: "), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "did not stop at the error"
    );
}

/// `x = g++` in probes on every CPU at once loses no increment (an atomic
/// fetch-and-add), like the statement form `c++`.
#[test]
fn increments_used_as_values_are_atomic() {
    if !support::is_root() {
        support::missing("root (BPF and perf events)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let busy = support::busy_cpus(2);
    let script = "global n, c, last\n\
        probe timer.profile { x = n++; if (x >= last) last = x; c++ }\n\
        probe timer.ms(1500) { exit() }\n\
        probe end { printf(\"%d %d\\n\", n == c, c > 100) }\n";
    let (out, err) = run_host("atomic_fetch", script);
    drop(busy);
    assert_eq!(out, "1 1\n", "{err}");
}
