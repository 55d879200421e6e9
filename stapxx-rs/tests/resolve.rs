//! Pass 2 (`-p2`) against a real C binary built with `cc -g`: every
//! `@cast`/`@var` becomes explicit reads with the offsets, sizes and
//! signedness the binary's DWARF gives; `@defined` prunes branches.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The layout fixture, compiled once per test binary run (tests run in
/// parallel: the first compiles, the others wait for it).
fn fixture() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("stapxx-resolve-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let out = dir.join("layout");
            let st = Command::new("cc")
                .args(["-g", "-O0", "-o"])
                .arg(&out)
                .arg(root().join("tests/fixtures/layout.c"))
                .status()
                .expect("cc must be installed");
            assert!(st.success());
            out
        })
        .clone()
}

fn p2(script: &str, exe: &Path) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["-p2", "--exec"])
        .arg(exe)
        .arg(script)
        .current_dir(root())
        .output()
        .unwrap();
    let exe = exe.display().to_string();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).replace(&exe, "FIXTURE"),
        String::from_utf8_lossy(&o.stderr).replace(&exe, "FIXTURE"),
    )
}

#[test]
fn casts_and_vars_become_reads() {
    let exe = fixture();
    let (code, out, err) = p2("tests/scripts/resolve_layout.stp", &exe);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
}

#[test]
fn unknown_member_names_type_and_nearest() {
    let exe = fixture();
    let dir = exe.parent().unwrap();
    let s = dir.join("bad.stp");
    std::fs::write(
        &s,
        "probe begin {\n  x = @cast(0, \"struct inner\")->nxt\n}\n",
    )
    .unwrap();
    let (code, _, err) = p2(s.to_str().unwrap(), &exe);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.stp:2:7: error: struct inner has no member 'nxt'; nearest: next"),
        "{err}"
    );
}

#[test]
fn unresolved_function_is_an_error_with_location() {
    let exe = fixture();
    let dir = exe.parent().unwrap();
    let s = dir.join("nofunc.stp");
    std::fs::write(&s, "probe begin {\n  no_such_function(1)\n}\n").unwrap();
    let (code, _, err) = p2(s.to_str().unwrap(), &exe);
    assert_eq!(code, 1);
    assert!(
        err.contains("nofunc.stp:2:3: error: unresolved function call: 'no_such_function'"),
        "{err}"
    );
}

#[test]
fn embedded_c_is_refused_where_used() {
    let exe = fixture();
    let dir = exe.parent().unwrap();
    let s = dir.join("emb.stp");
    std::fs::write(
        &s,
        "function f() %{ STAP_RETVALUE = 1; %}\nfunction g() %{ %}\nprobe begin {\n  f()\n}\n",
    )
    .unwrap();
    let (code, _, err) = p2(s.to_str().unwrap(), &exe);
    assert_eq!(code, 1);
    assert!(
        err.contains("emb.stp:1:1: error: function 'f' is embedded C"),
        "{err}"
    );
}

#[test]
fn missing_debuginfo_says_where_it_looked() {
    let exe = fixture();
    let dir = exe.parent().unwrap();
    let stripped = dir.join("layout-stripped");
    let st = Command::new("objcopy")
        .args(["--strip-debug"])
        .arg(&exe)
        .arg(&stripped)
        .status()
        .unwrap();
    assert!(st.success());
    let s = dir.join("nodebug.stp");
    std::fs::write(&s, "probe begin { x = @cast(0, \"struct node\")->id }\n").unwrap();
    let (code, _, err) = p2(s.to_str().unwrap(), &stripped);
    assert_eq!(code, 1);
    assert!(
        err.contains("nodebug.stp:1:19: error: no DWARF debuginfo for"),
        "{err}"
    );
    assert!(
        err.contains("no DWARF debuginfo for FIXTURE (build-id "),
        "{err}"
    );
    assert!(
        err.contains("looked in:\n  /usr/lib/debug/.build-id/"),
        "{err}"
    );
}
