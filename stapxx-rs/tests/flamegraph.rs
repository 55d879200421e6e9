//! Flame graphs, driven through the binary: `stapxx-rs flamegraph` on saved
//! backtrace output, and `--folded`/`--flamegraph` on a live run of a
//! host-only script that prints backtrace records (no BPF needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stapxx-flame-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"));
    cmd.args(args).current_dir(dir);
    match stdin {
        None => cmd.stdin(Stdio::null()).output().expect("run stapxx-rs"),
        Some(input) => {
            use std::io::Write;
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run stapxx-rs");
            child.stdin.take().unwrap().write_all(input).unwrap();
            child.wait_with_output().unwrap()
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    text(&o.stdout)
}

/// A Lua module with one function of each definition form; the comments
/// give the lines the saved output below refers to.
const MOD_LUA: &str = "local M = {}                     -- 1
                                  -- 2
local function helper(x)          -- 3
    return x * 2
end
                                  -- 6
function M.run(n)                 -- 7
    local s = 0
    for i = 1, n do s = s + helper(i) end
    return s
end
                                  -- 12
function M:method() end           -- 13
M.cb = function() return 1 end    -- 14
cb2 = function() end              -- 15
local loc = function() end        -- 16
local t = { field = function() end } -- 17
table.sort({}, function(a, b) return a < b end) -- 18

return M
";

/// lj-lua-stacks-style output: 6 records, 30 samples; two records fold to
/// the same stack.
const SAVED: &str = "@app/mod.lua:3
@app/mod.lua:7
@app/mod.lua:0
C:pmain
\t10
@app/mod.lua:14
builtin#21
@app/mod.lua:7
@app/mod.lua:0
C:pmain
\t6
T:@app/mod.lua:7
@app/mod.lua:0
C:pmain
\t5
@app/mod.lua:18
@app/mod.lua:13
@app/mod.lua:15
@app/mod.lua:16
@app/mod.lua:17
@app/mod.lua:0
C:pmain
\t4
@app/mod.lua:3
@app/mod.lua:7
@app/mod.lua:0
C:pmain
\t3
=stdin:0
C:pmain
\t2
";

const FOLDED: &str = "C:pmain;=stdin:0 2
C:pmain;app.mod:main;T:app.mod:run 5
C:pmain;app.mod:main;app.mod:field;app.mod:loc;app.mod:cb2;app.mod:method;app.mod:18 4
C:pmain;app.mod:main;app.mod:run;app.mod:helper 13
C:pmain;app.mod:main;app.mod:run;builtin#21;app.mod:cb 6
";

/// What the subcommand says about `SAVED`'s `builtin#21` without
/// `--luajit` (tests/ffnames.rs names it with a real LuaJIT).
const NO_LUAJIT: &str = "WARNING: builtin#N frames keep their numbers: to name them, give the \
LuaJIT that ran (its executable or libluajit, with debug info) as --luajit PATH\n";

/// The same for a live run that traces no process.
const NO_TARGET: &str = "WARNING: builtin#N frames keep their numbers: cannot read LuaJIT's \
fast-function names: there is no traced process (-x, --master) or executable (--exec) to read \
them from\n";

/// A directory with `app/mod.lua` and `saved.bt`.
fn lua_tree(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/mod.lua"), MOD_LUA).unwrap();
    std::fs::write(dir.join("saved.bt"), SAVED).unwrap();
    dir
}

fn sum(folded: &str) -> u64 {
    folded
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum()
}

#[test]
fn folds_saved_output_with_lua_names() {
    let dir = lua_tree("fold");
    let o = run_in(&dir, &["flamegraph", "saved.bt", "--folded"], None);
    let folded = ok(&o);
    assert_eq!(folded, FOLDED);
    assert_eq!(text(&o.stderr), NO_LUAJIT);
    // Every sample is in exactly one stack.
    let total: u64 = SAVED
        .lines()
        .filter_map(|l| l.strip_prefix('\t'))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 30);
    assert_eq!(sum(&folded), total);
}

