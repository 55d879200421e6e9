//! SDT (USDT) marker probes run for real: `process("P").mark("name")` on
//! `tests/fixtures/sdt.c` built with `cc -g -O0` and `-O2` (the operands
//! differ: stack slots and `%rax` at -O0, callee-saved registers and
//! `sym(%rip)` at -O2), and on Debian's python3.11. The fixture's header
//! comment is the oracle for every argument; its own `guarded G` line says
//! whether the semaphore of `stx:guarded` was raised.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const OPTS: [&str; 2] = ["-O0", "-O2"];

/// The fixture built with `cc -g OPT` (the later `-O2` wins over
/// `c_fixture`'s `-O0`).
fn fixture(opt: &str) -> PathBuf {
    support::c_fixture("sdt.c", &format!("sdt{opt}"), &[opt])
}

fn stapxx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
}

/// `stapxx-rs -c "BIN N" -e SCRIPT`, `BIN` in the script standing for the
/// fixture: (status, stdout, stderr). The fixture writes its `guarded G`
/// line to the same stdout.
fn run(opt: &str, n: u32, script: &str) -> (i32, String, String) {
    let bin = fixture(opt);
    support::stapxx_c(
        &format!("{} {n}", bin.display()),
        &script.replace("BIN", &bin.display().to_string()),
    )
}

/// The lines of `out` that start with one of `prefixes`, in order.
fn lines_with<'a>(out: &'a str, prefixes: &[&str]) -> Vec<&'a str> {
    out.lines()
        .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
        .collect()
}

/// The value of `stx_counter` at the markers of iteration `i` of the first
/// round: the sum of 0..i-1.
fn counter_at(i: i64) -> i64 {
    (0..i).sum()
}

/// A symbol's link-time address, from `nm` (package binutils).
fn symbol(bin: &Path, name: &str) -> u64 {
    let out = support::must(Command::new("nm").arg(bin));
    out.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[2] == name).then(|| u64::from_str_radix(f[0], 16).unwrap())
        })
        .unwrap_or_else(|| panic!("no symbol {name} in {}", bin.display()))
}

#[test]
fn every_argument_of_every_marker() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    const N: i64 = 4;
    let script = r#"
probe process("BIN").mark("tick") { printf("T [%s] [%s] [%s]\n", $$name, $$provider, $$parms) }
probe process("BIN").mark("ints_signed") { printf("S %d %d %d %d | %s\n", $arg1, $arg2, $arg3, $arg4, $$parms) }
probe process("BIN").mark("ints_unsigned") { printf("U %d %d %d %u %x %d | %s\n", $arg1, $arg2, $arg3, $arg4, $arg4, $arg4, $$parms) }
probe process("BIN").mark("pointers") { printf("P %d %d\n", $arg1 - $arg2, user_long($arg1)) }
probe process("BIN").mark("many") { printf("M %d %d %d %d %d %d %d %d | %s\n", $arg1, $arg2, $arg3, $arg4, $arg5, $arg6, $arg7, $arg8, $$parms) }
probe process("BIN").mark("global") { printf("G %d\n", $arg1) }
probe process("BIN").mark("constants") { printf("C %d %d %s %s %s\n", $arg1, $arg2, $$name, $$provider, $$parms) }
"#;
    for opt in OPTS {
        let bin = fixture(opt);
        // Both pointers are into the same module, so their difference is
        // the link-time one wherever the module is loaded.
        let delta = symbol(&bin, "stx_counter") as i64 - symbol(&bin, "stx_greeting") as i64;
        let (code, out, err) = run(opt, N as u32, script);
        assert_eq!(code, 0, "{opt}: {err}\n{out}");
        let mut want = Vec::new();
        for i in 0..N {
            want.push("T [tick] [stx] []".to_string());
            let s = [-1 - i, -1000 - i, -100000 - i, -10_000_000_000 - i];
            want.push(format!(
                "S {} {} {} {} | arg1={:#x} arg2={:#x} arg3={:#x} arg4={:#x}",
                s[0], s[1], s[2], s[3], s[0], s[1], s[2], s[3]
            ));
            // stap's longs are signed 64-bit: the top bit set prints
            // negative with %d, as the unsigned pattern with %u and %x.
            let top = 0x8000_0000_0000_0000u64 + i as u64;
            let u = [200 + i, 60000 + i, 4_000_000_000 + i];
            want.push(format!(
                "U {} {} {} {top} {top:x} {} | arg1={:#x} arg2={:#x} arg3={:#x} arg4={top:#x}",
                u[0], u[1], u[2], top as i64, u[0], u[1], u[2]
            ));
            want.push(format!("P {delta} {}", counter_at(i)));
            let m: Vec<i64> = (i..i + 8).collect();
            let parms: Vec<String> = m
                .iter()
                .enumerate()
                .map(|(k, v)| format!("arg{}={v:#x}", k + 1))
                .collect();
            want.push(format!(
                "M {} | {}",
                m.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                parms.join(" ")
            ));
            want.push(format!("G {}", counter_at(i)));
            want.push("C 42 -7 constants stx arg1=0x2a arg2=0xfffffffffffffff9".to_string());
        }
        assert_eq!(
            lines_with(&out, &["T ", "S ", "U ", "P ", "M ", "G ", "C "]),
            want,
            "{opt}: {out}"
        );
        // Nothing probed stx:guarded: its semaphore stayed down.
        assert_eq!(lines_with(&out, &["guarded"]), ["guarded 0"], "{opt}");
        assert!(!err.contains("WARNING"), "{opt}: {err}");
    }
}

