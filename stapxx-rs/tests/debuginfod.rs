//! Debug info from debuginfod: a real server (Debian's `debuginfod`) on
//! loopback serves split debug files of our `-g` builds (`objcopy
//! --only-keep-debug`, the targets then stripped of their DWARF); pass 2
//! resolves target variables of the stripped executable and shared library
//! through it, into elfutils' cache layout. A miss names every place and
//! server tried; a server that never answers ends at DEBUGINFOD_TIMEOUT.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A fixture built `-g -O0` (then FLAGS: distinct flags, recorded in the
/// DWARF, give distinct build-ids): its stripped copy, its split debug
/// file, its build-id.
struct Split {
    stripped: PathBuf,
    debug: PathBuf,
    build_id: String,
}

fn split(name: &str, flags: &[&str], served: &Path) -> Split {
    let dir = support::scratch().join("debuginfod");
    std::fs::create_dir_all(served).expect("served dir");
    std::fs::create_dir_all(&dir).expect("dir");
    let full = dir.join(format!("{name}.full"));
    support::must(
        Command::new("cc")
            .args(["-g", "-O0"])
            .args(flags)
            .arg(support::workspace_root().join("tests/fixtures/unwind.c"))
            .arg("-o")
            .arg(&full),
    );
    let debug = served.join(format!("{name}.debug"));
    support::must(
        Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(&full)
            .arg(&debug),
    );
    let stripped = dir.join(name);
    std::fs::copy(&full, &stripped).expect("copy");
    support::must(Command::new("strip").arg("-g").arg(&stripped));
    let notes = support::must(Command::new("readelf").arg("-n").arg(&stripped));
    let build_id = notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .expect("a build-id")
        .to_string();
    Split {
        stripped,
        debug,
        build_id,
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `debuginfod -F DIR` on a loopback port, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Started and serving `ready_id` (its first scan is done).
    fn start(dir: &Path, ready_id: &str) -> Server {
        let port = free_port();
        let db = support::scratch().join(format!("debuginfod-{port}.sqlite"));
        let child = Command::new("debuginfod")
            .arg("-F")
            .arg(dir)
            .args(["-p", &port.to_string(), "-d"])
            .arg(&db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start debuginfod");
        let s = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let probe = format!("{}/buildid/{ready_id}/debuginfo", s.url);
        let ok = support::wait_until(Duration::from_secs(60), || {
            Command::new("python3")
                .args([
                    "-c",
                    "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)",
                    &probe,
                ])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success())
        });
        assert!(ok, "debuginfod did not serve {probe}");
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_server() -> bool {
    if support::have_tool("debuginfod") {
        return true;
    }
    support::missing("debuginfod (package debuginfod)");
    false
}

/// `stapxx-rs -p2 -e SCRIPT` with the debuginfod environment.
fn p2(script: &str, urls: &str, cache: &Path, timeout: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"));
    cmd.args(["-p2", "-e", script])
        .env("DEBUGINFOD_URLS", urls)
        .env("DEBUGINFOD_CACHE_PATH", cache);
    if let Some(t) = timeout {
        cmd.env("DEBUGINFOD_TIMEOUT", t);
    }
    let out = cmd.output().expect("run stapxx-rs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn var_script(bin: &Path, function: &str) -> String {
    format!(
        "probe process(\"{}\").function(\"{function}\") {{ println($n) }}",
        bin.display()
    )
}

#[test]
fn executable_and_library_by_build_id() {
    if !have_server() {
        return;
    }
    let served = support::scratch().join("debuginfod-served");
    let exe = split("prog", &[], &served);
    let lib = split(
        "libunwindlib.so",
        &["-fPIC", "-shared", "-DUNWIND_LIB"],
        &served,
    );
    let server = Server::start(&served, &exe.build_id);
    let cache = support::scratch().join("debuginfod-cache");
    let _ = std::fs::remove_dir_all(&cache);
    for (s, function) in [(&exe, "level4"), (&lib, "lib_inner")] {
        // Without a server: no DWARF, and the message says where it looked.
        let (code, _, err) = p2(&var_script(&s.stripped, function), "", &cache, None);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("DEBUGINFOD_URLS is not set"), "{err}");
        let (code, out, err) = p2(
            &var_script(&s.stripped, function),
            &server.url,
            &cache,
            None,
        );
        assert_eq!(code, 0, "{function}: {err}");
        assert!(out.contains("println(user_"), "{out}");
        // elfutils' cache layout, the served file byte for byte.
        let cached = cache.join(&s.build_id).join("debuginfo");
        assert_eq!(
            std::fs::read(&cached).expect("cached"),
            std::fs::read(&s.debug).expect("served"),
        );
    }
    // The cache serves once the server is gone.
    drop(server);
    let (code, _, err) = p2(
        &var_script(&exe.stripped, "level4"),
        "http://127.0.0.1:9",
        &cache,
        None,
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn every_place_and_server_tried_is_named() {
    if !have_server() {
        return;
    }
    let served = support::scratch().join("debuginfod-other");
    let other = split("other", &["-O1"], &served);
    let exe = split(
        "prog-miss",
        &["-fno-omit-frame-pointer"],
        &support::scratch().join("unserved"),
    );
    let server = Server::start(&served, &other.build_id);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let cache = support::scratch().join("debuginfod-cache-miss");
    let urls = format!("{dead} {}", server.url);
    let (code, _, err) = p2(&var_script(&exe.stripped, "level4"), &urls, &cache, None);
    assert_eq!(code, 1, "{err}");
    let id = &exe.build_id;
    for want in [
        format!(
            "{}/{id}/debuginfo (not in the debuginfod cache)",
            cache.display()
        ),
        format!("{dead}/buildid/{id}/debuginfo (unreachable: Connection Failed"),
        format!(
            "{}/buildid/{id}/debuginfo (not on this server (404))",
            server.url
        ),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn a_silent_server_ends_at_the_timeout() {
    let exe = split(
        "prog-silent",
        &["-fno-strict-aliasing"],
        &support::scratch().join("unserved-silent"),
    );
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in listener.incoming().take(1) {
            conns.push(c);
            std::thread::sleep(Duration::from_secs(20));
        }
    });
    let cache = support::scratch().join("debuginfod-cache-silent");
    let (code, _, err) = p2(
        &var_script(&exe.stripped, "level4"),
        &url,
        &cache,
        Some("1"),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{url}/buildid/{}/debuginfo (unreachable: ",
            exe.build_id
        )) && err.contains("timed out"),
        "{err}"
    );
    drop(held);
}
