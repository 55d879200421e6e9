//! Pushing profiles to Grafana Pyroscope (`--pyroscope URL`): what reaches
//! the server (`support::pyroscope`'s loopback receiver), checked against
//! Pyroscope's documented ingest API and read back with `go tool pprof`;
//! and the pusher itself (`stapxx::flame::pyroscope::Pusher`) against a
//! server that fails, goes away, is slow or refuses, with its bounds.

mod support;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stapxx::flame::pyroscope::{DropReason, PushConfig, PushReport, Pusher};
use support::luajit::{self, Variant};
use support::pprof::{go_pprof, have_go};
use support::pyroscope::{multipart_part, parse_query, save_profile, Receiver};

/// What ureq says when nothing listens on the port.
const REFUSED: &str = "connection failed: Connection refused (os error 111)";

/// The request's `sampleRate` (Hz) and the profile's period (ns) say the
/// same: one sample every 1/CONFIG_HZ s, as timer.profile takes them.
fn assert_rate_is_period(file: &std::path::Path, q: &support::pyroscope::Request) {
    let raw = go_pprof(file, &["-raw"]);
    let period: u64 = raw
        .lines()
        .find_map(|l| l.strip_prefix("Period: "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Period in {raw}"));
    let rate: u64 = q.param("sampleRate").unwrap().parse().unwrap();
    assert_eq!(
        rate * period,
        1_000_000_000,
        "sampleRate {rate}, period {period} ns"
    );
}

/// The request's `from` and `until` lie in the run's wall time `t0..=t1`
/// (unix seconds), in order.
fn assert_within(q: &support::pyroscope::Request, t0: u64, t1: u64) {
    let from: u64 = q.param("from").unwrap().parse().unwrap();
    let until: u64 = q.param("until").unwrap().parse().unwrap();
    assert!(
        t0 <= from && from <= until && until <= t1,
        "{t0} {from} {until} {t1}"
    );
}

/// A pusher configuration for `r` with a quick retry schedule.
fn config(r: &Receiver) -> PushConfig {
    let mut c = PushConfig::new(&r.url(), "unit").expect("config");
    c.backoff_initial = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(400);
    c.request_timeout = Duration::from_secs(5);
    c
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Wait (at most 20 s) until `done` holds for the pusher's report.
fn wait_report(p: &Pusher, done: impl Fn(&PushReport) -> bool) -> PushReport {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let r = p.report();
        if done(&r) || Instant::now() >= end {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn secs_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// --- the receiver itself ---------------------------------------------------

#[test]
fn receiver_decodes_query_and_multipart() {
    assert_eq!(
        parse_query("name=a%7Bk%3Dv%7D&x=1+2&y"),
        [
            ("name".to_string(), "a{k=v}".to_string()),
            ("x".into(), "1 2".into()),
            ("y".into(), "".into())
        ]
    );
    let body = b"--B\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nzz\r\n\
                 --B\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n\x1f\x8b\r\nxy\r\n--B--\r\n";
    let p = multipart_part(body, "multipart/form-data; boundary=B", "profile").unwrap();
    assert_eq!(p.data, b"\x1f\x8b\r\nxy");
    assert!(multipart_part(body, "multipart/form-data; boundary=B", "nope").is_none());
    assert!(multipart_part(body, "text/plain", "profile").is_none());
}

// --- the pusher, driven directly ---------------------------------------------

/// 500, 500, then 200: the profile arrives on the third request, the two
/// repeats are counted, nothing is dropped or reported.
#[test]
fn pusher_retries_server_errors_then_delivers() {
    let r = Receiver::start();
    r.answer_next(&[500, 500]);
    let p = Pusher::start(config(&r)).unwrap();
    p.submit(b"profile-bytes".to_vec(), at(1000), at(1010));
    let rep = p.finish(Duration::from_secs(20));
    assert_eq!(
        (rep.sent, rep.retries, rep.dropped_total()),
        (1, 2, 0),
        "{rep:?}"
    );
    assert_eq!(rep.sent_bytes, 13);
    assert_eq!(
        rep.last_error.as_deref(),
        Some("HTTP 500 Internal Server Error: receiver says no")
    );
    assert!(rep.warnings().is_empty(), "{:?}", rep.warnings());
    let got = r.requests();
    assert_eq!(got.len(), 3);
    for q in &got {
        assert_eq!((q.method.as_str(), q.path.as_str()), ("POST", "/ingest"));
        assert_eq!(q.profile(), b"profile-bytes");
        assert_eq!(q.param("from"), Some("1000"));
        assert_eq!(q.param("until"), Some("1010"));
    }
}

/// The server is down for 4 s while five profiles are submitted, then
/// comes back on the same port: all five arrive, oldest first, none lost.
#[test]
fn pusher_delivers_backlog_in_order_after_outage() {
    let mut r = Receiver::start();
    r.stop();
    let p = Pusher::start(config(&r)).unwrap();
    for i in 0..5u64 {
        p.submit(
            format!("profile-{i}").into_bytes(),
            at(100 + i),
            at(101 + i),
        );
        std::thread::sleep(Duration::from_millis(800));
    }
    let before = p.report();
    assert_eq!(before.sent, 0, "{before:?}");
    assert_eq!(before.last_error.as_deref(), Some(REFUSED));
    r.restart();
    let rep = p.finish(Duration::from_secs(20));
    assert_eq!((rep.sent, rep.dropped_total()), (5, 0), "{rep:?}");
    assert!(rep.retries >= 1, "{rep:?}");
    assert!(rep.warnings().is_empty());
    let got = r.requests();
    let bodies: Vec<String> = got
        .iter()
        .map(|q| String::from_utf8(q.profile()).unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "profile-0",
            "profile-1",
            "profile-2",
            "profile-3",
            "profile-4"
        ]
    );
    let froms: Vec<&str> = got.iter().map(|q| q.param("from").unwrap()).collect();
    assert_eq!(froms, ["100", "101", "102", "103", "104"]);
}

/// A byte bound too small for the backlog: what does not fit is dropped,
/// counted and reported with the bound; what fit arrives.
#[test]
fn pusher_drops_what_does_not_fit_and_says_so() {
    let mut r = Receiver::start();
    r.stop();
    let mut c = config(&r);
    c.buffer_bytes = 1000;
    let p = Pusher::start(c).unwrap();
    p.submit(vec![b'a'; 600], at(1), at(2));
    // The first is being tried (and failing) before the others come.
    let seen = wait_report(&p, |r| r.last_error.is_some());
    assert_eq!(seen.last_error.as_deref(), Some(REFUSED));
    p.submit(vec![b'b'; 600], at(2), at(3));
    p.submit(vec![b'c'; 1500], at(3), at(4));
    p.submit(vec![b'd'; 400], at(4), at(5));
    r.restart();
    let rep = p.finish(Duration::from_secs(20));
    assert_eq!(rep.sent, 2, "{rep:?}");
    assert_eq!(rep.dropped(DropReason::BufferFull), 2, "{rep:?}");
    assert_eq!(rep.dropped_total(), 2);
    assert_eq!(
        rep.warnings(),
        [format!(
            "2 profile(s) could not be pushed to {}/ingest: they did not fit in the push buffer \
             (1000 bytes) while the server was not taking them (last error: {REFUSED})",
            r.url()
        )]
    );
    let got: Vec<Vec<u8>> = r.requests().iter().map(|q| q.profile()).collect();
    assert_eq!(got, [vec![b'a'; 600], vec![b'd'; 400]]);
}

/// Profiles the server did not take within the age bound are dropped,
/// counted and reported, even when it is back by the end.
#[test]
fn pusher_drops_profiles_older_than_max_age() {
    let mut r = Receiver::start();
    r.stop();
    let mut c = config(&r);
    c.max_age = Duration::from_secs(1);
    let p = Pusher::start(c).unwrap();
    p.submit(b"old-1".to_vec(), at(1), at(2));
    p.submit(b"old-2".to_vec(), at(2), at(3));
    let seen = wait_report(&p, |r| r.dropped(DropReason::TooOld) == 2);
    assert_eq!(seen.dropped(DropReason::TooOld), 2, "{seen:?}");
    r.restart();
    p.submit(b"new".to_vec(), at(3), at(4));
    let rep = p.finish(Duration::from_secs(20));
    assert_eq!((rep.sent, rep.dropped_total()), (1, 2), "{rep:?}");
    assert_eq!(
        rep.warnings(),
        [format!(
            "2 profile(s) could not be pushed to {}/ingest: they were not delivered within \
             --push-max-age (1 s) (last error: {REFUSED})",
            r.url()
        )]
    );
    let got: Vec<Vec<u8>> = r.requests().iter().map(|q| q.profile()).collect();
    assert_eq!(got, [b"new".to_vec()]);
}

/// A server slower than the request timeout: the request is given up and
/// made again; once the server is quick again the profile arrives.
#[test]
fn pusher_retries_a_slow_server_after_timeout() {
    let r = Receiver::start();
    r.set_delay(Duration::from_secs(3));
    let mut c = config(&r);
    c.request_timeout = Duration::from_millis(300);
    let p = Pusher::start(c).unwrap();
    p.submit(b"slow".to_vec(), at(1), at(2));
    let seen = wait_report(&p, |r| r.last_error.is_some());
    r.set_delay(Duration::ZERO);
    let rep = p.finish(Duration::from_secs(20));
    assert_eq!((rep.sent, rep.dropped_total()), (1, 0), "{rep:?}");
    assert!(rep.retries >= 1, "{rep:?}");
    let err = seen.last_error.unwrap_or_default();
    assert!(err.contains("timed out"), "{err}");
    let got = r.requests();
    assert!(got.len() >= 2, "{got:?}");
    assert!(got.iter().all(|q| q.profile() == b"slow"));
}

/// A profile the server refuses (HTTP 400) is tried three times and then
/// dropped, so it cannot hold back the ones behind it.
#[test]
fn pusher_gives_up_on_a_refused_profile() {
    let r = Receiver::start();
    r.answer_next(&[400, 400, 400]);
    let p = Pusher::start(config(&r)).unwrap();
    p.submit(b"bad".to_vec(), at(1), at(2));
    p.submit(b"good".to_vec(), at(2), at(3));
    let rep = p.finish(Duration::from_secs(20));
    assert_eq!(
        (rep.sent, rep.dropped(DropReason::Refused), rep.retries),
        (1, 1, 2),
        "{rep:?}"
    );
    assert_eq!(
        rep.warnings(),
        [format!(
            "1 profile(s) could not be pushed to {}/ingest: the server refused them (last error: \
             HTTP 400 Bad Request: receiver says no)",
            r.url()
        )]
    );
    let got: Vec<Vec<u8>> = r.requests().iter().map(|q| q.profile()).collect();
    assert_eq!(got, [&b"bad"[..], b"bad", b"bad", b"good"]);
}

// --- the binary ---------------------------------------------------------------

/// A host-only script printing two backtrace records (7 and 3 samples).
const PRINTING: &str =
    r#"probe begin { printf("C:leaf_a\nC:main\n\t7\nC:leaf_b\nC:main\n\t3\n") exit() }"#;

/// `-v` summary of one delivered profile: its size varies, the rest not.
fn summary_line(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pyroscope: "))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let bytes = line
        .split(" profile(s) (")
        .nth(1)
        .and_then(|s| s.split(" bytes)").next())
        .unwrap_or("?");
    line.replace(bytes, "N")
}

/// A run of a host-only script: one request at the end, with the query
/// Pyroscope's API documents and the profile as the multipart `profile`
/// file; `go tool pprof` reads it, with the run's counts.
#[test]
fn run_pushes_its_profile_once() {
    let r = Receiver::start();
    let t0 = secs_now();
    let (code, out, err) = support::stapxx(&["-v", "-e", PRINTING, "--pyroscope", &r.url()]);
    let t1 = secs_now();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "C:leaf_a\nC:main\n\t7\nC:leaf_b\nC:main\n\t3\n");
    assert!(!err.contains("WARNING"), "{err}");
    assert_eq!(
        summary_line(&err),
        format!(
            "pyroscope: 1 profile(s) (N bytes) pushed to {}/ingest, 0 retries, none dropped",
            r.url()
        )
    );
    let got = r.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    let q = &got[0];
    assert_eq!((q.method.as_str(), q.path.as_str()), ("POST", "/ingest"));
    let keys: Vec<&str> = q.query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["name", "from", "until", "format", "sampleRate", "spyName"]
    );
    // No executable: the fallback application name, no tags.
    assert_eq!(q.param("name"), Some("stapxx-rs{}"));
    assert_eq!(q.param("format"), Some("pprof"));
    assert_eq!(q.param("spyName"), Some("stapxx-rs"));
    assert_within(q, t0, t1);
    assert!(q
        .header("content-type")
        .unwrap()
        .starts_with("multipart/form-data; boundary="));
    if !have_go() {
        return;
    }
    let dir = support::scratch().join("push-host");
    let file = save_profile(&dir, "pushed.pb.gz", &q.profile());
    let top = go_pprof(&file, &["-top", "-sample_index=samples"]);
    assert!(
        top.contains("Showing nodes accounting for 10, 100% of 10 total"),
        "{top}"
    );
    assert_rate_is_period(&file, q);
}

/// The server is down when the run ends: the run ends anyway, after the
/// grace, exit status 0, and says what was not pushed and why.
#[test]
fn run_ends_with_the_server_down_and_says_so() {
    let mut r = Receiver::start();
    r.stop();
    let (code, out, err) = support::stapxx(&["-e", PRINTING, "--pyroscope", &r.url()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "C:leaf_a\nC:main\n\t7\nC:leaf_b\nC:main\n\t3\n");
    assert_eq!(
        err,
        format!(
            "WARNING: 1 profile(s) could not be pushed to {}/ingest: they were not delivered \
             within the 5 s the end of the run waits for them (last error: {REFUSED})\n",
            r.url()
        )
    );
}

/// Bad push options are one clear error before anything runs.
#[test]
fn bad_push_options_are_errors() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--pyroscope", "ftp://h:1"],
            "bad --pyroscope URL 'ftp://h:1': the scheme must be http or https, not 'ftp'",
        ),
        (
            &["--pyroscope", "http://h:1/?a=b"],
            "bad --pyroscope URL 'http://h:1/?a=b': it must not have a query or fragment (the \
             push adds /ingest and its own query)",
        ),
        (
            &["--pyroscope", "http://h:1", "--pyroscope-tag", "env=a,b"],
            "bad --pyroscope-tag 'env=a,b': ',' is not allowed in a value (no ',', '{', '}', \
             '=', spaces or control characters)",
        ),
        (
            &["--pyroscope", "http://h:1", "--pyroscope-app", "my app"],
            "bad --pyroscope-app 'my app': ' ' is not allowed (letters, digits, '_', '.', '-', \
             '/')",
        ),
        (
            &["--pyroscope-tag", "env=x"],
            "--pyroscope-tag needs --pyroscope URL",
        ),
    ];
    for (args, msg) in cases {
        let mut all = vec!["-e", PRINTING];
        all.extend_from_slice(args);
        let (code, out, err) = support::stapxx(&all);
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
        assert_eq!(err, format!("stapxx-rs: {msg}\n"), "{args:?}");
    }
}