/// `&@var("stx_counter", "BIN")` is where `$arg1` of `stx:pointers` points.
/// Under `-c` the command starts after the programs are built, so the
/// module's load bias must not be taken before it runs.
#[test]
fn pointer_argument_equals_var_address_under_c() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in OPTS {
        let (code, out, err) = run(
            opt,
            2,
            r#"probe process("BIN").mark("pointers") { printf("P %d\n", $arg1 == &@var("stx_counter", "BIN")) }"#,
        );
        assert_eq!(code, 0, "{opt}: {err}\n{out}");
        assert_eq!(lines_with(&out, &["P "]), ["P 1", "P 1"], "{opt}: {out}");
    }
}

/// A process killed (and reaped) when dropped, its stdout read by line.
struct Tracer {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Tracer {
    fn spawn(cmd: &mut Command) -> Tracer {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Tracer { child, out }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l.trim_end().to_string()
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Attaching with `-x` to a fixture waiting between rounds: the semaphore
/// is raised while stapxx-rs runs and dropped when it detaches. This run
/// also reads `stx:pointers`' string: the fixture printed `ready` from its
/// `.rodata`, which holds `stx_greeting` too, so that page is mapped. (In a
/// one-shot run nothing touches it before the marker, and a user read in a
/// probe cannot fault a page in, stap's own reads neither: `user_string`
/// reports a fault there.)
#[test]
fn semaphore_follows_the_tracer_with_x() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    const N: i64 = 3;
    for opt in OPTS {
        let bin = fixture(opt);
        let mut target = support::Proc::spawn(
            Command::new(&bin)
                .arg(N.to_string())
                .arg("wait")
                .stdin(Stdio::piped()),
        );
        target.wait_for_line("ready", Duration::from_secs(10));
        let mut input = target.child.stdin.take().unwrap();
        let script = r#"
probe begin { println("attached") }
probe process("BIN").mark("pointers") { printf("P %s %d\n", user_string($arg2), $arg1 == &@var("stx_counter", "BIN")) }
probe process("BIN").mark("guarded") { printf("g %d\n", $arg1); if ($arg1 == NLAST) exit() }
probe timer.s(20) { println("timeout"); exit() }
"#
        .replace("BIN", &bin.display().to_string())
        .replace("NLAST", &(N - 1).to_string());
        let mut tracer = Tracer::spawn(
            stapxx()
                .arg("-x")
                .arg(target.pid().to_string())
                .arg("-e")
                .arg(&script),
        );
        assert_eq!(tracer.line(), "attached", "{opt}");
        // The round before this one ran untraced; this one sees the
        // semaphore on every iteration.
        writeln!(input, "go").unwrap();
        target.wait_for_line(&format!("guarded {N}"), Duration::from_secs(10));
        let mut rest = Vec::new();
        loop {
            let l = tracer.line();
            if l.is_empty() {
                break;
            }
            rest.push(l);
        }
        let status = tracer.child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = tracer.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        assert!(status.success(), "{opt}: {status:?} {err}");
        let mut want = Vec::new();
        for i in 0..N {
            want.push("P hello sdt 1".to_string());
            want.push(format!("g {i}"));
        }
        assert_eq!(rest, want, "{opt}: {err}");
        support::assert_no_bpf_leftovers(tracer.child.id());
        // Detached: the next round sees the semaphore down again.
        writeln!(input, "go").unwrap();
        target.wait_for_line("guarded 0", Duration::from_secs(10));
    }
}

#[test]
fn semaphore_is_raised_only_when_its_marker_is_probed() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    const N: u32 = 5;
    for opt in OPTS {
        let (code, out, err) = run(
            opt,
            N,
            r#"probe process("BIN").mark("guarded") { printf("g %d\n", $arg1) }"#,
        );
        assert_eq!(code, 0, "{opt}: {err}");
        let want: Vec<String> = (0..N).map(|i| format!("g {i}")).collect();
        assert_eq!(lines_with(&out, &["g "]), want, "{opt}: {out}");
        assert_eq!(
            lines_with(&out, &["guarded"]),
            [format!("guarded {N}")],
            "{opt}"
        );

        let (code, out, err) = run(
            opt,
            N,
            r#"global t; probe process("BIN").mark("tick") { t++ } probe end { printf("ticks %d\n", t) }"#,
        );
        assert_eq!(code, 0, "{opt}: {err}");
        assert_eq!(
            lines_with(&out, &["guarded", "ticks"]),
            ["guarded 0".to_string(), format!("ticks {N}")],
            "{opt}: {out}"
        );
    }
}

#[test]
fn provider_and_wildcards() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in OPTS {
        let (code, out, err) = run(
            opt,
            3,
            r#"global c
probe process("BIN").provider("stx").mark("tick") { c["tick"]++ }
probe process("BIN").mark("ints_*") { c[$$name]++ }
probe process("BIN").provider("stx").mark("*") { c["any"]++ }
probe end { foreach (k+ in c) printf("%s %d\n", k, c[k]) }"#,
        );
        assert_eq!(code, 0, "{opt}: {err}");
        // `*` matches all eight markers: seven fire every iteration, and
        // stx:guarded too since probing it raises its semaphore.
        assert_eq!(
            lines_with(&out, &["any", "ints_", "tick"]),
            ["any 24", "ints_signed 3", "ints_unsigned 3", "tick 3"],
            "{opt}: {out}"
        );
    }
}