#[test]
fn lua_root_and_stdin() {
    let dir = lua_tree("root");
    let elsewhere = scratch("root-cwd");
    let root = dir.to_str().unwrap();
    // Relative chunk names are looked up under --lua-root.
    let o = run_in(
        &elsewhere,
        &["flamegraph", "--lua-root", root, "-", "--folded"],
        Some(SAVED.as_bytes()),
    );
    assert_eq!(ok(&o), FOLDED);
    assert_eq!(text(&o.stderr), NO_LUAJIT);
    // -o writes the file, nothing on stdout.
    let o = run_in(
        &elsewhere,
        &[
            "flamegraph",
            "--lua-root",
            root,
            "--folded",
            "-o",
            "x.folded",
        ],
        Some(SAVED.as_bytes()),
    );
    assert_eq!(ok(&o), "");
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("x.folded")).unwrap(),
        FOLDED
    );
}

#[test]
fn missing_lua_source_warns_once_and_keeps_names() {
    let dir = scratch("missing");
    // No app/mod.lua here.
    std::fs::write(dir.join("saved.bt"), SAVED).unwrap();
    let o = run_in(&dir, &["flamegraph", "saved.bt", "--folded"], None);
    let folded = ok(&o);
    let err = text(&o.stderr);
    // One about the builtin (said as it is named), one about the sources.
    assert_eq!(err.matches("WARNING").count(), 2, "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.starts_with(NO_LUAJIT), "{err}");
    assert!(err.lines().nth(1).unwrap().contains("app/mod.lua"), "{err}");
    assert!(folded.contains("C:pmain;@app/mod.lua:0;@app/mod.lua:7;@app/mod.lua:3 13\n"));
    assert!(folded.contains("C:pmain;@app/mod.lua:0;T:@app/mod.lua:7 5\n"));
    assert_eq!(sum(&folded), 30);

    // Two missing files: still one warning.
    std::fs::write(
        dir.join("two.bt"),
        "@a.lua:1\n@b.lua:2\n\t1\n@c.lua:3\n\t1\n",
    )
    .unwrap();
    let o = run_in(&dir, &["flamegraph", "two.bt", "--folded"], None);
    assert_eq!(ok(&o), "@b.lua:2;@a.lua:1 1\n@c.lua:3 1\n");
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("2 more files"), "{err}");
}

/// sample-bt-style output (`print_stack()` then `print_ustack()` of each
/// distinct backtrace, then its count), with the other shapes stap prints
/// native frames in: no symbol (module and offset), a bare address, and
/// `sprint_ubacktrace()`'s simple form. The first two records differ only
/// in offsets, so they fold together.
const NATIVE: &str = " 0xffffffff81c0f2a1 : _raw_spin_unlock_irqrestore+0x21/0x40 [kernel]
 0xffffffff8110a2b3 : ep_poll+0x2d3/0x4a0 [kernel]
 0xffffffff81c00099 : entry_SYSCALL_64_after_hwframe+0x63/0xcd [kernel]
 0x7f3a1c0e1b2d : epoll_wait+0x4d/0xb0 [/usr/lib/x86_64-linux-gnu/libc.so.6]
 0x55d0c0a1e2f3 : ngx_epoll_process_events+0x2e1/0x6a0 [/usr/sbin/nginx]
 0x55d0c0a0f001 : ngx_process_events_and_timers+0x71/0x1a0 [/usr/sbin/nginx]
 0x55d0c0a00100 : main+0x5d0/0x8e0 [/usr/sbin/nginx]
\t12
 0xffffffff81c0f2a4 : _raw_spin_unlock_irqrestore+0x24/0x40 [kernel]
 0xffffffff8110a2b3 : ep_poll+0x2d3/0x4a0 [kernel]
 0xffffffff81c00099 : entry_SYSCALL_64_after_hwframe+0x63/0xcd [kernel]
 0x7f3a1c0e1b2e : epoll_wait+0x4e/0xb0 [/usr/lib/x86_64-linux-gnu/libc.so.6]
 0x55d0c0a1e2f3 : ngx_epoll_process_events+0x2e1/0x6a0 [/usr/sbin/nginx]
 0x55d0c0a0f001 : ngx_process_events_and_timers+0x71/0x1a0 [/usr/sbin/nginx]
 0x55d0c0a00100 : main+0x5d0/0x8e0 [/usr/sbin/nginx]
