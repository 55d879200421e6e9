//! User backtraces without frame pointers (`ubacktrace()`, `ucallers()`,
//! `print_ustack()`, `print_ubacktrace()`), unwound in the kernel by the
//! binaries' call-frame information. The fixture (`tests/fixtures/unwind.c`)
//! spins in the leaf of a known chain, built `-O2 -fomit-frame-pointer` and
//! `-O0`; other modes go through Debian's libc as installed (`qsort`
//! calling our comparator: libc's CFI only, no debug info) and through a
//! shared library of our own.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::Proc;

/// The chain main -> level1 .. level4 -> leaf, innermost first, then what
/// libc's start-up code and the executable's `_start` put under `main`.
const CHAIN: &[&str] = &[
    "leaf",
    "level4",
    "level3",
    "level2",
    "level1",
    "main",
    "__libc_start_call_main",
    "__libc_start_main",
    "_start",
];

/// From `back_in_main` (called back by our shared library) out, the
/// library's frames between it and `main`.
const LIB_CHAIN: &[&str] = &[
    "back_in_main",
    "lib_inner",
    "lib_outer",
    "main",
    "__libc_start_call_main",
    "__libc_start_main",
    "_start",
];

fn fixture(flags: &[&str], tag: &str) -> PathBuf {
    support::c_fixture("unwind.c", tag, flags)
}

fn optimized() -> PathBuf {
    fixture(&["-O2", "-fomit-frame-pointer"], "unwind-O2")
}

/// The executable linked against our shared library (both `-O2
/// -fomit-frame-pointer`), once per process.
fn with_library() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = support::scratch();
            let src = support::workspace_root().join("tests/fixtures/unwind.c");
            let flags = ["-g", "-O2", "-fomit-frame-pointer"];
            support::must(
                Command::new("cc")
                    .args(flags)
                    .args(["-fPIC", "-shared", "-DUNWIND_LIB"])
                    .arg(&src)
                    .arg("-o")
                    .arg(dir.join("libunwindlib.so")),
            );
            let exe = dir.join("unwind-lib");
            support::must(
                Command::new("cc")
                    .args(flags)
                    .arg("-DWITH_LIB")
                    .arg(&src)
                    .arg("-o")
                    .arg(&exe)
                    .arg(format!("-L{}", dir.display()))
                    .args(["-lunwindlib", "-Wl,-rpath,$ORIGIN"]),
            );
            exe
        })
        .clone()
}

fn start(bin: &Path, mode: &str) -> Proc {
    let mut p = Proc::spawn(Command::new(bin).arg(mode));
    p.wait_for_line("ready", Duration::from_secs(10));
    p
}

fn script_file(name: &str, text: &str) -> PathBuf {
    let p = support::scratch().join(name);
    std::fs::write(&p, text).expect("write script");
    p
}

/// One frame line of `print_ustack()`: (function, module path).
fn frame(line: &str) -> (String, String) {
    // ` 0xADDR : NAME+0xOFF/0xSIZE [MODULE]`
    let rest = line
        .trim_start()
        .split_once(" : ")
        .unwrap_or_else(|| panic!("not a frame line: {line:?}"))
        .1;
    let (sym, module) = rest
        .split_once(" [")
        .unwrap_or_else(|| panic!("no module: {line:?}"));
    let name = sym.split('+').next().expect("name");
    (name.to_string(), module.trim_end_matches(']').to_string())
}

/// (function, module) per frame, innermost first.
type Chain = Vec<(String, String)>;

/// The samples by their function chain, most frequent first, and the
/// total.
fn chains(out: &str) -> (Vec<(Chain, u64)>, u64) {
    let mut by: Vec<(Chain, u64)> = Vec::new();
    for (frames, n) in support::backtraces(out) {
        let c: Vec<(String, String)> = frames.iter().map(|l| frame(l)).collect();
        match by.iter_mut().find(|(k, _)| *k == c) {
            Some(e) => e.1 += n,
            None => by.push((c, n)),
        }
    }
    by.sort_by_key(|e| std::cmp::Reverse(e.1));
    let total = by.iter().map(|e| e.1).sum();
    (by, total)
}

fn names(c: &[(String, String)]) -> Vec<&str> {
    c.iter().map(|f| f.0.as_str()).collect()
}

/// At least 95% of the samples have the dominant chain.
fn dominant(out: &str) -> Vec<(String, String)> {
    let (by, total) = chains(out);
    assert!(total >= 100, "too few samples ({total}): {out}");
    let (top, n) = by.first().cloned().expect("a chain");
    assert!(
        n * 100 >= total * 95,
        "the top chain has {n} of {total} samples: {by:?}"
    );
    top
}

