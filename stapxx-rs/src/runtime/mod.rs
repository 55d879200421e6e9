//! Pass 5 for host probes: runs `begin`, `end`, `error`, `never` and
//! `timer.s/ms/us/ns/hz/jiffies(N)` probes (`Exec::Host`) in stapxx-rs
//! itself, by interpreting the IR, with stap's semantics.
//!
//! * [`values`]: global storage (scalars, insertion-ordered arrays with
//!   stap's limits, per-CPU statistics with stap's aggregation) and the API
//!   to merge kernel map contents in ([`Globals`]).
//! * [`format`]: `printf`/`sprintf` conversions and the `@hist_log` /
//!   `@hist_linear` text, byte for byte as stap prints them.
//! * [`interp`]: the interpreter (arithmetic, strings, arrays, control flow,
//!   errors and `try`/`catch`, MAXACTION, builtins).
//! * [`host`]: target memory (`/proc/PID/mem`), module biases, symbols,
//!   clocks.
//! * [`output`]: buffered stdout, `WARNING:`/`ERROR:` lines on stderr.
//! * [`session`]: the lifecycle (begin, timers, signals, `-c`, end/error,
//!   the error summary and the exit status).
//!
//! [`run`] does the whole thing for a program whose probes are all host
//! probes. A back end that also runs kernel probes drives a [`Session`]
//! itself: [`Session::start`], then [`Session::wait_step`] in its own loop,
//! then merge the BPF maps into [`Session::globals_mut`], then
//! [`Session::finish`].

mod entry_hold;
pub mod format;
pub mod host;
pub mod interp;
pub mod interval;
pub mod kernel_bridge;
mod lookup;
pub mod output;
pub mod session;
mod sregs;
pub mod textstr;
pub mod ustack;
pub mod values;

pub use interp::{Limits, Near, RtError};
pub use output::Output;
pub use session::{run, Config, Session, State};
pub use values::{Globals, Key, StatPartial, Value};

use crate::expand::Expansion;
use grammar::{FileId, SourceMap};

/// Where runtime errors point: the text each file was parsed from and how
/// to name a position in it.
pub trait SourceInfo {
    /// The text the IR's spans of `file` index (after stapxx expansion).
    fn text(&self, file: FileId) -> Option<&str>;
    /// `name:line:col` of a byte offset of that text, in the file as the
    /// user wrote it.
    fn position(&self, file: FileId, offset: u32) -> Option<String>;
    /// A span of that text moved to the file as the user wrote it (for
    /// diagnostics rendered against the original sources).
    fn original(&self, span: grammar::Span) -> grammar::Span {
        span
    }
}

/// [`SourceInfo`] over the driver's sources and the stapxx expansion.
/// Scripts given with `-e` are named `<input>`, as stap names them.
pub struct ScriptSources<'a> {
    pub sources: &'a SourceMap,
    pub expansion: &'a Expansion,
}

impl ScriptSources<'_> {
    fn file(&self, id: FileId) -> Option<&grammar::SourceFile> {
        self.sources.files().find(|(i, _)| *i == id).map(|(_, f)| f)
    }
}

impl SourceInfo for ScriptSources<'_> {
    fn text(&self, file: FileId) -> Option<&str> {
        match self.expansion.file(file) {
            Some(f) => Some(f.text.as_str()),
            None => self.file(file).map(|f| f.text.as_str()),
        }
    }

    fn original(&self, span: grammar::Span) -> grammar::Span {
        self.expansion.map_span(span)
    }

    fn position(&self, file: FileId, offset: u32) -> Option<String> {
        let span = grammar::Span {
            file,
            start: offset,
            end: offset,
        };
        let orig = self.expansion.map_span(span);
        let f = self.file(orig.file)?;
        let (line, col) = f.line_col(orig.start);
        let name = if f.name == "-e" { "<input>" } else { &f.name };
        Some(format!("{name}:{line}:{col}"))
    }
}

const KEYWORDS: &[&str] = &[
    "probe", "global", "private", "function", "if", "else", "for", "foreach", "in", "limit",
    "return", "delete", "while", "break", "continue", "next", "string", "long", "try", "catch",
];

const OPERATORS: &[&str] = &[
    "<<<", ">>=", "<<=", "==", "!=", "<=", ">=", "&&", "||", "++", "--", "+=", "-=", "*=", "/=",
    "%=", "&=", "|=", "^=", ".=", "<<", ">>", "=~", "!~", "->",
];

/// stap's description of the token at `at`: `identifier 'x'`,
/// `keyword 'while'`, `operator '/'`, `number '3'` or `string`.
fn token_at(text: &str, at: usize) -> Option<String> {
    let rest = text.get(at..)?;
    let b = rest.as_bytes();
    let first = *b.first()?;
    let word = |from: usize| -> usize {
        from + b[from..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'$')
            .count()
    };
    if first.is_ascii_alphabetic() || first == b'_' || first == b'$' || first == b'@' {
        let tok = &rest[..word(1)];
        let kind = if KEYWORDS.contains(&tok) {
            "keyword"
        } else {
            "identifier"
        };
        return Some(format!("{kind} '{tok}'"));
    }
    if first.is_ascii_digit() {
        return Some(format!("number '{}'", &rest[..word(0)]));
    }
    if first == b'"' {
        return Some("string".into());
    }
    let op = OPERATORS
        .iter()
        .find(|o| rest.starts_with(**o))
        .map(|o| o.to_string())
        .unwrap_or_else(|| rest.chars().next().map(String::from).unwrap_or_default());
    Some(format!("operator '{op}'"))
}

/// The " near ..." text of an error, without " near ".
pub fn describe_near(src: &dyn SourceInfo, near: Near) -> Option<String> {
    let (file, at) = match near {
        // (A span may start at the blanks before its token.)
        Near::At(span) => {
            let text = src.text(span.file)?;
            let from = span.start as usize;
            let blanks = text.get(from..)?.len() - text.get(from..)?.trim_start().len();
            (span.file, from + blanks)
        }
        Near::Operator { after, op } => {
            let text = src.text(after.file)?;
            let from = (after.end as usize).min(text.len());
            let found = text.get(from..)?.find(op)?;
            (after.file, from + found)
        }
    };
    let text = src.text(file)?;
    let tok = token_at(text, at)?;
    let pos = src.position(file, at as u32)?;
    Some(format!("{tok} at {pos}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_described_as_stap_does() {
        let t = "while (x / y) foo(\"s\") 12 <<< @count";
        assert_eq!(token_at(t, 0).unwrap(), "keyword 'while'");
        assert_eq!(token_at(t, 7).unwrap(), "identifier 'x'");
        assert_eq!(token_at(t, 9).unwrap(), "operator '/'");
        assert_eq!(token_at(t, 18).unwrap(), "string");
        assert_eq!(token_at(t, 23).unwrap(), "number '12'");
        assert_eq!(token_at(t, 26).unwrap(), "operator '<<<'");
        assert_eq!(token_at(t, 30).unwrap(), "identifier '@count'");
        assert!(token_at(t, 1000).is_none());
    }
}
