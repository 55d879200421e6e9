//! The token scanner the preprocessor works on.
//!
//! It splits text the way stap's own lexer does, so that the preprocessor
//! agrees with stap about what is a string, a comment, embedded C or an
//! operator (and therefore about where a `%(` really is). Tokens are only
//! byte ranges plus a kind; nothing is copied.

/// What a token is, as far as the preprocessor cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An identifier or keyword (`$` may appear anywhere in it).
    Ident,
    /// `@name`, or a lone `@`: a built-in operator or a macro invocation.
    AtWord,
    /// A command-line argument reference: `$1`, `@1`, `$#`, `@#`.
    Arg,
    /// A digit followed by letters and digits (`10`, `0x1f`).
    Number,
    /// A complete string literal, quotes included.
    Str,
    /// A complete `%{ ... %}` block.
    Embedded,
    /// Any other operator or punctuation.
    Op,
    /// `%(`
    PpOpen,
    /// `%?`
    PpThen,
    /// `%:`
    PpElse,
    /// `%)`
    PpClose,
    /// Something that is not a valid token.
    Junk(Junk),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Junk {
    /// A string literal with no closing quote before the end of its line.
    UnclosedString,
    /// `%{` with no `%}` after it.
    UnclosedEmbedded,
    /// `/*` with no `*/` after it.
    UnclosedComment,
    /// A control character or a non-ASCII character outside strings,
    /// comments and embedded code.
    BadChar,
}

/// One token: its kind, its byte range and whether whitespace or a comment
/// came right before it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tok {
    pub kind: Kind,
    pub start: u32,
    pub end: u32,
    pub ws: bool,
}

impl Tok {
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// stap's keywords: they are not identifiers, so they can't name a macro.
pub(crate) const KEYWORDS: &[&str] = &[
    "probe", "global", "private", "function", "if", "else", "for", "foreach", "in", "limit",
    "return", "delete", "while", "break", "continue", "next", "string", "long", "try", "catch",
];

/// A scanner over one text. The text must be shorter than 4 GiB (callers
/// check), so offsets fit in `u32`.
pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

fn is_punct(c: u8) -> bool {
    c.is_ascii_punctuation()
}

/// Two-character operators (besides the `%` preprocessor ones).
fn is_op2(a: u8, b: u8) -> bool {
    matches!(
        (a, b),
        (b'=', b'=')
            | (b'!', b'=')
            | (b'<', b'=')
            | (b'>', b'=')
            | (b'=', b'~')
            | (b'!', b'~')
            | (b'+', b'=')
            | (b'-', b'=')
            | (b'*', b'=')
            | (b'/', b'=')
            | (b'%', b'=')
            | (b'&', b'=')
            | (b'^', b'=')
            | (b'|', b'=')
            | (b'.', b'=')
            | (b'&', b'&')
            | (b'|', b'|')
            | (b'+', b'+')
            | (b'-', b'-')
            | (b'-', b'>')
            | (b'<', b'<')
            | (b'>', b'>')
    )
}

fn find(hay: &[u8], from: usize, needle: &[u8; 2]) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    hay[from..]
        .windows(2)
        .position(|w| w == needle)
        .map(|i| i + from)
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer::from_bytes(text.as_bytes())
    }

    /// A scanner over raw bytes (text that may not be UTF-8 yet: see
    /// [`crate::decode`]). Bytes that are not ASCII are skipped inside
    /// strings, comments and embedded code and are junk elsewhere.
    pub fn from_bytes(src: &'a [u8]) -> Lexer<'a> {
        Lexer { src, pos: 0 }
    }

    fn peek(&self, n: usize) -> u8 {
        self.src.get(self.pos + n).copied().unwrap_or(0)
    }

    fn tok(&self, kind: Kind, start: usize, ws: bool) -> Tok {
        Tok {
            kind,
            start: start as u32,
            end: self.pos as u32,
            ws,
        }
    }

    /// Skip to just past the end of the current line.
    fn skip_line(&mut self) {
        match self.src[self.pos..].iter().position(|&c| c == b'\n') {
            Some(i) => self.pos += i + 1,
            None => self.pos = self.src.len(),
        }
    }

    /// The next token, or `None` at the end of the text.
    #[inline]
    pub fn next_tok(&mut self) -> Option<Tok> {
        let mut ws = false;
        // Whitespace and comments.
        loop {
            let c = *self.src.get(self.pos)?;
            if is_space(c) {
                self.pos += 1;
                ws = true;
            } else if c == b'#' || (c == b'/' && self.peek(1) == b'/') {
                self.skip_line();
                ws = true;
            } else if c == b'/' && self.peek(1) == b'*' {
                let start = self.pos;
                // The `*` of the opener can't also close it: search after it.
                match find(self.src, self.pos + 2, b"*/") {
                    Some(i) => {
                        self.pos = i + 2;
                        ws = true;
                    }
                    None => {
                        self.pos = self.src.len();
                        return Some(self.tok(Kind::Junk(Junk::UnclosedComment), start, ws));
                    }
                }
            } else {
                break;
            }
        }

        let start = self.pos;
        let c = self.src[self.pos];
        let c2 = self.peek(1);
        self.pos += 1;

        // Command-line arguments: `$#`, `@#`, `$1`, `@12`.
        if (c == b'$' || c == b'@') && c2 == b'#' {
            self.pos += 1;
            return Some(self.tok(Kind::Arg, start, ws));
        }
        if (c == b'$' || c == b'@') && c2.is_ascii_digit() {
            while self.peek(0).is_ascii_digit() {
                self.pos += 1;
            }
            return Some(self.tok(Kind::Arg, start, ws));
        }

        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c == b'@' {
            while is_ident_char(self.peek(0)) {
                self.pos += 1;
            }
            let kind = if c == b'@' { Kind::AtWord } else { Kind::Ident };
            return Some(self.tok(kind, start, ws));
        }

        if c.is_ascii_digit() {
            while self.peek(0).is_ascii_alphanumeric() {
                self.pos += 1;
            }
            return Some(self.tok(Kind::Number, start, ws));
        }

        if c == b'"' {
            loop {
                match self.src.get(self.pos).copied() {
                    // A string ends at its line's end at the latest.
                    None | Some(b'\n') => {
                        return Some(self.tok(Kind::Junk(Junk::UnclosedString), start, ws));
                    }
                    Some(b'"') => {
                        self.pos += 1;
                        return Some(self.tok(Kind::Str, start, ws));
                    }
                    // A backslash takes the next byte with it, even a newline.
                    Some(b'\\') => {
                        self.pos += 1;
                        if self.pos < self.src.len() {
                            self.pos += 1;
                        }
                    }
                    Some(_) => self.pos += 1,
                }
            }
        }

        if c == b'%' && c2 == b'{' {
            match find(self.src, start + 2, b"%}") {
                Some(i) => {
                    self.pos = i + 2;
                    return Some(self.tok(Kind::Embedded, start, ws));
                }
                None => {
                    self.pos = self.src.len();
                    return Some(self.tok(Kind::Junk(Junk::UnclosedEmbedded), start, ws));
                }
            }
        }

        if is_punct(c) {
            // `pos` is past `c` now, so the third character is one ahead.
            let c3 = self.peek(1);
            let kind = if c == b'%' && matches!(c2, b'(' | b'?' | b':' | b')') {
                self.pos += 1;
                match c2 {
                    b'(' => Kind::PpOpen,
                    b'?' => Kind::PpThen,
                    b':' => Kind::PpElse,
                    _ => Kind::PpClose,
                }
            } else if (c == b'<' || c == b'>') && c2 == c && (c3 == c || c3 == b'=') {
                self.pos += 2;
                Kind::Op
            } else if is_op2(c, c2) {
                self.pos += 1;
                Kind::Op
            } else {
                Kind::Op
            };
            return Some(self.tok(kind, start, ws));
        }

        // Anything else is junk; keep whole UTF-8 characters together.
        while self.pos < self.src.len() && (self.src[self.pos] & 0xc0) == 0x80 {
            self.pos += 1;
        }
        Some(self.tok(Kind::Junk(Junk::BadChar), start, ws))
    }
}

