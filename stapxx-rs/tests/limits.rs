//! `-D NAME=VAL` limits as the user meets them: values checked with the
//! `-D` named, unknown names warned about (never fatal: stap passes them
//! to its C compiler), and the kernel memory the limits ask for told,
//! refused past a quarter of the machine's memory, and a map the kernel
//! will not create named by its script variable.

mod support;

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(args)
        .output()
        .expect("run stapxx-rs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const HELLO: &str = r#"probe begin { println("hello") exit() }"#;

#[test]
fn bad_values_are_errors_naming_the_define() {
    for (define, want) in [
        (
            "MAXSTRINGLEN=abc",
            "-D MAXSTRINGLEN=abc: not a number (MAXSTRINGLEN takes an integer from 2 to 1048576, decimal or 0x hex)",
        ),
        (
            "MAXSTRINGLEN=-5",
            "-D MAXSTRINGLEN=-5: out of range (MAXSTRINGLEN takes an integer from 2 to 1048576)",
        ),
        (
            "MAXSTRINGLEN=4000000",
            "-D MAXSTRINGLEN=4000000: out of range (MAXSTRINGLEN takes an integer from 2 to 1048576: a kernel map entry must stay under 4 MiB)",
        ),
        (
            "MAXACTION=9000000",
            "-D MAXACTION=9000000: out of range (MAXACTION takes an integer from 1 to 8388608: the kernel's bpf_loop runs at most 8388608 iterations)",
        ),
        (
            "MAXMAPENTRIES=0",
            "-D MAXMAPENTRIES=0: out of range (MAXMAPENTRIES takes an integer from 1 to 16777216)",
        ),
        (
            "MAXERRORS",
            "-D MAXERRORS: a value is needed (MAXERRORS takes an integer from 0 to 2147483647)",
        ),
        (
            "MAXNESTING=1e3",
            "-D MAXNESTING=1e3: not a number (MAXNESTING takes an integer from 0 to 10000, decimal or 0x hex)",
        ),
    ] {
        let o = run(&["-D", define, "-e", HELLO]);
        assert_eq!(o.status.code(), Some(1), "{define}");
        assert_eq!(text(&o.stderr), format!("stapxx-rs: {want}\n"), "{define}");
        assert_eq!(text(&o.stdout), "", "{define}");
    }
}

/// Values are read as the C compiler stap hands them to reads them: 0x hex
/// and 0 octal too (16 bytes: strings keep 15).
#[test]
fn hex_and_octal_values_are_honoured() {
    let script = r#"probe begin { s = "abcdefghijklmnopqrstuvwxyz"; println(s); exit() }"#;
    for v in ["16", "0x10", "020", "16UL"] {
        let o = run(&["-D", &format!("MAXSTRINGLEN={v}"), "-e", script]);
        assert_eq!(o.status.code(), Some(0), "{v}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "abcdefghijklmno\n", "{v}");
        assert_eq!(text(&o.stderr), "", "{v}");
    }
}

#[test]
fn unknown_names_warn_and_the_run_goes_on() {
    let o = run(&["-D", "MAXSTRLEN=10", "-D", "STP_NO_OVERLOAD", "-e", HELLO]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "hello\n");
    assert_eq!(
        text(&o.stderr),
        "stapxx-rs: warning: -D MAXSTRLEN=10 is ignored: not a limit stapxx-rs knows (did you mean MAXSTRINGLEN?); the known ones are MAXACTION, MAXBACKTRACE, MAXERRORS, MAXMAPENTRIES, MAXNESTING, MAXSTRINGLEN\n\
         stapxx-rs: warning: -D STP_NO_OVERLOAD is ignored: it sets stap's kernel-module runtime, which stapxx-rs does not use\n"
    );
}

/// 16M entries of 1 MiB string keys: refused before anything is loaded,
/// with the global that would take it and the `-D`s that size it.
#[test]
fn kernel_maps_past_a_quarter_of_memory_are_refused() {
    let o = run(&[
        "-p4",
        "-D",
        "MAXSTRINGLEN=1048576",
        "-D",
        "MAXMAPENTRIES=16777216",
        "-e",
        r#"global hits probe timer.profile { hits[execname()]++ }"#,
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with(
            "error: the kernel maps of this script would take about 16.0 TiB of memory; refused (the bound is a quarter of this machine's memory: "
        ),
        "{err}"
    );
    assert_eq!(
        lines[1],
        "note: global 'hits': 16777216 entries of 1048576-byte keys and 8-byte values, about 16.0 TiB (string keys: -D MAXSTRINGLEN=1048576; entries: -D MAXMAPENTRIES=16777216)"
    );
    assert_eq!(text(&o.stdout), "");
}

/// Four 1 MiB string keys make a 4 MiB key, which the kernel refuses
/// (E2BIG): the error names the global, its shape and what sizes it.
#[test]
fn a_map_the_kernel_refuses_names_its_global() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let o = run(&[
        "-p4",
        "-D",
        "MAXSTRINGLEN=1048576",
        "-e",
        r#"global seen[2] probe timer.profile { seen[execname(), "a", "b", "c"] = 1 }"#,
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert_eq!(
        lines[0],
        "error: the kernel cannot create the map for global 'seen': Argument list too long (os error 7)"
    );
    // (The size estimate counts a spare entry per CPU.)
    let (shape, rest) = lines[1].split_once(", about ").expect("a size");
    assert_eq!(
        shape,
        "note: global 'seen': 2 entries of 4194304-byte keys and 8-byte values"
    );
    assert!(
        rest.ends_with(
            " MiB (string keys: -D MAXSTRINGLEN=1048576; entries: its declared size [2])"
        ),
        "{rest}"
    );
    assert_eq!(
        lines[2],
        "note: the kernel takes map entries (key and value) of less than 4 MiB; lower the settings that size this one"
    );
}

#[test]
fn array_sizes_past_the_bound_are_errors() {
    let o = run(&["-p3", "-e", "global a[100000000]\nprobe begin { a[1] = 2 }"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "-e:1:8: error: array 'a' is declared with 100000000 entries, more than the 16777216 an array may have\n    global a[100000000]\n           ^\n"
    );
}
