//! Reading stap backtrace output: records of frame lines (innermost frame
//! first) each closed by a count line (`\t<count>`), as `lj-lua-stacks.sxx`
//! and the other sampling scripts print them, the format FlameGraph's
//! `stackcollapse-stap.pl` reads.
//!
//! The reader is incremental ([`Collector`] is a [`Write`]), so a live run
//! can be fed as it prints without keeping its output: memory grows with the
//! number of distinct backtraces, not with the length of the output.
//!
//! * A line of only digits (surrounding blanks allowed) closes a record.
//! * Blank lines are skipped.
//! * Any other line is a frame, trimmed. The symbolic lines of stap's
//!   native backtraces (`0x4005d0 : main+0x1c/0x30 [/bin/foo]`, `main+0x1c
//!   [foo]`, ...) become the function's name (`main`; see [`native`]), and
//!   those names are remembered as C frames ([`Backtraces::native`]);
//!   `;` (the folded format's separator) becomes `,`.
//! * Frames left over at the end without a count line are not a record.
//! * A line `# KEY=VALUE ...` (words of that form only) gives the record
//!   labels (pid, executable, VM state, ...), for pprof's sample labels;
//!   records that differ only in labels are one backtrace in
//!   [`Backtraces::stacks`] and separate samples in
//!   [`Backtraces::samples`]. stap never prints such a line in a
//!   backtrace, so this costs nothing to output made without labels.
//!
//! [`native`]: super::native

use super::native;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;

/// The longest line kept; the rest of a longer line is dropped.
const MAX_LINE: usize = 64 * 1024;
/// Frames kept per record (innermost first); deeper frames are dropped.
const MAX_FRAMES: usize = 4096;

/// A record's labels, sorted by key.
pub type Labels = Vec<(String, String)>;

/// Distinct backtraces with their summed counts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Backtraces {
    /// Each distinct backtrace (frames innermost first) and its total,
    /// sorted by frames.
    pub stacks: Vec<(Vec<String>, u64)>,
    /// Each distinct backtrace and labels with its total, sorted.
    pub samples: Vec<(Vec<String>, Labels, u64)>,
    /// The frame names read from native (symbolic C) frame lines.
    pub native: BTreeSet<String>,
}

impl Backtraces {
    /// The sum of all counts.
    pub fn total(&self) -> u64 {
        self.stacks
            .iter()
            .fold(0u64, |acc, (_, n)| acc.saturating_add(*n))
    }
}

/// Parse a whole saved output.
pub fn parse(text: &[u8]) -> Backtraces {
    let mut c = Collector::new();
    c.feed(text);
    c.finish()
}

/// The incremental reader.
#[derive(Debug, Default)]
pub struct Collector {
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The current line went past [`MAX_LINE`].
    overlong: bool,
    /// Frames of the record being read, innermost first.
    frames: Vec<String>,
    /// The names in `frames` that came from native frame lines.
    frames_native: Vec<String>,
    /// The labels of the record being read.
    labels: Labels,
    stacks: HashMap<(Vec<String>, Labels), u64>,
    /// Native frame names of the records counted so far.
    native: HashSet<String>,
}

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Take the next bytes of output.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            self.push_bytes(&bytes[..nl]);
            let line = std::mem::take(&mut self.line);
            self.overlong = false;
            self.line_done(&line);
            bytes = &bytes[nl + 1..];
        }
        self.push_bytes(bytes);
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.line.len());
        if bytes.len() > room {
            self.overlong = true;
        }
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn line_done(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let line = text.trim();
        if line.is_empty() {
            return;
        }
        if line.bytes().all(|b| b.is_ascii_digit()) {
            let frames = std::mem::take(&mut self.frames);
            let natives = std::mem::take(&mut self.frames_native);
            let mut labels = std::mem::take(&mut self.labels);
            // A count too large for u64 saturates; a record without frames
            // has nothing to draw.
            let n = line.parse::<u64>().unwrap_or(u64::MAX);
            if !frames.is_empty() && n > 0 {
                labels.sort();
                let slot = self.stacks.entry((frames, labels)).or_insert(0);
                *slot = slot.saturating_add(n);
                self.native.extend(natives);
            }
            return;
        }
        if let Some(labels) = labels(line) {
            self.labels.extend(labels);
            return;
        }
        if self.frames.len() < MAX_FRAMES {
            let (name, is_native) = frame(line);
            if is_native {
                self.frames_native.push(name.clone());
            }
            self.frames.push(name);
        }
    }

    /// The backtraces read so far; an unfinished last line is read as if
    /// it ended, but frames without a count are dropped.
    pub fn finish(mut self) -> Backtraces {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line);
        }
        let mut samples: Vec<(Vec<String>, Labels, u64)> = self
            .stacks
            .into_iter()
            .map(|((f, l), n)| (f, l, n))
            .collect();
        samples.sort();
        let mut by_frames: HashMap<&Vec<String>, u64> = HashMap::new();
        for (f, _, n) in &samples {
            let slot = by_frames.entry(f).or_insert(0);
            *slot = slot.saturating_add(*n);
        }
        let mut stacks: Vec<(Vec<String>, u64)> =
            by_frames.into_iter().map(|(f, n)| (f.clone(), n)).collect();
        stacks.sort();
        Backtraces {
            stacks,
            samples,
            native: self.native.into_iter().collect(),
        }
    }

    /// As [`Collector::finish`], leaving this collector empty.
    pub fn take(&mut self) -> Backtraces {
        std::mem::take(self).finish()
    }
}

