//! `go tool pprof` (Debian's golang-go), the real reader the pprof output
//! (`--pprof`, `flamegraph --pprof`, Pyroscope pushes) is checked with.

use std::path::Path;

/// Whether `go` (Debian's golang-go, for `go tool pprof`) runs here; when
/// it does not, [`super::missing`] (a failure under CI).
pub fn have_go() -> bool {
    let ok = std::process::Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        super::missing("go tool pprof (package golang-go)");
    }
    ok
}

/// `go tool pprof ARGS... FILE`, which must succeed; its stdout. Its cache
/// and settings stay in FILE's directory.
pub fn go_pprof(file: &Path, args: &[&str]) -> String {
    let dir = file.parent().expect("profile in a directory");
    let out = std::process::Command::new("go")
        .args(["tool", "pprof"])
        .args(args)
        .arg(file)
        .env("HOME", dir)
        .output()
        .expect("run go tool pprof");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "go tool pprof {args:?} {}: {}",
        file.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}