/// The value of a string literal token (quotes included in `raw`) as stap's
/// lexer records it: the escapes C understands keep their backslash, any
/// other backslash is dropped.
pub(crate) fn string_value(raw: &str) -> String {
    let inner = raw
        .strip_prefix('"')
        .map(|s| s.strip_suffix('"').unwrap_or(s))
        .unwrap_or(raw);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('a' | 'b' | 't' | 'n' | 'v' | 'f' | 'r' | 'x' | '0'..='7' | '\\')) => {
                out.push('\\');
                out.push(e);
            }
            Some(e) => out.push(e),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, &str)> {
        let mut lx = Lexer::new(text);
        let mut out = Vec::new();
        while let Some(t) = lx.next_tok() {
            out.push((t.kind, &text[t.range()]));
        }
        out
    }

    #[test]
    fn operators_and_words() {
        use Kind::*;
        assert_eq!(
            kinds("a<<<=b >>= $x$ @cast @1 $# 0x1f %( %? %: %) -> ..="),
            vec![
                (Ident, "a"),
                (Op, "<<<"),
                (Op, "="),
                (Ident, "b"),
                (Op, ">>="),
                (Ident, "$x$"),
                (AtWord, "@cast"),
                (Arg, "@1"),
                (Arg, "$#"),
                (Number, "0x1f"),
                (PpOpen, "%("),
                (PpThen, "%?"),
                (PpElse, "%:"),
                (PpClose, "%)"),
                (Op, "->"),
                (Op, "."),
                (Op, ".="),
            ]
        );
    }

    #[test]
    fn strings_comments_embedded() {
        use Kind::*;
        let text = "\"a\\\"%(\" # %( no\n// %( no\n/* %( \n */ %{ %( %} x";
        assert_eq!(
            kinds(text),
            vec![(Str, "\"a\\\"%(\""), (Embedded, "%{ %( %}"), (Ident, "x")]
        );
        let mut lx = Lexer::new("a /* b");
        lx.next_tok();
        assert!(lx.next_tok().unwrap().ws);
        assert_eq!(kinds("a /* b")[1].0, Junk(super::Junk::UnclosedComment));
        assert_eq!(kinds("\"abc\nd")[0].0, Junk(super::Junk::UnclosedString));
        assert_eq!(kinds("%{ abc")[0].0, Junk(super::Junk::UnclosedEmbedded));
        assert_eq!(kinds("é")[0], (Junk(super::Junk::BadChar), "é"));
        assert_eq!(kinds("/*/ x */y"), vec![(Ident, "y")]);
    }

    #[test]
    fn string_values() {
        assert_eq!(string_value(r#""a\n\q\"""#), r#"a\nq""#);
    }
}