impl Write for Collector {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The labels of a `# KEY=VALUE ...` line; `None` for any other line.
fn labels(line: &str) -> Option<Labels> {
    let rest = line.strip_prefix("# ")?;
    let mut out = Vec::new();
    for word in rest.split_whitespace() {
        let (k, v) = word.split_once('=')?;
        let key_ok = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !key_ok {
            return None;
        }
        out.push((k.to_string(), v.to_string()));
    }
    (!out.is_empty()).then_some(out)
}

/// The frame name of one trimmed, non-empty frame line.
pub fn frame_name(line: &str) -> String {
    frame(line).0
}

/// The frame name of a line, and whether it is a native frame.
fn frame(line: &str) -> (String, bool) {
    let (name, is_native) = match native::name(line) {
        Some(n) => (n, true),
        None => (line.to_string(), false),
    };
    if name.is_empty() {
        return ("-".to_string(), is_native);
    }
    // `;` separates folded frames; control characters have no place in
    // the SVG's XML.
    let clean = name
        .chars()
        .map(|c| match c {
            ';' => ',',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    (clean, is_native)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_counts() {
        let bt = parse(b"a\nb\n\t3\n\nc\n\t2\na\nb\n\t4\ndangling\n");
        assert_eq!(
            bt.stacks,
            vec![
                (vec!["a".to_string(), "b".to_string()], 7),
                (vec!["c".to_string()], 2)
            ]
        );
        assert_eq!(bt.total(), 9);
    }

    #[test]
    fn labels_make_samples_not_stacks() {
        let bt = parse(
            b"# pid=7 state=interp\na\n\t3\n# state=gc pid=7\na\n\t1\na\n\t2\n\
              # pid=7 state=interp\na\n\t4\n# not a label\n\t5\n",
        );
        let l = |v: &[(&str, &str)]| -> Labels {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            bt.stacks,
            vec![
                (vec!["# not a label".to_string()], 5),
                (vec!["a".to_string()], 10)
            ]
        );
        assert_eq!(
            bt.samples,
            vec![
                (vec!["# not a label".to_string()], l(&[]), 5),
                (vec!["a".to_string()], l(&[]), 2),
                (
                    vec!["a".to_string()],
                    l(&[("pid", "7"), ("state", "gc")]),
                    1
                ),
                (
                    vec!["a".to_string()],
                    l(&[("pid", "7"), ("state", "interp")]),
                    7
                ),
            ]
        );
    }

    #[test]
    fn incremental_feeding_splits_anywhere() {
        let text = b"@x.lua:1\nC:pmain\n\t5\nbuiltin#3\n  12  \n";
        let whole = parse(text);
        for cut in 0..text.len() {
            let mut c = Collector::new();
            c.feed(&text[..cut]);
            c.feed(&text[cut..]);
            assert_eq!(c.finish(), whole, "cut at {cut}");
        }
    }

    #[test]
    fn frame_names() {
        assert_eq!(frame_name("0x4005d0 : main+0x1c/0x30 [/bin/foo]"), "main");
        assert_eq!(frame_name("foo+0x10"), "foo");
        assert_eq!(frame_name("a+b"), "a+b");
        assert_eq!(frame_name("x;y"), "x,y");
        assert_eq!(frame_name("a\u{0}\u{1b}b"), "a??b");
        assert_eq!(frame_name("T:@a.lua:3"), "T:@a.lua:3");
    }

    #[test]
    fn native_frames_are_remembered() {
        let bt = parse(
            b" 0x4005d4 : main+0x1d/0x40 [/usr/bin/prog]\n@a.lua:3\nC:pmain\n\t2\n\
              0x7f12 [/usr/lib/libc.so.6+0x1234/0x0]\n\t1\n\
              0x99 : uncounted+0x1/0x2\n\t0\n\
              0x98 : dangling+0x1/0x2\n",
        );
        assert_eq!(
            bt.stacks,
            vec![
                (vec!["[libc.so.6]".to_string()], 1),
                (
                    vec![
                        "main".to_string(),
                        "@a.lua:3".to_string(),
                        "C:pmain".to_string()
                    ],
                    2
                ),
            ]
        );
        // Only names of counted records, and only native ones.
        let native: Vec<&str> = bt.native.iter().map(String::as_str).collect();
        assert_eq!(native, ["[libc.so.6]", "main"]);
    }

    #[test]
    fn hostile_input() {
        let mut junk = vec![b'x'; 3 * MAX_LINE];
        junk.extend_from_slice(b"\n99999999999999999999999999\n\xff\xfe\n0\n");
        let bt = parse(&junk);
        assert_eq!(bt.stacks.len(), 1);
        assert_eq!(bt.stacks[0].1, u64::MAX);
        assert_eq!(bt.stacks[0].0[0].len(), MAX_LINE);
    }
}
