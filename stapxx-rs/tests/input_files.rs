//! What the front end reads besides well-formed UTF-8 files: bytes that
//! are not UTF-8 (in a script, a tapset, `-e`, `--arg`) and paths that
//! are not regular files (a FIFO or a directory as the script, a FIFO or a
//! device as a module). Each gets its place in the error, and nothing
//! waits forever.

mod support;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn stapxx(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run stapxx-rs")
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn bytes(b: &[u8]) -> &std::ffi::OsStr {
    std::ffi::OsStr::from_bytes(b)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(name: &str, content: &[u8]) -> PathBuf {
    let p = support::scratch().join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn mkfifo(name: &str) -> PathBuf {
    let p = support::scratch().join(name);
    let _ = std::fs::remove_file(&p);
    support::must(Command::new("mkfifo").arg(&p));
    p
}

/// A script file: bytes in comments are taken (stap takes any bytes
/// there); in a string or in code they are an error at the byte.
#[test]
fn non_utf8_script_bytes_are_errors_at_their_place() {
    let fine = write(
        "latin1-comment.stp",
        b"# caf\xe9\nprobe begin { /* \xff */ println(\"ok\") exit() } // \xfe\n",
    );
    let o = stapxx(&[fine.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ok\n");

    let in_string = write(
        "latin1-string.stp",
        b"# caf\xe9\nprobe begin {\n  printf(\"caf\xe9\\n\")\n}\n",
    );
    let o = stapxx(&[os("-p1"), in_string.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "{}:3:14: error: byte 0xe9 in this string is not UTF-8: stapxx-rs keeps strings as UTF-8 text\n      printf(\"caf\u{fffd}\\n\")\n                 ^\nnote: write the script in UTF-8 (a file: iconv -f LATIN1 -t UTF-8)\n",
            in_string.display()
        )
    );

    let in_code = write("latin1-code.stp", b"probe begin { x\xff = 1 }\n");
    let o = stapxx(&[os("-p1"), in_code.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "{}:1:16: error: byte 0xff is not UTF-8 text (outside strings and comments only ASCII is allowed)\n    probe begin {{ x\u{fffd} = 1 }}\n                   ^\n",
            in_code.display()
        )
    );
}

/// A tapset module (`@use`) and a macro library (`.stpm`) are judged the
/// same way, at their own place (a `.stpm` file used to be skipped
/// silently, its macros then "unknown").
#[test]
fn non_utf8_tapset_bytes_are_errors_at_their_place() {
    let dir = support::scratch().join("latin1-tapsets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("m.sxx"),
        b"// \xe9t\xe9\nfunction f() { return \"\xff\" }\n",
    )
    .unwrap();
    std::fs::write(dir.join("lib.stpm"), b"@define one %( 1 %) # \xff\n").unwrap();
    let o = stapxx(&[
        os("-p1"),
        os("-I"),
        dir.as_os_str(),
        os("-e"),
        os("@use m\nprobe begin { printf(\"%s%d\\n\", f(), @one) }"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "{}:2:24: error: byte 0xff in this string is not UTF-8: stapxx-rs keeps strings as UTF-8 text\n    function f() {{ return \"\u{fffd}\" }}\n                           ^\nnote: write the script in UTF-8 (a file: iconv -f LATIN1 -t UTF-8)\n",
            dir.join("m.sxx").display()
        )
    );
    // The macro library's comment byte is harmless: @one is defined.
    std::fs::write(dir.join("m.sxx"), b"function f() { return \"x\" }\n").unwrap();
    let o = stapxx(&[
        os("-I"),
        dir.as_os_str(),
        os("-e"),
        os("@use m\nprobe begin { printf(\"%s%d\\n\", f(), @one) exit() }"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "x1\n");
    std::fs::write(dir.join("lib.stpm"), b"@define one %( 1 \xfe %)\n").unwrap();
    let o = stapxx(&[
        os("-p1"),
        os("-I"),
        dir.as_os_str(),
        os("-e"),
        os("probe begin { }"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "{}:1:18: error: byte 0xfe is not UTF-8 text (outside strings and comments only ASCII is allowed)\n    @define one %( 1 \u{fffd} %)\n                     ^\n",
            dir.join("lib.stpm").display()
        )
    );
}

/// `-e` text is a script like a file's; `--arg` values and other text
/// arguments are quoted with a caret (clap only said "invalid UTF-8 was
/// detected in one or more arguments").
#[test]
fn non_utf8_arguments_are_errors_at_their_place() {
    let o = stapxx(&[
        os("-e"),
        bytes(b"probe begin { println(\"ok\") exit() } # \xe9"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ok\n");

    let o = stapxx(&[os("-p1"), os("-e"), bytes(b"probe begin {\n  x\xff = 1 }")]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "-e:2:4: error: byte 0xff is not UTF-8 text (outside strings and comments only ASCII is allowed)\n      x\u{fffd} = 1 }\n       ^\n"
    );

    let o = stapxx(&[
        os("-p1"),
        os("-e"),
        os("probe begin { println(\"$^arg_who\") }"),
        os("--arg"),
        bytes(b"who=caf\xe9"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: byte 0xe9 in the --arg value is not UTF-8 text\n    who=caf\u{fffd}\n           ^\nnote: --arg values are put into the script, which is UTF-8 text\n"
    );
}

/// A FIFO as the script is read to its end, as stap reads it (so
/// `stapxx-rs <(generate)` works), with a note while it waits; a
/// directory is an error.
#[test]
fn a_fifo_script_is_read_and_a_directory_refused() {
    let fifo = mkfifo("script.fifo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .arg("-p1")
        .arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The note comes before anything is written: the run waits for it.
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut err = std::io::BufReader::new(err);
        let mut first = String::new();
        let _ = err.read_line(&mut first);
        let _ = tx.send(first.trim_end().to_string());
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        rest
    });
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| {
            // Unblock the run before failing.
            let _ = child.kill();
            panic!("no note about the wait on stderr");
        });
    assert_eq!(
        first,
        format!(
            "stapxx-rs: waiting for the script from {} (a FIFO): it is read to its end, as stap reads it (Ctrl-C to give up)",
            fifo.display()
        )
    );
    std::fs::write(&fifo, "probe begin { exit() }\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(reader.join().unwrap(), "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "probe begin {\n  exit()\n}\n"
    );

    let dir = support::scratch();
    let o = stapxx(&[os("-p1"), dir.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "error: cannot read script {}: it is a directory\n",
            dir.display()
        )
    );
}

/// A FIFO, a device or a directory as a module (`@cast`'s path,
/// `process("...")`) is refused, naming the path; it used to block in
/// open(2) forever.
#[test]
fn non_regular_modules_are_refused() {
    let fifo = mkfifo("module.fifo");
    let f = fifo.display().to_string();
    for (script, col, what) in [
        (
            format!("probe begin {{ println(@cast(0, \"int\", \"{f}\")->x) }}"),
            23,
            format!("{f} is not a usable ELF file: a FIFO, not a regular file"),
        ),
        (
            format!("probe process(\"{f}\").function(\"main\") {{ }}"),
            7,
            format!(
                "probe point 'process(\"{f}\").function(\"main\")': {f} is not a usable ELF file: a FIFO, not a regular file"
            ),
        ),
        (
            "probe process(\"/dev/null\").function(\"main\") { }".to_string(),
            7,
            "probe point 'process(\"/dev/null\").function(\"main\")': /dev/null is not a usable ELF file: a device, not a regular file".to_string(),
        ),
    ] {
        let o = stapxx(&[os("-p2"), os("-e"), os(&script)]);
        assert_eq!(o.status.code(), Some(1), "{script}");
        let want = format!(
            "-e:1:{col}: error: {what}\n    {script}\n    {}^\n",
            " ".repeat(col - 1)
        );
        assert_eq!(stderr(&o), want);
    }
    let dir: &Path = support::scratch();
    let o = stapxx(&[
        os("-p2"),
        os("-e"),
        os(&format!(
            "probe process(\"{}\").function(\"main\") {{ }}",
            dir.display()
        )),
    ]);
    assert!(
        stderr(&o).contains(&format!(
            "{} is not a usable ELF file: a directory, not a regular file",
            dir.display()
        )),
        "{}",
        stderr(&o)
    );
}