#[test]
fn a_marker_that_does_not_exist_is_a_pass_2_error() {
    let bin = fixture("-O2");
    let path = bin.display().to_string();
    let out = stapxx()
        .args([
            "-p2",
            "-e",
            &format!(r#"probe process("{path}").mark("no_such") {{ }}"#),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).replace(&path, "BIN"),
        r#"-e:1:7: error: probe point 'process("BIN").mark("no_such")': no SDT marker 'no_such' in BIN (nearest: stx:tick, stx:many, stx:global)
    probe process("BIN").mark("no_such") { }
          ^
"#
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn p2_listing_of_marker_probes() {
    let bin = fixture("-O2");
    let path = bin.display().to_string();
    let script = r#"probe process("BIN").mark("guarded"), process("BIN").provider("stx").mark("ints_*") { printf("%s %s %d\n", $$name, $$parms, $arg1) }
probe process("BIN").mark("global"), process("BIN").mark("pointers") { printf("%s %d\n", $$provider, $arg1) }
probe process("BIN").mark("constants") { println($arg2) }"#;
    let out = stapxx()
        .args(["-p2", "-e", &script.replace("BIN", &path)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!(text.replace(&path, "BIN"));
}

const PYTHON: &str = "/usr/bin/python3.11";

/// The workload's calls, and what the markers report for them.
const WORKLOAD: &str = "\
def leaf(i):
    return i + 1
def mid(n):
    return sum(map(leaf, range(n)))
def gen():
    yield 1
    yield 2
for _ in range(3):
    print(mid(4), flush=True)
    g = gen()
    next(g)
    g.close()
";

#[test]
fn python_function_markers() {
    if !Path::new(PYTHON).is_file() {
        support::missing("python3.11 (Debian package python3.11)");
        return;
    }
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let script_path = support::scratch().join("usdt_workload.py");
    std::fs::write(&script_path, WORKLOAD).unwrap();
    let file = script_path.display().to_string();
    let out = stapxx()
        .arg("-c")
        .arg(format!("{PYTHON} {file}"))
        .arg("-e")
        .arg(format!(
            r#"global r, e
probe process("{PYTHON}").mark("function__return") {{ r[user_string($arg1), user_string($arg2), $arg3]++ }}
probe process("{PYTHON}").mark("function__entry") {{ e[user_string($arg1), user_string($arg2), $arg3]++ }}
probe end {{
  foreach ([f, n, l] in r) printf("return %s %s %d %d\n", f, n, l, r[f, n, l])
  foreach ([f, n, l] in e) printf("entry %s %s %d %d\n", f, n, l, e[f, n, l])
}}"#
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(lines_with(&stdout, &["10"]), ["10", "10", "10"]);
    // Only the workload's frames (startup runs hundreds of others), found
    // by the filename the markers give.
    let mut ours: Vec<String> = stdout
        .lines()
        .filter_map(|l| {
            let (kind, rest) = l.split_once(' ')?;
            let rest = rest.strip_prefix(&file)?;
            Some(format!("{kind}{rest}"))
        })
        .collect();
    ours.sort();
    // function__return: every return, with the line it returns from: 12
    // leaf calls, 3 mid, the module at the loop header when it ends, and
    // gen twice a round (the yield that suspends it, then close() ending
    // it at that yield).
    // function__entry: Python 3.11 fires it only when tracing/profiling
    // is on (at RESUME) or when a frame is entered to throw into it
    // (gen.throw(), gen.close()): none for plain calls, from Python or
    // from C (map calling leaf) alike; here the three close() calls.
    assert_eq!(
        ours,
        [
            "entry gen 6 3",
            "return <module> 8 1",
            "return gen 6 6",
            "return leaf 2 12",
            "return mid 4 3",
        ],
        "{stdout}"
    );
}