\t3
 0x7f3a1c3c0a00 [/usr/lib/x86_64-linux-gnu/libluajit-5.1.so.2+0x1fa00/0x0]
 0x55d0c0a3b410 : ngx_http_lua_run_thread+0x120/0x1000 [/usr/sbin/nginx]
 0x55d0c0a1e2f3 : ngx_epoll_process_events+0x2e1/0x6a0 [/usr/sbin/nginx]
 0x55d0c0a0f001 : ngx_process_events_and_timers+0x71/0x1a0 [/usr/sbin/nginx]
 0x55d0c0a00100 : main+0x5d0/0x8e0 [/usr/sbin/nginx]
\t5
 0x7f3a1c0e0000
 0x55d0c0a00100 : main+0x5d0/0x8e0 [/usr/sbin/nginx]
\t2
ngx_process_events_and_timers+0x71 [nginx]
main+0x5d0 [nginx]
\t1
";

#[test]
fn folds_native_stap_backtraces() {
    let dir = scratch("native");
    std::fs::write(dir.join("native.bt"), NATIVE).unwrap();
    let o = run_in(&dir, &["flamegraph", "native.bt", "--folded"], None);
    assert_eq!(
        ok(&o),
        "main;0x7f3a1c0e0000 2
main;ngx_process_events_and_timers 1
main;ngx_process_events_and_timers;ngx_epoll_process_events;epoll_wait;\
entry_SYSCALL_64_after_hwframe;ep_poll;_raw_spin_unlock_irqrestore 15
main;ngx_process_events_and_timers;ngx_epoll_process_events;ngx_http_lua_run_thread;\
[libluajit-5.1.so.2] 5
"
    );
    assert_eq!(text(&o.stderr), "");

    // In the SVG, every native frame is a C frame: blue, and the legend
    // says so.
    let svg = ok(&run_in(&dir, &["flamegraph", "native.bt"], None));
    assert!(svg.contains("blue: C functions"), "{svg}");
    let frames = svg_frames(&svg);
    let mut names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "0x7f3a1c0e0000",
            "[libluajit-5.1.so.2]",
            "_raw_spin_unlock_irqrestore",
            "all",
            "entry_SYSCALL_64_after_hwframe",
            "ep_poll",
            "epoll_wait",
            "main",
            "ngx_epoll_process_events",
            "ngx_http_lua_run_thread",
            "ngx_process_events_and_timers",
        ]
    );
    for (name, fill) in frames.iter().filter(|(n, _)| n != "all") {
        let (r, g, b) = rgb(fill);
        assert!(b > r && b > g, "{name}: {fill}");
    }
}

/// Parse the SVG as XML (inferno writes a DOCTYPE).
fn xml(svg: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(svg, opts).expect("the SVG is well-formed XML")
}

/// Frame name -> its rectangle's fill, from the SVG's `<g><title>NAME (N
/// samples, P%)</title><rect fill=...>` groups.
fn svg_frames(svg: &str) -> Vec<(String, String)> {
    let doc = xml(svg);
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let mut frames = Vec::new();
    for g in doc.descendants().filter(|n| n.has_tag_name("g")) {
        let Some(title) = g
            .children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text())
        else {
            continue;
        };
        let Some(rect) = g.children().find(|c| c.has_tag_name("rect")) else {
            continue;
        };
        let name = title.rsplit_once(" (").map_or(title, |(n, _)| n);
        frames.push((
            name.to_string(),
            rect.attribute("fill").unwrap_or("").to_string(),
        ));
    }
    frames
}

fn rgb(fill: &str) -> (u8, u8, u8) {
    let inner = fill
        .strip_prefix("rgb(")
        .and_then(|f| f.strip_suffix(')'))
        .unwrap_or_else(|| panic!("fill {fill}"));
    let v: Vec<u8> = inner
        .split(',')
        .map(|x| x.trim().parse().unwrap())
        .collect();
    (v[0], v[1], v[2])
}

