//! The script's output: stdout buffered (as stap's print buffer, flushed at
//! the end of every probe handler run and whenever it grows large), stderr
//! for `WARNING:`/`ERROR:` lines. Stdout is flushed before anything goes to
//! stderr, so the two interleave in the order they were written; it is also
//! flushed on drop, so nothing is lost on any exit path.
//!
//! A failed write to stdout is kept ([`Output::stdout_failure`]) for the
//! session, which then stops as staprun does when its output fails: a
//! reader that went away (`| head`) ends the run quietly, any other error
//! (a full disk) is told once on stderr. Later writes are still tried (the
//! `--flamegraph` copy wants every byte) but not told again. Writes to
//! stderr that fail are dropped: there is nowhere left to tell.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Bytes kept before stdout is flushed in the middle of a handler.
const FLUSH_AT: usize = 64 * 1024;

pub struct Output {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    buf: Vec<u8>,
    /// Warnings already shown (staprun shows each distinct one once unless -v).
    seen: HashSet<Vec<u8>>,
    dedup: bool,
    /// `ERROR:` lines printed so far.
    pub errors: u64,
    /// The first error writing stdout.
    stdout_failure: Option<std::io::ErrorKind>,
}

impl Output {
    /// The process's stdout and stderr. `dedup`: show each distinct warning
    /// once, as staprun does without `-v`. Stdout is also copied into the
    /// [`set_stdout_tee`] sink, when one is set.
    pub fn stdio(dedup: bool) -> Output {
        let tee = STDOUT_TEE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let out: Box<dyn Write + Send> = match tee {
            Some(copy) => Box::new(Tee {
                out: script_stdout(),
                copy,
            }),
            None => script_stdout(),
        };
        Output::new(out, Box::new(std::io::stderr()), dedup)
    }

    pub fn new(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>, dedup: bool) -> Output {
        Output {
            out,
            err,
            buf: Vec::new(),
            seen: HashSet::new(),
            dedup,
            errors: 0,
            stdout_failure: None,
        }
    }

    /// An output into memory (stdout, stderr), for tests.
    pub fn capture() -> (Output, Captured, Captured) {
        let o = Captured::default();
        let e = Captured::default();
        (
            Output::new(Box::new(o.clone()), Box::new(e.clone()), true),
            o,
            e,
        )
    }

    pub fn print(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        let mut result = Ok(());
        if !self.buf.is_empty() {
            result = self.out.write_all(&self.buf);
            self.buf.clear();
        }
        if let Err(e) = result.and_then(|()| self.out.flush()) {
            self.stdout_failed(e);
        }
    }

