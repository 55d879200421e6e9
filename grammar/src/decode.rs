//! Script text from raw bytes.
//!
//! stap reads a script as bytes: any byte may stand in a comment or a
//! string literal (a string copies it as it is), and elsewhere a byte that
//! is not ASCII is junk ("expected statement, saw junk"). This front end
//! works on `String`s, so text that is not UTF-8 is handled here, once,
//! before anything else reads it:
//!
//! - in a comment (or in `%{ %}` code, which is refused later anyway) an
//!   invalid sequence is harmless and becomes U+FFFD;
//! - anywhere else, string literals included, it is an error at the
//!   offending byte: our strings are UTF-8 text, so a lone Latin-1 byte
//!   could not be copied through as stap copies it.
//!
//! Which bytes are in a comment or a string is decided by the
//! preprocessor's own scanner, so the answer agrees with the parser.

use crate::diag::Diagnostic;
use crate::preprocess::lexer::{Junk, Kind, Lexer, Tok};
use crate::source::{FileId, SourceMap, Span};

/// Text that is not UTF-8 where it has to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUtf8 {
    /// The whole text, each invalid sequence shown as U+FFFD (to quote the
    /// line in the error).
    pub text: String,
    /// Where the first offending sequence starts in `text`.
    pub offset: usize,
    /// Its first byte.
    pub byte: u8,
    /// Whether it is inside a string literal.
    pub in_string: bool,
}

impl NotUtf8 {
    /// The error, at the offending byte of `text` registered as `file`.
    pub fn diagnostic(&self, file: FileId) -> Diagnostic {
        let span = Span::new(file, self.offset, self.offset + '\u{fffd}'.len_utf8());
        if self.in_string {
            Diagnostic::error(
                span,
                format!(
                    "byte 0x{:02x} in this string is not UTF-8: stapxx-rs keeps strings as UTF-8 text",
                    self.byte
                ),
            )
            .with_note("write the script in UTF-8 (a file: iconv -f LATIN1 -t UTF-8)")
        } else {
            Diagnostic::error(
                span,
                format!(
                    "byte 0x{:02x} is not UTF-8 text (outside strings and comments only ASCII is allowed)",
                    self.byte
                ),
            )
        }
    }

    /// Registers the text as `name` in `sources` and returns the error.
    pub fn report(&self, sources: &mut SourceMap, name: &str) -> Diagnostic {
        let id = sources.add(name, self.text.as_str());
        self.diagnostic(id)
    }
}

/// The script text of `bytes`: as it is when it is UTF-8; with invalid
/// sequences in comments replaced by U+FFFD; an error for the first
/// invalid sequence anywhere else.
pub fn decode_source(bytes: Vec<u8>) -> Result<String, NotUtf8> {
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(e) => e.into_bytes(),
    };
    let toks = tokens(&bytes);
    let mut text = String::with_capacity(bytes.len() + 16);
    let mut first: Option<(usize, u8, bool)> = None;
    let mut pos = 0;
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        pos += chunk.valid().len();
        let bad = chunk.invalid();
        if bad.is_empty() {
            continue;
        }
        let kind = token_at(&toks, pos).map(|t| t.kind);
        let harmless = matches!(
            kind,
            None | Some(Kind::Embedded)
                | Some(Kind::Junk(Junk::UnclosedComment))
                | Some(Kind::Junk(Junk::UnclosedEmbedded))
        );
        if !harmless && first.is_none() {
            let in_string = matches!(
                kind,
                Some(Kind::Str) | Some(Kind::Junk(Junk::UnclosedString))
            );
            first = Some((text.len(), bad[0], in_string));
        }
        text.push('\u{fffd}');
        pos += bad.len();
    }
    match first {
        None => Ok(text),
        Some((offset, byte, in_string)) => Err(NotUtf8 {
            text,
            offset,
            byte,
            in_string,
        }),
    }
}

/// The tokens of `bytes`; what lies between them is blanks and comments.
fn tokens(bytes: &[u8]) -> Vec<Tok> {
    // Token offsets are u32; a text this large is refused later anyway
    // (and without tokens, every byte counts as code here).
    if bytes.len() >= (u32::MAX / 2) as usize {
        return Vec::new();
    }
    let mut lexer = Lexer::from_bytes(bytes);
    std::iter::from_fn(|| lexer.next_tok()).collect()
}

/// The token holding byte `pos`, if any.
fn token_at(toks: &[Tok], pos: usize) -> Option<&Tok> {
    let i = toks.partition_point(|t| t.start as usize <= pos);
    toks[..i].last().filter(|t| pos < t.end as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(bytes: &[u8]) -> NotUtf8 {
        decode_source(bytes.to_vec()).expect_err("not UTF-8")
    }

    #[test]
    fn utf8_text_is_taken_as_it_is() {
        let text = "probe begin { println(\"héllo\") } # ü\n";
        assert_eq!(decode_source(text.as_bytes().to_vec()).unwrap(), text);
    }

    #[test]
    fn bytes_in_comments_are_harmless() {
        let src = b"# caf\xe9\nprobe begin { /* \xff\xfe */ exit() } // \x80\n%{ \xff %}\n";
        assert_eq!(
            decode_source(src.to_vec()).unwrap(),
            "# caf\u{fffd}\nprobe begin { /* \u{fffd}\u{fffd} */ exit() } // \u{fffd}\n%{ \u{fffd} %}\n"
        );
        // A comment marker inside a string is no comment.
        let e = err(b"probe begin { print(\"# \xe9\") }");
        assert!(e.in_string);
    }

    #[test]
    fn the_first_byte_outside_comments_is_the_error() {
        let src = b"# \xff\nprobe begin { x\xe9 = \"\xfe\" }\n";
        let e = err(src);
        assert_eq!((e.byte, e.in_string), (0xe9, false));
        // The offset is in the shown text, where the comment's byte is one
        // U+FFFD (three bytes).
        assert_eq!(e.offset, "# \u{fffd}\nprobe begin { x".len());
        let mut sources = SourceMap::new();
        let d = e.report(&mut sources, "s.stp");
        assert_eq!(
            d.render(&sources),
            "s.stp:2:16: error: byte 0xe9 is not UTF-8 text (outside strings and comments only ASCII is allowed)\n    probe begin { x\u{fffd} = \"\u{fffd}\" }\n                   ^\n"
        );
    }

    #[test]
    fn bytes_in_strings_are_errors_with_their_place() {
        let e = err(b"probe begin {\n  printf(\"caf\xe9\\n\")\n}\n");
        assert_eq!((e.byte, e.in_string), (0xe9, true));
        let mut sources = SourceMap::new();
        let d = e.report(&mut sources, "-e");
        assert_eq!(
            d.render(&sources),
            "-e:2:14: error: byte 0xe9 in this string is not UTF-8: stapxx-rs keeps strings as UTF-8 text\n      printf(\"caf\u{fffd}\\n\")\n                 ^\nnote: write the script in UTF-8 (a file: iconv -f LATIN1 -t UTF-8)\n"
        );
        // An unterminated string holds its bytes too.
        assert!(err(b"x = \"\xff").in_string);
    }
}