#[test]
fn svg_names_frames_and_colours_them_by_kind() {
    let dir = lua_tree("svg");
    let o = run_in(
        &dir,
        &["flamegraph", "saved.bt", "--title", "Lua-land"],
        None,
    );
    let svg = ok(&o);
    assert!(svg.contains("Lua-land"));
    let frames = svg_frames(&svg);
    let names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "C:pmain",
        "app.mod:main",
        "app.mod:run",
        "app.mod:helper",
        "builtin#21",
        "app.mod:cb",
        "T:app.mod:run",
        "app.mod:18",
        "=stdin:0",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for (name, fill) in &frames {
        let (r, g, b) = rgb(fill);
        if name.starts_with("C:") {
            assert!(b > r && b > g, "{name}: {fill}");
        } else if name.starts_with("builtin#") {
            assert!(r > g && b > g, "{name}: {fill}");
        } else if name.starts_with("T:") {
            assert!(g > r && g > b, "{name}: {fill}");
        } else if name.starts_with("app.mod:") {
            assert!(r >= 205 && b <= 55, "{name}: {fill}");
        }
    }
    // The same input gives the same picture.
    let again = ok(&run_in(
        &dir,
        &["flamegraph", "saved.bt", "--title", "Lua-land"],
        None,
    ));
    assert_eq!(svg, again);
}

/// A host-only script printing `SAVED` (stap's printf escapes).
fn printing_script(dir: &Path) -> PathBuf {
    let body: String = SAVED
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\t', "\\t")
        .replace('\n', "\\n");
    let script = format!(
        "probe begin {{\n    printf(\"{}\")\n    printf(\"{}\")\n    exit()\n}}\n",
        &body[..body.len() / 2],
        &body[body.len() / 2..]
    );
    let p = dir.join("bt.stp");
    std::fs::write(&p, script).unwrap();
    p
}

#[test]
fn live_run_equals_saved_output() {
    let dir = lua_tree("live");
    printing_script(&dir);
    let o = run_in(
        &dir,
        &[
            "bt.stp",
            "--folded",
            "live.folded",
            "--flamegraph",
            "live.svg",
        ],
        None,
    );
    // The run still prints its normal output.
    let printed = ok(&o);
    assert_eq!(printed, SAVED);
    assert_eq!(text(&o.stderr), NO_TARGET);
    let live_folded = std::fs::read_to_string(dir.join("live.folded")).unwrap();
    assert_eq!(live_folded, FOLDED);
    let live_svg = std::fs::read_to_string(dir.join("live.svg")).unwrap();

    std::fs::write(dir.join("printed.bt"), &printed).unwrap();
    let saved_folded = ok(&run_in(
        &dir,
        &["flamegraph", "printed.bt", "--folded"],
        None,
    ));
    assert_eq!(saved_folded, live_folded);
    let saved_svg = ok(&run_in(&dir, &["flamegraph", "printed.bt"], None));
    assert_eq!(svg_frames(&saved_svg), svg_frames(&live_svg));
    assert_eq!(saved_svg, live_svg);

    // With -v too (the runtime's verbose output path), and --lua-root.
    let elsewhere = scratch("live-cwd");
    let script = dir.join("bt.stp");
    let o = run_in(
        &elsewhere,
        &[
            "-v",
            script.to_str().unwrap(),
            "--lua-root",
            dir.to_str().unwrap(),
            "--folded",
            "v.folded",
        ],
        None,
    );
    assert_eq!(ok(&o), SAVED);
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("v.folded")).unwrap(),
        FOLDED
    );
}

#[test]
fn live_run_without_backtraces_warns() {
    let dir = scratch("live-empty");
    let o = run_in(
        &dir,
        &[
            "-e",
            "probe begin { println(\"hello\") exit() }",
            "--folded",
            "e.folded",
            "--flamegraph",
            "e.svg",
        ],
        None,
    );
    assert_eq!(ok(&o), "hello\n");
    let err = text(&o.stderr);
    assert!(err.contains("no backtraces"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("e.folded")).unwrap(), "");
    let svg = std::fs::read_to_string(dir.join("e.svg")).unwrap();
    xml(&svg);
}

