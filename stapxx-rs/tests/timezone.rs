//! `tz_gmtoff()`, `tz_name()` and the tapset's `tz_ctime()` over them: the
//! local time zone when the session starts, as staprun passes it (seconds
//! west of UTC, the zone's abbreviation), in host and kernel probes alike.
//! The zone is a POSIX TZ string, which needs no zone database: `XYZ-5:30`
//! is 5 h 30 min east of UTC, named XYZ.

mod support;

use std::process::Command;

const WANT: &str = "-19800 XYZ [Mon Jul 20 05:30:00 1970 XYZ]\n";

fn run(script: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["-e", script])
        .env("TZ", "XYZ-5:30")
        .output()
        .expect("run stapxx-rs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_session_zone_in_a_host_probe() {
    // 200 days after the epoch, 00:00 UTC.
    let (code, out, err) = run(
        r#"probe begin { printf("%d %s [%s]\n", tz_gmtoff(), tz_name(), tz_ctime(17280000)); exit() }"#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, WANT);
}

#[test]
fn the_session_zone_in_a_kernel_probe() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let (code, out, err) = run(r#"global done
probe timer.profile { if (!done++) { printf("%d %s [%s]\n", tz_gmtoff(), tz_name(), tz_ctime(17280000)); exit() } }"#);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, WANT);
}