/// The headline: lj-lua-stacks sampling a LuaJIT workload whose time is
/// split 3:1 between two functions, pushed at the end. One request with
/// the application, tag and times asked for; the profile read by `go tool
/// pprof` has the run's printed sample count and `heavy` dominant.
#[test]
fn lj_lua_stacks_pushes_to_pyroscope() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let Some(lj) = luajit::get(Variant::Gc64) else {
        return;
    };
    if !have_go() {
        return;
    }
    let r = Receiver::start();
    let target = lj.start(&lj.luajit, &["-joff"], "split.lua");
    let t0 = secs_now();
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(support::workspace_root())
        .args([
            "examples/lj-lua-stacks.sxx",
            "-x",
            &target.pid().to_string(),
        ])
        .args(["--arg", "time=3", "--arg", "min=0"])
        .args(["--pyroscope", &r.url(), "--pyroscope-app", "myapp"])
        .args(["--pyroscope-tag", "env=test"])
        .output()
        .expect("run stapxx-rs");
    let t1 = secs_now();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("could not be pushed"), "{stderr}");
    let total: u64 = support::backtraces(&stdout).iter().map(|b| b.1).sum();
    assert!(total >= 100, "only {total} samples: {stderr}");

    let got = r.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    let q = &got[0];
    assert_eq!((q.method.as_str(), q.path.as_str()), ("POST", "/ingest"));
    assert_eq!(q.query.len(), 6, "{:?}", q.query);
    assert_eq!(q.param("name"), Some("myapp{env=test}"));
    assert_eq!(q.param("format"), Some("pprof"));
    assert_eq!(q.param("spyName"), Some("stapxx-rs"));
    assert_within(q, t0, t1);

    let dir = support::scratch().join("push-lj");
    let file = save_profile(&dir, "lj.pb.gz", &q.profile());
    // timer.profile samples once a tick: the period is 1/CONFIG_HZ, and
    // sampleRate says the same in Hz.
    assert_rate_is_period(&file, q);

    let top = go_pprof(&file, &["-top", "-sample_index=samples"]);
    assert!(
        top.contains(&format!(
            "Showing nodes accounting for {total}, 100% of {total} total"
        )),
        "{top}"
    );
    // The first row of -top is the largest flat count.
    let rows: Vec<(u64, String)> = top
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some((w.first()?.parse().ok()?, w.last()?.to_string()))
        })
        .collect();
    assert!(rows[0].1.ends_with(":heavy"), "{top}");
    let light = rows
        .iter()
        .find(|r| r.1.ends_with(":light"))
        .unwrap_or_else(|| panic!("no light in {top}"));
    let share = rows[0].0 as f64 * 100.0 / total as f64;
    assert!(
        (share - 75.0).abs() <= 10.0 && rows[0].0 > 2 * light.0,
        "heavy {share:.1}% ({} vs light {}): {top}",
        rows[0].0,
        light.0
    );
}