const SAMPLER: &str = r#"
global bts
probe timer.profile { if (pid() == target()) bts[ubacktrace()] <<< 1 }
probe timer.s(2) { exit() }
probe end {
  foreach (bt in bts- limit 20) { print_ustack(bt); printf("\t%d\n", @count(bts[bt])) }
}
"#;

fn sample(bin: &Path, mode: &str, extra: &[&str]) -> (String, String) {
    let p = start(bin, mode);
    let script = script_file("sampler.stp", SAMPLER);
    let pid = p.pid().to_string();
    let mut args = vec![script.to_str().expect("utf-8"), "-x", &pid, "-v"];
    args.extend_from_slice(extra);
    let (code, out, err) = support::stapxx(&args);
    assert_eq!(code, 0, "{err}");
    (out, err)
}

/// The `-v` line of the walks' endings: (stacks, outermost, max, no CFI,
/// unreadable).
fn endings(err: &str) -> [u64; 5] {
    let l = err
        .lines()
        .find_map(|l| l.strip_prefix("user backtraces: "))
        .unwrap_or_else(|| panic!("no unwinder counts in {err}"));
    let nums: Vec<u64> = l
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().expect("count"))
        .collect();
    // unwound, frames, outermost, max, no cfi, unreadable
    [nums[0], nums[2], nums[3], nums[4], nums[5]]
}

#[test]
fn chain_unwinds_without_frame_pointers() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for (tag, bin) in [
        ("-O2", optimized()),
        ("-O0", fixture(&["-O0"], "unwind-O0")),
    ] {
        let (out, err) = sample(&bin, "chain", &[]);
        let top = dominant(&out);
        assert_eq!(names(&top), CHAIN, "{tag}: {out}");
        let exe = bin.display().to_string();
        for (name, module) in &top {
            if name.starts_with("__libc") {
                assert!(module.ends_with("/libc.so.6"), "{tag}: {module}");
            } else {
                assert_eq!(module, &exe, "{tag}: {name}");
            }
        }
        // Every walk reached `_start`'s undefined return address.
        let [stacks, outermost, max, no_cfi, unreadable] = endings(&err);
        assert!(stacks >= 100, "{tag}: {err}");
        assert_eq!(
            (outermost, max, no_cfi, unreadable),
            (stacks, 0, 0, 0),
            "{tag}: {err}"
        );
    }
}

#[test]
fn comparator_called_by_libc_qsort() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let (out, _) = sample(&optimized(), "qsort", &[]);
    // libc's merge sort recurses: as many chains as depths. Each must be
    // our comparator, then libc's sorting code (its own frames, whatever
    // this version calls them, qsort among them), then our caller and the
    // start-up chain.
    let (by, total) = chains(&out);
    assert!(total >= 100, "{out}");
    let mut good = 0;
    for (c, n) in &by {
        let names = names(c);
        let libc = c[2.min(c.len())..]
            .iter()
            .take_while(|f| f.1.ends_with("/libc.so.6"))
            .count();
        let ok = names.len() > 2 + libc
            && names[..2] == ["leaf", "by_value"]
            && libc > 0
            && c[2..2 + libc].iter().any(|f| f.0.contains("qsort"))
            && names[2 + libc..]
                == [
                    "sort_round",
                    "main",
                    "__libc_start_call_main",
                    "__libc_start_main",
                    "_start",
                ];
        if ok {
            good += n;
        }
    }
    assert!(good * 100 >= total * 95, "{good} of {total}: {by:?}");
}

#[test]
fn through_a_shared_library() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = with_library();
    let (out, _) = sample(&bin, "lib", &[]);
    let top = dominant(&out);
    assert_eq!(names(&top)[0], "leaf", "{out}");
    assert_eq!(names(&top)[1..], *LIB_CHAIN, "{out}");
    assert!(top[2].1.ends_with("/libunwindlib.so"), "{:?}", top[2]);
    assert!(top[3].1.ends_with("/libunwindlib.so"), "{:?}", top[3]);
}

#[test]
fn maxbacktrace_bounds_the_walk() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let (out, err) = sample(&optimized(), "chain", &["-D", "MAXBACKTRACE=3"]);
    let top = dominant(&out);
    assert_eq!(names(&top), CHAIN[..3], "{out}");
    let [stacks, outermost, max, no_cfi, unreadable] = endings(&err);
    assert_eq!(
        (outermost, max, no_cfi, unreadable),
        (0, stacks, 0, 0),
        "{err}"
    );
}

