//! Command-line arguments that are not UTF-8.
//!
//! Paths (`-I`, `--exec`, `--flamegraph`, ...) may hold any bytes and go
//! through as they are. Text options are UTF-8 text: the script of `-e`
//! (whose non-UTF-8 bytes are judged as in a script file, by
//! [`grammar::decode_source`]: harmless in comments, an error with
//! `-e:LINE:COL` and a caret elsewhere), and `--arg` values, `-D`, `-c`
//! and the script's own arguments, which get an error that quotes the
//! argument with a caret under the first bad byte (clap alone would only
//! say that some argument somewhere is not UTF-8).

use crate::cli::Cli;
use clap::Parser;
use grammar::SourceMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// `argv` with every `-e` script decoded; exits with an error for an
/// argument clap would refuse as not UTF-8.
pub fn checked(argv: Vec<OsString>) -> Vec<OsString> {
    match check(argv) {
        Ok(argv) => argv,
        Err(msg) => {
            crate::ewrite!("{msg}");
            std::process::exit(1);
        }
    }
}

/// [`checked`] without the exit: the arguments, or the error to print.
pub fn check(mut argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    if argv.iter().all(|a| a.to_str().is_some()) {
        return Ok(argv);
    }
    for i in 1..argv.len() {
        if argv[i].to_str().is_some() {
            continue;
        }
        let Some(prefix) = script_prefix(&argv, i) else {
            continue;
        };
        let bytes = argv[i].as_bytes()[prefix.len()..].to_vec();
        match grammar::decode_source(bytes) {
            Ok(text) => argv[i] = OsString::from(format!("{prefix}{text}")),
            Err(e) => {
                let mut sources = SourceMap::new();
                return Err(e.report(&mut sources, "-e").render(&sources));
            }
        }
    }
    match Cli::try_parse_from(&argv) {
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {}
        // Every remaining one is a path, which may hold any bytes.
        _ => return Ok(argv),
    }
    let i = (1..argv.len())
        .find(|&i| argv[i].to_str().is_none() && !is_path_value(&argv, i))
        .or_else(|| (1..argv.len()).find(|&i| argv[i].to_str().is_none()))
        .unwrap_or(1);
    Err(describe(&argv, i))
}

/// Whether argument `i` is the script of `-e` (`-e TEXT` or `-eTEXT`);
/// then the text's prefix in the argument (`""` or `"-e"`).
fn script_prefix(argv: &[OsString], i: usize) -> Option<&'static str> {
    if argv[i - 1] == "-e" {
        Some("")
    } else if argv[i].as_bytes().starts_with(b"-e") {
        Some("-e")
    } else {
        None
    }
}

/// Options whose value is a path (any bytes allowed).
const PATH_OPTIONS: &[&str] = &[
    "-I",
    "-d",
    "--exec",
    "--dump-bpf",
    "--flamegraph",
    "--folded",
    "--lua-root",
];

fn is_path_value(argv: &[OsString], i: usize) -> bool {
    let a = argv[i].as_bytes();
    let prev = argv[i - 1].to_str().unwrap_or("");
    PATH_OPTIONS.contains(&prev)
        || a.starts_with(b"-I")
        || a.starts_with(b"-d")
        || PATH_OPTIONS
            .iter()
            .any(|o| o.starts_with("--") && a.starts_with(format!("{o}=").as_bytes()))
}

/// The error for argument `i`: which one it is, the argument with each bad
/// sequence shown as U+FFFD, and a caret under the first.
fn describe(argv: &[OsString], i: usize) -> String {
    let bytes = argv[i].clone().into_vec();
    let valid = match std::str::from_utf8(&bytes) {
        Ok(_) => bytes.len(),
        Err(e) => e.valid_up_to(),
    };
    let bad = bytes.get(valid).copied().unwrap_or(0);
    let shown = String::from_utf8_lossy(&bytes);
    let col = String::from_utf8_lossy(&bytes[..valid]).chars().count();
    let prev = argv[i - 1].to_str().unwrap_or("");
    let what = match prev {
        "--arg" => "the --arg value".to_string(),
        "-D" => "the -D value".to_string(),
        "-c" => "the -c command".to_string(),
        _ if bytes.starts_with(b"--arg=") => "the --arg value".to_string(),
        _ => format!("command-line argument {i}"),
    };
    let mut out = format!("error: byte 0x{bad:02x} in {what} is not UTF-8 text\n");
    out.push_str(&format!("    {}\n", shown.replace(['\t', '\n'], " ")));
    out.push_str(&format!("    {}^\n", " ".repeat(col)));
    if what == "the --arg value" {
        out.push_str("note: --arg values are put into the script, which is UTF-8 text\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(parts: &[&[u8]]) -> Vec<OsString> {
        std::iter::once(b"stapxx-rs".as_slice())
            .chain(parts.iter().copied())
            .map(|p| OsString::from_vec(p.to_vec()))
            .collect()
    }

    #[test]
    fn utf8_arguments_pass_unchanged() {
        let argv = os(&[b"-e", b"probe begin { exit() }"]);
        assert_eq!(check(argv.clone()).unwrap(), argv);
    }

    #[test]
    fn bytes_in_a_script_comment_are_harmless() {
        let argv = check(os(&[b"-e", b"probe begin { exit() } # caf\xe9"])).unwrap();
        assert_eq!(argv[2], "probe begin { exit() } # caf\u{fffd}");
        let argv = check(os(&[b"-eprobe begin { exit() } // \xff"])).unwrap();
        assert_eq!(argv[1], "-eprobe begin { exit() } // \u{fffd}");
    }

    #[test]
    fn bytes_in_script_code_are_errors_at_their_place() {
        let err = check(os(&[b"-p1", b"-e", b"probe begin {\n  x\xff = 1 }"])).unwrap_err();
        assert_eq!(
            err,
            "-e:2:4: error: byte 0xff is not UTF-8 text (outside strings and comments only ASCII is allowed)\n      x\u{fffd} = 1 }\n       ^\n"
        );
    }

    #[test]
    fn other_text_arguments_are_quoted_with_a_caret() {
        let err = check(os(&[b"x.stp", b"--arg", b"who=caf\xe9"])).unwrap_err();
        assert_eq!(
            err,
            "error: byte 0xe9 in the --arg value is not UTF-8 text\n    who=caf\u{fffd}\n           ^\nnote: --arg values are put into the script, which is UTF-8 text\n"
        );
        let err = check(os(&[b"x.stp", b"-I", b"lib/\xff", b"a\xfeb"])).unwrap_err();
        assert_eq!(
            err,
            "error: byte 0xfe in command-line argument 4 is not UTF-8 text\n    a\u{fffd}b\n     ^\n"
        );
    }

    #[test]
    fn paths_may_hold_any_bytes() {
        let argv = os(&[b"x.stp", b"-I", b"lib/\xff", b"--flamegraph=out/\xfe.svg"]);
        assert_eq!(check(argv.clone()).unwrap(), argv);
    }
}