    /// Keep the first stdout failure; tell it unless the reader just went
    /// away (then the quiet end is the message).
    fn stdout_failed(&mut self, e: std::io::Error) {
        if self.stdout_failure.is_some() {
            return;
        }
        self.stdout_failure = Some(e.kind());
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let msg = format!("cannot write to standard output: {e}");
            self.write_line(b"ERROR: ", msg.as_bytes());
        }
    }

    /// Why stdout could not be written, if it could not.
    pub fn stdout_failure(&self) -> Option<std::io::ErrorKind> {
        self.stdout_failure
    }

    fn line(&mut self, prefix: &[u8], msg: &[u8]) {
        self.flush();
        self.write_line(prefix, msg);
    }

    fn write_line(&mut self, prefix: &[u8], msg: &[u8]) {
        let mut line = Vec::with_capacity(prefix.len() + msg.len() + 1);
        line.extend_from_slice(prefix);
        line.extend_from_slice(msg);
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        let _ = self.err.write_all(&line);
        let _ = self.err.flush();
    }

    /// `WARNING: msg` (a newline is added if missing).
    pub fn warn(&mut self, msg: &[u8]) {
        if self.dedup && !self.seen.insert(msg.to_vec()) {
            return;
        }
        self.line(b"WARNING: ", msg);
    }

    /// `system(cmd)`: what was printed before it goes out first, then
    /// `/bin/sh -c cmd` starts with the terminal's stdout and stderr, as
    /// staprun runs it, and runs on its own (reaped by a thread; a command
    /// that cannot start is a warning).
    pub fn system(&mut self, cmd: &str) {
        self.flush();
        let child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(mut c) => {
                std::thread::spawn(move || c.wait());
            }
            Err(e) => self.warn(format!("system({cmd:?}) did not start: {e}").as_bytes()),
        }
    }

    /// `ERROR: msg`, counted.
    pub fn error(&mut self, msg: &[u8]) {
        self.errors += 1;
        self.line(b"ERROR: ", msg);
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A second destination for the script's stdout.
pub type StdoutTee = Arc<Mutex<dyn Write + Send>>;

/// The sink [`Output::stdio`] copies stdout into (flame graphs: the driver's
/// `--flamegraph`/`--folded` fold the backtraces the run printed).
static STDOUT_TEE: Mutex<Option<StdoutTee>> = Mutex::new(None);

/// `-o FILE`: where the script's output goes instead of stdout.
static OUTPUT_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Send the script's output (outputs made with [`Output::stdio`] from now
/// on) to `file` instead of stdout.
pub fn set_output_file(file: std::fs::File) {
    *OUTPUT_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
}

/// Stdout, or the `-o` file (a handle sharing its offset).
fn script_stdout() -> Box<dyn Write + Send> {
    let file = OUTPUT_FILE.lock().unwrap_or_else(|e| e.into_inner());
    match file.as_ref().and_then(|f| f.try_clone().ok()) {
        Some(f) => Box::new(f),
        None => Box::new(std::io::stdout()),
    }
}

/// Copy everything printed to stdout by outputs made with [`Output::stdio`]
/// from now on into `tee` as well; `None` stops copying for new outputs.
pub fn set_stdout_tee(tee: Option<StdoutTee>) {
    *STDOUT_TEE.lock().unwrap_or_else(|e| e.into_inner()) = tee;
}

/// Stdout plus a copy. The copy gets every byte even when stdout fails (a
/// closed pipe), so the flame graph does not depend on the reader.
struct Tee {
    out: Box<dyn Write + Send>,
    copy: StdoutTee,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut c) = self.copy.lock() {
            let _ = c.write_all(buf);
        }
        self.out.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Ok(mut c) = self.copy.lock() {
            let _ = c.flush();
        }
        self.out.flush()
    }
}

/// A shared in-memory sink.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        match self.0.lock() {
            Ok(v) => String::from_utf8_lossy(&v).into_owned(),
            Err(_) => String::new(),
        }
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_flushes_stdout_first_and_dedups_warnings() {
        let (mut o, out, err) = Output::capture();
        o.print(b"a");
        o.warn(b"w");
        o.warn(b"w");
        o.error(b"e\n");
        o.print(b"b");
        drop(o);
        assert_eq!(out.text(), "ab");
        assert_eq!(err.text(), "WARNING: w\nERROR: e\n");
    }

    /// A sink that fails every write with one error.
    struct Failing(std::io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(self.0))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn stdout_failures_are_kept_and_told_once() {
        use std::io::ErrorKind;
        let err = Captured::default();
        let mut o = Output::new(
            Box::new(Failing(ErrorKind::StorageFull)),
            Box::new(err.clone()),
            true,
        );
        o.print(b"a");
        assert_eq!(o.stdout_failure(), None);
        o.flush();
        o.print(b"b");
        o.flush();
        assert_eq!(o.stdout_failure(), Some(ErrorKind::StorageFull));
        assert_eq!(
            err.text(),
            "ERROR: cannot write to standard output: no storage space\n"
        );
        // A reader that went away is no message.
        let err = Captured::default();
        let mut o = Output::new(
            Box::new(Failing(ErrorKind::BrokenPipe)),
            Box::new(err.clone()),
            true,
        );
        o.print(b"a");
        o.flush();
        assert_eq!(o.stdout_failure(), Some(ErrorKind::BrokenPipe));
        assert_eq!(err.text(), "");
    }
}
