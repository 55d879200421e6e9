//! Reading the script file given on the command line.
//!
//! A regular file is read whole. A directory is an error. Anything else a
//! path can name that yields bytes (a FIFO, `/dev/stdin`, process
//! substitution's `/dev/fd/N`, a character device) is read as a stream to
//! its end, as stap reads it: `stapxx-rs <(make-script)` works. Such a read
//! waits for whoever writes; so that a wait is never silent, a note on
//! stderr says so after a second, and a stream that never ends (`/dev/zero`)
//! stops at [`MAX_STREAM`] with an error instead of filling memory.
//!
//! The bytes become text through [`grammar::decode_source`]: bytes that
//! are not UTF-8 are an error at their place (or harmless in comments).

use grammar::{Diagnostic, SourceMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// The most a script read from a stream may hold.
pub const MAX_STREAM: u64 = 64 << 20;

/// How long a stream read may wait before the note about it.
const PATIENCE: Duration = Duration::from_secs(1);

/// The text of the script file `path`; a decoding error is registered in
/// `sources` under `name` so that it can quote the line.
pub fn read(path: &Path, name: &str, sources: &mut SourceMap) -> Result<String, Diagnostic> {
    let cannot =
        |why: String| Diagnostic::bare(format!("cannot read script {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| cannot(e.to_string()))?;
    let bytes = if meta.is_dir() {
        return Err(cannot("it is a directory".into()));
    } else if meta.is_file() {
        std::fs::read(path).map_err(|e| cannot(e.to_string()))?
    } else {
        read_stream(path, &meta).map_err(cannot)?
    };
    grammar::decode_source(bytes).map_err(|e| e.report(sources, name))
}

/// What kind of non-regular file `meta` is, for messages.
fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads a FIFO or device to its end (at most [`MAX_STREAM`] bytes) on a
/// helper thread; after [`PATIENCE`] without an end, says what it waits for.
fn read_stream(path: &Path, meta: &std::fs::Metadata) -> Result<Vec<u8>, String> {
    let (tx, rx) = mpsc::channel();
    let owned: PathBuf = path.to_path_buf();
    std::thread::Builder::new()
        .name("script-reader".into())
        .spawn(move || {
            let res = std::fs::File::open(&owned).and_then(|f| {
                let mut buf = Vec::new();
                f.take(MAX_STREAM + 1).read_to_end(&mut buf)?;
                Ok(buf)
            });
            let _ = tx.send(res);
        })
        .map_err(|e| format!("cannot start a reader thread: {e}"))?;
    let res = match rx.recv_timeout(PATIENCE) {
        Ok(res) => res,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            crate::ewriteln!(
                "stapxx-rs: waiting for the script from {} ({}): it is read to its end, \
                 as stap reads it (Ctrl-C to give up)",
                path.display(),
                kind(meta)
            );
            rx.recv()
                .map_err(|_| "the reader thread ended without an answer".to_string())?
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err("the reader thread ended without an answer".into())
        }
    };
    let bytes = res.map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_STREAM {
        return Err(format!(
            "{} gave more than {} MiB without an end; a script read from {} must end",
            path.display(),
            MAX_STREAM >> 20,
            kind(meta)
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("stapxx-scriptfile-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    #[test]
    fn a_directory_is_an_error() {
        let mut sources = SourceMap::new();
        let d = read(&std::env::temp_dir(), "x", &mut sources).unwrap_err();
        assert!(d.message.ends_with(": it is a directory"), "{}", d.message);
    }

    #[test]
    fn an_endless_device_stops_at_the_limit() {
        let mut sources = SourceMap::new();
        let d = read(Path::new("/dev/zero"), "x", &mut sources).unwrap_err();
        assert_eq!(
            d.message,
            "cannot read script /dev/zero: /dev/zero gave more than 64 MiB without an end; \
             a script read from a character device must end"
        );
    }

    #[test]
    fn a_fifo_is_read_to_its_end() {
        let fifo = scratch("fifo.stp");
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo(3) only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, "probe begin { exit() }\n").unwrap())
        };
        let mut sources = SourceMap::new();
        let text = read(&fifo, "x", &mut sources).unwrap();
        writer.join().unwrap();
        assert_eq!(text, "probe begin { exit() }\n");
        let _ = std::fs::remove_file(&fifo);
    }
}