/// Runs lj-lua-stacks on split.lua for `secs` with `--interval 2`, pushing
/// to `r`, numbered folded files in a scratch directory, and `extra`
/// options; `during` runs meanwhile (on the receiver). Returns stdout,
/// stderr and the folded files' totals, in interval order.
fn interval_run(
    r: &mut Receiver,
    name: &str,
    secs: u32,
    extra: &[&str],
    during: impl FnOnce(&mut Receiver),
) -> (String, String, Vec<u64>) {
    let lj = luajit::get(Variant::Gc64).expect("LuaJIT");
    let target = lj.start(&lj.luajit, &["-joff"], "split.lua");
    let dir = support::scratch().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(support::workspace_root())
        .args([
            "examples/lj-lua-stacks.sxx",
            "-x",
            &target.pid().to_string(),
        ])
        .args(["--arg", &format!("time={secs}"), "--arg", "min=0"])
        .args(["--interval", "2", "--pyroscope", &r.url(), "--folded"])
        .arg(dir.join("split.folded"))
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run stapxx-rs");
    during(r);
    let out = child.wait_with_output().expect("wait for stapxx-rs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let mut totals = Vec::new();
    while let Ok(text) =
        std::fs::read_to_string(dir.join(format!("split.{}.folded", totals.len() + 1)))
    {
        totals.push(
            text.lines()
                .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
                .sum(),
        );
    }
    (stdout, stderr, totals)
}

/// `--interval 2` with the receiver gone for 4 s in the middle: every
/// interval's profile arrives, late ones included, in order, each the
/// interval's samples exactly (as its numbered folded file has them), and
/// together the run's printed total.
#[test]
fn interval_profiles_survive_an_outage() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    if luajit::get(Variant::Gc64).is_none() || !have_go() {
        return;
    }
    let mut r = Receiver::start();
    let (stdout, stderr, totals) = interval_run(&mut r, "push-outage", 9, &[], |r| {
        std::thread::sleep(Duration::from_secs(3));
        r.stop();
        std::thread::sleep(Duration::from_secs(4));
        r.restart();
    });
    assert!(!stderr.contains("could not be pushed"), "{stderr}");
    assert!((4..=6).contains(&totals.len()), "{totals:?}: {stderr}");
    let got = r.requests();
    assert_eq!(got.len(), totals.len(), "{stderr}");
    let dir = support::scratch().join("push-outage");
    let mut last_from = 0;
    for (i, q) in got.iter().enumerate() {
        let from: u64 = q.param("from").unwrap().parse().unwrap();
        assert!(from >= last_from, "request {i} out of order");
        last_from = from;
        let file = save_profile(&dir, &format!("p{i}.pb.gz"), &q.profile());
        let top = go_pprof(&file, &["-top", "-sample_index=samples"]);
        let n = totals[i];
        assert!(
            top.contains(&format!(
                "Showing nodes accounting for {n}, 100% of {n} total"
            )),
            "interval {}: {top}",
            i + 1
        );
    }
    let printed: u64 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix('\t'))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(totals.iter().sum::<u64>(), printed);
}

/// The same outage with `--push-max-age 1`: the profiles that waited
/// longer are dropped, and the run says how many.
#[test]
fn interval_profiles_too_old_are_counted() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    if luajit::get(Variant::Gc64).is_none() {
        return;
    }
    let mut r = Receiver::start();
    let (_, stderr, totals) =
        interval_run(&mut r, "push-too-old", 9, &["--push-max-age", "1"], |r| {
            std::thread::sleep(Duration::from_secs(1));
            r.stop();
            std::thread::sleep(Duration::from_secs(6));
            r.restart();
        });
    let got = r.requests().len();
    let dropped = totals.len() - got;
    assert!(dropped >= 1, "{got} of {}: {stderr}", totals.len());
    assert!(
        stderr.contains(&format!(
            "WARNING: {dropped} profile(s) could not be pushed to {}/ingest: they were not \
             delivered within --push-max-age (1 s)",
            r.url()
        )),
        "{stderr}"
    );
}