#[test]
fn bad_input_and_flags() {
    let dir = scratch("bad");
    // No records.
    let o = run_in(&dir, &["flamegraph", "-"], Some(b"just text\nno counts\n"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no backtraces"),
        "{}",
        text(&o.stderr)
    );
    // Unreadable input.
    let o = run_in(&dir, &["flamegraph", "does-not-exist.bt"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).starts_with("stapxx-rs: cannot read"));
    // Unknown flag: one line, exit 1.
    let o = run_in(&dir, &["flamegraph", "--bogus"], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr).lines().count(), 1);
    // Help.
    let o = run_in(&dir, &["flamegraph", "--help"], None);
    assert!(ok(&o).contains("--lua-root"));
    // Binary junk and a broken Lua source do not stop it.
    std::fs::write(dir.join("broken.lua"), b"local function (((( end \xff\xfe").unwrap();
    let mut junk = b"\x00\x1b<&>\xff\n\t2\n@broken.lua:1\n@broken.lua:0\n\t4\n".to_vec();
    junk.extend(std::iter::repeat_n(b'(', 200_000));
    junk.extend_from_slice(b"\n\t1\n");
    let o = run_in(&dir, &["flamegraph", "-", "--folded"], Some(&junk));
    let folded = ok(&o);
    assert!(folded.contains("broken:main;broken:1 4\n"), "{folded}");
    assert!(folded.contains("??<&>\u{fffd} 2\n"), "{folded}");
    let o = run_in(&dir, &["flamegraph", "-"], Some(&junk));
    let names = svg_frames(&ok(&o));
    assert!(names.iter().any(|(n, _)| n == "??<&>\u{fffd}"), "{names:?}");
    // Flame flags on a run that stops before pass 5: a warning, no file.
    let o = run_in(
        &dir,
        &[
            "-p1",
            "-e",
            "probe begin { exit() }",
            "--flamegraph",
            "p1.svg",
        ],
        None,
    );
    ok(&o);
    assert!(text(&o.stderr).contains("pass 5"));
    assert!(!dir.join("p1.svg").exists());
}

/// `go tool pprof` (Debian's golang-go), the reader the pprof output is
/// checked with; fails under CI when missing.
fn go_pprof(dir: &Path, args: &[&str]) -> Option<String> {
    let have = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "go (package golang-go) is required under CI"
        );
        eprintln!("SKIPPED (not CI): go tool pprof");
        return None;
    }
    let out = Command::new("go")
        .args(["tool", "pprof"])
        .args(args)
        .current_dir(dir)
        // Its cache and settings stay in the scratch directory.
        .env("HOME", dir)
        .output()
        .expect("run go tool pprof");
    assert!(out.status.success(), "{}", text(&out.stderr));
    Some(text(&out.stdout))
}

/// The saved output as pprof: `go tool pprof` reads it; its samples are the
/// records' counts (and count x the period in cpu time), each location a
/// frame named as in the flame graph, with the Lua chunk's file and line.
#[test]
fn pprof_of_saved_output_reads_in_go_tool_pprof() {
    let dir = lua_tree("pprof");
    let o = run_in(
        &dir,
        &[
            "flamegraph",
            "saved.bt",
            "--pprof",
            "-o",
            "a.pb.gz",
            "--period-ns",
            "4000000",
        ],
        None,
    );
    ok(&o);
    let Some(top) = go_pprof(&dir, &["-top", "-sample_index=samples", "a.pb.gz"]) else {
        return;
    };
    assert!(
        top.contains("Showing nodes accounting for 30, 100% of 30 total"),
        "{top}"
    );
    // Flat counts: the leaves of the folded stacks.
    let flat = |name: &str| -> u64 {
        top.lines()
            .find(|l| l.split_whitespace().last() == Some(name))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {top}"))
    };
    assert_eq!(flat("app.mod:helper"), 13);
    assert_eq!(flat("app.mod:cb"), 6);
    assert_eq!(flat("T:app.mod:run"), 5);
    assert_eq!(flat("app.mod:18"), 4);
    assert_eq!(flat("=stdin:0"), 2);
    let raw = go_pprof(&dir, &["-raw", "a.pb.gz"]).expect("go");
    assert!(
        raw.contains("PeriodType: cpu nanoseconds\nPeriod: 4000000\n"),
        "{raw}"
    );
    assert!(raw.contains("samples/count cpu/nanoseconds"), "{raw}");
    // One sample per distinct backtrace (helper's two equal records, 10
    // and 3, are one), cpu time = count x period.
    assert_eq!(raw.matches("000000: ").count(), 5, "{raw}");
    assert!(raw.contains("         13   52000000: "), "{raw}");
    // helper is defined at line 3 of app/mod.lua.
    assert!(
        raw.lines()
            .any(|l| l.contains(" app.mod:helper app/mod.lua:3 ")),
        "{raw}"
    );
}
