//! `stapxx-rs` running in the background while a test drives its target:
//! its stdout and stderr collected as they come, waited for, interrupted
//! as Ctrl-C would, and checked to have ended cleanly with nothing left in
//! the kernel. It never asks a debuginfod server (`DEBUGINFOD_URLS` is
//! empty): what it resolves comes from the files at hand.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One of a child's output pipes.
type Pipe = Box<dyn std::io::Read + Send>;

/// A running `stapxx-rs`, its stdout and stderr collected by threads.
pub struct Stapxx {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Stapxx {
    /// `stapxx-rs SCRIPT ARGS` from the workspace root.
    pub fn start(script: &str, args: &[String]) -> Stapxx {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
            .current_dir(super::workspace_root())
            .arg(script)
            .args(args)
            .env("DEBUGINFOD_URLS", "")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stapxx-rs");
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let pipes: [(Pipe, &Arc<Mutex<String>>); 2] = [
            (Box::new(child.stdout.take().unwrap()), &out),
            (Box::new(child.stderr.take().unwrap()), &err),
        ];
        for (pipe, buf) in pipes {
            let buf = Arc::clone(buf);
            readers.push(std::thread::spawn(move || {
                let mut r = BufReader::new(pipe);
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    buf.lock().unwrap().push_str(&line);
                    line.clear();
                }
            }));
        }
        Stapxx {
            child,
            out,
            err,
            readers,
        }
    }

    pub fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits (20 s at most) until stderr holds `what`: the script's begin
    /// probe ran, so its probes are attached.
    pub fn wait_stderr(&mut self, what: &str) {
        let t0 = Instant::now();
        while !self.stderr().contains(what) {
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "stapxx-rs ended ({st}) before printing {what:?}: {}{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "no {what:?} within 20 s: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGINT (as Ctrl-C would), then [`Stapxx::finish`].
    pub fn interrupt(self) -> (String, String) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.finish()
    }

    /// Waits for the end; it must succeed without errors. Checks that
    /// nothing is left in the kernel. Returns stdout and stderr.
    pub fn finish(mut self) -> (String, String) {
        let status = self.child.wait().expect("wait for stapxx-rs");
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let (out, err) = (self.stdout(), self.stderr());
        assert!(status.success(), "stapxx-rs: {status}\n{out}\n{err}");
        assert!(!err.contains("error"), "stderr: {err}");
        super::assert_no_bpf_leftovers(self.child.id());
        (out, err)
    }
}

impl Stapxx {
    /// [`Stapxx::finish`] for a session under `--master` that follows
    /// workers: its bookkeeping probes (`expand/follow.rs`) run at every
    /// exec and process exit on the machine, and a sample that lands on a
    /// CPU while one of them runs is skipped, as stap skips a probe nested
    /// in another, and counted in the last line. That line may say so;
    /// nothing else may mention an error.
    pub fn finish_following(mut self) -> (String, String) {
        let status = self.child.wait().expect("wait for stapxx-rs");
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let (out, err) = (self.stdout(), self.stderr());
        assert!(status.success(), "stapxx-rs: {status}\n{out}\n{err}");
        for l in err.lines().filter(|l| l.contains("error")) {
            let skips = l
                .strip_prefix("WARNING: Number of errors: 0, skipped probes: ")
                .is_some_and(|n| n.parse::<u64>().is_ok());
            assert!(skips, "stderr: {err}");
        }
        super::assert_no_bpf_leftovers(self.child.id());
        (out, err)
    }

    /// SIGINT, then [`Stapxx::finish_following`].
    pub fn interrupt_following(self) -> (String, String) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.finish_following()
    }
}

impl Drop for Stapxx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` with `args` to its end (`--arg time=...`).
pub fn run(script: &str, args: &[String]) -> (String, String) {
    Stapxx::start(script, args).finish()
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}