/// The workspace's `script` on the optimized chain for `--arg time=2`, with
/// `extra` options: (status, stdout, stderr).
fn on_chain(script: &str, extra: &[&str]) -> (i32, String, String) {
    let p = start(&optimized(), "chain");
    let script = support::workspace_root().join(script);
    let pid = p.pid().to_string();
    let mut args = vec![
        script.to_str().expect("utf-8"),
        "-x",
        &pid,
        "--arg",
        "time=2",
    ];
    args.extend_from_slice(extra);
    support::stapxx(&args)
}

/// OpenResty's sampler shape: the same kernel probe prints the sorted
/// aggregate once the time is up (sorted foreach over a statistics array
/// and print_ustack in a kernel probe).
#[test]
fn sampler_printing_from_the_probe() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let (code, out, err) = on_chain("tests/scripts/sample-bt-in-probe.sxx", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&dominant(&out)), CHAIN, "{out}");
}

/// examples/sample-bt.sxx straight into folded stacks.
#[test]
fn sample_bt_example_folds() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let folded = support::scratch().join("sample-bt.folded");
    let (code, _, err) = on_chain(
        "examples/sample-bt.sxx",
        &["--folded", folded.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&folded).expect("folded");
    let mut rows: Vec<(&str, u64)> = text
        .lines()
        .map(|l| {
            let (s, n) = l.rsplit_once(' ').expect("count");
            (s, n.parse().expect("number"))
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let want: Vec<&str> = CHAIN.iter().rev().copied().collect();
    assert_eq!(rows[0].0, want.join(";"), "{text}");
    assert!(rows[0].1 * 100 >= total * 95, "{text}");
}

/// A script whose uprobe on the chain's `level4` runs `body` at its first
/// hit, then exits (with `globals` and `rest` around it), on the optimized
/// chain: (the binary, status, stdout, stderr).
fn on_level4(name: &str, globals: &str, body: &str, rest: &str) -> (PathBuf, i32, String, String) {
    let bin = optimized();
    let p = start(&bin, "chain");
    let script = script_file(
        name,
        &format!(
            "{globals}\nprobe process(\"{}\").function(\"level4\") {{\n  if (seen++ == 0) {{\n{body}\n    exit()\n  }}\n}}\n{rest}\n",
            bin.display()
        ),
    );
    let pid = p.pid().to_string();
    let (code, out, err) = support::stapxx(&[script.to_str().expect("utf-8"), "-x", &pid]);
    (bin, code, out, err)
}

/// In a uprobe: the frames at a function's entry, in each of stap's forms.
#[test]
fn uprobe_backtrace_forms() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let (bin, code, out, err) = on_level4(
        "forms.stp",
        "global seen, callers, full",
        r#"    callers = ucallers(2)
    full = ubacktrace()
    print_ubacktrace_brief()
    printf("--\n")
    print_ubacktrace()
    printf("--\n")"#,
        r#"probe end {
  printf("%s|\n", callers)
  print(sprint_ustack(callers))
  printf("--\n%s\n", usymdata(strtol(substr(full, 0, 18), 16)))
}"#,
    );
    assert_eq!(code, 0, "{err}");
    let parts: Vec<&str> = out.split("--\n").collect();
    assert_eq!(parts.len(), 4, "{out}");
    // Brief: `name+0xOFF` lines, the probed function at offset 0.
    let brief: Vec<&str> = parts[0].lines().collect();
    assert_eq!(brief[0], "level4+0x0", "{out}");
    let brief_names: Vec<&str> = brief
        .iter()
        .map(|l| l.split('+').next().expect("name"))
        .collect();
    assert_eq!(brief_names, CHAIN[1..], "{out}");
    // Full: ` 0xADDR : name+0xOFF/0xSIZE [module]`.
    let full: Vec<(String, String)> = parts[1].lines().map(frame).collect();
    assert_eq!(names(&full), CHAIN[1..], "{out}");
    assert_eq!(full[0].1, bin.display().to_string());
    // ucallers(2): three addresses, one space between them, none after.
    let mut lines = parts[2].lines();
    let callers = lines.next().expect("callers").strip_suffix('|').expect("|");
    let addrs: Vec<&str> = callers.split(' ').collect();
    assert_eq!(addrs.len(), 3, "{callers:?}");
    assert!(addrs.iter().all(|a| a.starts_with("0x")), "{callers:?}");
    let symbolized: Vec<(String, String)> = lines.map(frame).collect();
    assert_eq!(names(&symbolized), ["level4", "level3", "level2"], "{out}");
    // usymdata of the first address.
    let data = parts[3].trim_end();
    assert!(
        data.starts_with("level4+0x0/0x") && data.ends_with(&format!(" [{}]", bin.display())),
        "{data}"
    );
}

/// The symbolizing functions inside a kernel probe (the uprobe): the same
/// text the host prints for the frames of our executable (the kernel's
/// table has each file's own symbols; the host also reads separate debug
/// files, which name libc's static functions).
#[test]
fn symbolizing_in_a_uprobe() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let (bin, code, out, err) = on_level4(
        "kernel-forms.stp",
        "global seen",
        r#"    bt = ubacktrace()
    printf("%s--\n%s--\n%s\n--\n", sprint_ubacktrace(), sprint_ustack(bt), usymdata(uaddr()))
    print_ustack(bt)"#,
        "",
    );
    assert_eq!(code, 0, "{err}");
    let parts: Vec<&str> = out.split("--\n").collect();
    assert_eq!(parts.len(), 4, "{out}");
    let exe = bin.display().to_string();
    let base = bin
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    // sprint_ubacktrace: `name+0xOFF [basename]`.
    let simple: Vec<&str> = parts[0].lines().collect();
    assert_eq!(simple[0], format!("level4+0x0 [{base}]"), "{out}");
    for (l, name) in simple.iter().zip(&CHAIN[1..5]) {
        assert!(
            l.starts_with(&format!("{name}+0x")) && l.ends_with(&format!(" [{base}]")),
            "{l}"
        );
    }
    assert_eq!(simple.len(), CHAIN.len() - 1, "{out}");
    assert!(simple.last().unwrap().starts_with("_start+0x"), "{out}");
    // sprint_ustack in the kernel = print_ustack on the host, for our
    // executable's frames (the first five and `_start`).
    let kernel: Vec<&str> = parts[1].lines().collect();
    let host: Vec<&str> = parts[3].lines().collect();
    assert_eq!(kernel.len(), host.len(), "{out}");
    assert_eq!(kernel[..5], host[..5], "{out}");
    assert_eq!(kernel.last(), host.last(), "{out}");
    // usymdata of the probed pc.
    let data = parts[2].trim_end();
    assert!(
        data.starts_with("level4+0x0/0x") && data.ends_with(&format!(" [{exe}]")),
        "{data}"
    );
    assert_eq!(Some(data), kernel[0].split_once(" : ").map(|x| x.1));
}

/// Kernel stacks (`backtrace()`, `print_stack()`, `print_backtrace()`) by
/// the kernel's own unwinder, symbolized from kallsyms with stap's module
/// name `kernel`: samples of a process reading /dev/zero byte by byte show
/// the read path down to the system call entry; a syscall tracepoint shows
/// its own caller chain.
#[test]
fn kernel_stacks() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let mut dd = Command::new("dd")
        .args(["if=/dev/zero", "of=/dev/null", "bs=1", "count=1000000000"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dd");
    std::thread::sleep(Duration::from_millis(200));
    let pid = dd.id().to_string();
    let sampler = script_file(
        "kstacks.stp",
        r#"
global bts
probe timer.profile { if (pid() == target()) bts[backtrace()] <<< 1 }
probe timer.s(2) { exit() }
probe end { foreach (bt in bts- limit 50) { print_stack(bt); printf("\t%d\n", @count(bts[bt])) } }
"#,
    );
    let (code, out, err) = support::stapxx(&[sampler.to_str().expect("utf-8"), "-x", &pid]);
    let traced = script_file(
        "ktrace.stp",
        r#"
global n
probe kernel.trace("syscalls:sys_enter_read") {
  if (pid() == target() && n++ == 0) { print_backtrace(); printf("--\n%s|\n", backtrace()); exit() }
}
"#,
    );
    let (code2, out2, err2) = support::stapxx(&[traced.to_str().expect("utf-8"), "-x", &pid]);
    let _ = dd.kill();
    let _ = dd.wait();
    assert_eq!(code, 0, "{err}");
    // Samples in user mode have an empty kernel stack: a record of no
    // frames. Those in the kernel: the read path, innermost first.
    let names = |frames: &[String]| -> Vec<String> {
        frames
            .iter()
            .map(|l| {
                assert!(l.ends_with(" [kernel]"), "{l}");
                l.split_once(" : ")
                    .expect(":")
                    .1
                    .split('+')
                    .next()
                    .expect("+")
                    .to_string()
            })
            .collect()
    };
    let read_path = support::backtraces(&out).iter().any(|(frames, _)| {
        let n = names(frames);
        let at = |w: &str| n.iter().position(|x| x == w);
        matches!(
            (at("vfs_read"), at("ksys_read"), at("do_syscall_64")),
            (Some(a), Some(b), Some(c)) if a < b && b < c
        )
    });
    assert!(read_path, "{out}");
    assert_eq!(code2, 0, "{err2}");
    let (full, hex) = out2.split_once("--\n").expect("--");
    let lines: Vec<&str> = full.lines().collect();
    let addrs: Vec<&str> = hex
        .trim_end()
        .trim_end_matches('|')
        .split_whitespace()
        .collect();
    // print_backtrace and backtrace agree, frame by frame.
    assert_eq!(lines.len(), addrs.len(), "{out2}");
    for (l, a) in lines.iter().zip(&addrs) {
        assert!(
            l.starts_with(&format!(" {a} : ")) && l.ends_with(" [kernel]"),
            "{l}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains(" : do_syscall_64+0x")),
        "{out2}"
    );
    // stap's hex form: `0x...` and a space after each.
    assert!(hex.trim_end().ends_with(" |"), "{hex:?}");
}

/// The frame lines of `out` (the command's own output is mixed in).
fn frame_lines(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter(|l| l.trim_start().starts_with("0x"))
        .map(frame)
        .collect()
}

/// `stapxx-rs SCRIPT -c "BIN MODE"` with a probe on `func` that prints
/// its first hit's function (named in the kernel: `in NAME`) and
/// backtrace, and ends the session.
fn first_hit_under_c(bin: &Path, mode: &str, func: &str) -> (i32, String, String) {
    let script = script_file(
        &format!("first-{func}.stp"),
        &format!(
            "global seen\nprobe process.function(\"{func}\") {{\n  if (seen++ == 0) {{\n    printf(\"in %s\\n\", usymname(uaddr()))\n    print_ubacktrace(); exit()\n  }}\n}}\n"
        ),
    );
    support::stapxx(&[
        script.to_str().expect("utf-8"),
        "-c",
        &format!("{} {mode}", bin.display()),
    ])
}

/// `-c`: the command's unwind and symbol tables are placed when it
/// reaches its entry point (it is held there a moment, after its libraries
/// are mapped), so even the first hit of a probe, right after `main`
/// starts, is named in the kernel and unwinds whole: in the executable built -O2 -fomit-frame-pointer and -O0, and
/// through a shared library the command links.
#[test]
fn under_c_the_first_hit_unwinds_whole() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for bin in [optimized(), fixture(&["-O0"], "unwind-O0")] {
        let (code, out, err) = first_hit_under_c(&bin, "chain", "level4");
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("\nin level4\n"), "{out}");
        let frames = frame_lines(&out);
        assert_eq!(names(&frames), CHAIN[1..], "{out}{err}");
        assert_eq!(frames[0].1, bin.display().to_string());
        assert!(!err.contains("WARNING"), "{err}");
    }
    let bin = with_library();
    let (code, out, err) = first_hit_under_c(&bin, "lib", "back_in_main");
    assert_eq!(code, 0, "{err}");
    let frames = frame_lines(&out);
    assert_eq!(names(&frames), LIB_CHAIN, "{out}{err}");
    assert!(frames[1].1.ends_with("/libunwindlib.so"), "{frames:?}");
}

/// A `-c` command of more than one program cannot be held at its start
/// (the shell runs it as a child, target() is the shell): its backtraces
/// have the probed frame only, and a warning says why.
#[test]
fn under_c_a_compound_command_is_said_to_unwind_one_frame() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = optimized();
    let script = script_file(
        "compound.stp",
        "global seen\nprobe process.function(\"level4\") { if (seen++ == 0) print_ubacktrace() }\n",
    );
    // The shell ends the program itself: nothing is left running when the
    // session ends with the command.
    let cmd = format!("{} chain & sleep 1; kill $!; wait", bin.display());
    let (code, out, err) = support::stapxx(&[script.to_str().expect("utf-8"), "-c", &cmd]);
    assert_eq!(code, 0, "{err}");
    // (Unnamed, too: the host names addresses from target()'s mappings,
    // and target() is the shell.)
    let frames: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("0x"))
        .collect();
    assert_eq!(frames.len(), 1, "{out}");
    assert!(
        err.contains("WARNING: in the -c command, user backtraces give only the probed frame and symbols in kernel probes only addresses: the command is more than one program"),
        "{err}"
    );
}
