//! stap's quoting of text read from memory (its runtime's `_stp_text_str`,
//! quoted form), behind `user_string_quoted`, `user_buffer_quoted` and
//! `kernel_string_quoted`. The kernel side (`codegen/textstr.rs`) follows
//! the same steps; both are written from stap's documented behaviour:
//!
//! - valid UTF-8 sequences of 2 to 4 bytes become `\uXXXX` (or
//!   `\UXXXXXXXX` above U+FFFF, upper-case hex digits); invalid, overlong
//!   or surrogate sequences are taken byte by byte;
//! - printable ASCII is kept, except `"` and `\`, which get a backslash;
//!   `\a \b \f \n \r \t \v` are short escapes, any other byte is `\` and
//!   three octal digits (NUL too, so a following digit is not misread);
//! - a string stops at NUL; a buffer goes on through it;
//! - `inlen` and `outlen` of 0 or less, or beyond MAXSTRINGLEN - 1, mean
//!   MAXSTRINGLEN - 1; the quotes take 2 of `outlen` (which is at least
//!   5); when input is left over the text ends in `"...` at `outlen`,
//!   backing off to before an escape the cut would split.

/// What lies past the bytes given: the end of the string (a NUL), or
/// memory that could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PastEnd {
    Nul,
    Fault,
}

/// The next character at the start of `buf` (the bytes of `size` still to
/// read) and how many bytes it takes; `None` on a fault.
fn decode(buf: &[u8], past: PastEnd, size: i64) -> Option<(u32, i64)> {
    let at = |i: usize| match buf.get(i) {
        Some(&b) => Some(b),
        None if past == PastEnd::Nul => Some(0),
        None => None,
    };
    if size <= 0 {
        return None;
    }
    let b = at(0)?;
    let (n, mut c) = match b {
        _ if b & 0xe0 == 0xc0 && size >= 2 => (2, (b & 0x1f) as u32),
        _ if b & 0xf0 == 0xe0 && size >= 3 => (3, (b & 0x0f) as u32),
        _ if b & 0xf8 == 0xf0 && size >= 4 => (4, (b & 0x07) as u32),
        _ => return Some((b as u32, 1)),
    };
    for i in 1..n {
        let b2 = at(i)?;
        if b2 & 0xc0 != 0x80 {
            return Some((b as u32, 1));
        }
        c = (c << 6) | (b2 & 0x3f) as u32;
    }
    let surrogate = (0xd800..=0xdfff).contains(&c);
    let overlong = c < 0x80 || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000);
    if surrogate || c > 0x10ffff || overlong {
        return Some((b as u32, 1));
    }
    Some((c, n as i64))
}

/// The bytes written as a backslash and a letter, with the letter (NUL is
/// not one of them: `\0` before a digit would read as octal).
pub const SHORT_ESCAPES: [(u8, u8); 9] = [
    (0x07, b'a'),
    (0x08, b'b'),
    (0x0c, b'f'),
    (b'\n', b'n'),
    (b'\r', b'r'),
    (b'\t', b't'),
    (0x0b, b'v'),
    (b'"', b'"'),
    (b'\\', b'\\'),
];

/// The letter of a short escape for `c`, if it has one.
fn short_escape(c: u32) -> Option<u8> {
    SHORT_ESCAPES
        .iter()
        .find(|&&(b, _)| b as u32 == c)
        .map(|&(_, l)| l)
}

/// `input` quoted as stap quotes it; `None` when a byte it had to read
/// lies in unreadable memory (past the end of `input` with
/// [`PastEnd::Fault`]). `maxstringlen` is MAXSTRINGLEN.
pub fn text_str(
    input: &[u8],
    past: PastEnd,
    inlen: i32,
    outlen: i32,
    maxstringlen: usize,
    buffer: bool,
) -> Option<Vec<u8>> {
    escape(input, past, inlen, outlen, maxstringlen, buffer, true)
}

/// The tapsets' `text_str(s)` and `text_strn(s, len, quoted)`: the string
/// `input` escaped the same way, without the quotes unless `quoted`, in at
/// most `outlen` bytes (0: MAXSTRINGLEN - 1). Unquoted, a cut leaves no
/// mark.
pub fn escaped(input: &[u8], outlen: i32, quoted: bool, maxstringlen: usize) -> Vec<u8> {
    escape(input, PastEnd::Nul, 0, outlen, maxstringlen, false, quoted).unwrap_or_default()
}

fn escape(
    input: &[u8],
    past: PastEnd,
    inlen: i32,
    outlen: i32,
    maxstringlen: usize,
    buffer: bool,
    quoted: bool,
) -> Option<Vec<u8>> {
    let cap = maxstringlen.saturating_sub(1) as i64;
    let mut inlen = inlen as i64;
    if inlen <= 0 || inlen > cap {
        inlen = cap;
    }
    let mut outlen = outlen as i64;
    if outlen <= 0 || outlen > cap {
        outlen = cap;
    }
    let mut out = Vec::new();
    if quoted {
        outlen = outlen.max(5) - 2;
        out.push(b'"');
    }
    // Where the first escape that a cut at the end could split starts,
    // and its length.
    let mut esc: Option<(usize, i64)> = None;
    let mut c = 0u32;
    let mut pos = 0usize;
    while inlen > 0 {
        let (ch, n) = decode(input.get(pos..).unwrap_or(&[]), past, inlen)?;
        c = ch;
        if (c == 0 && !buffer) || outlen <= 0 {
            break;
        }
        pos += n as usize;
        inlen -= n;
        let num: i64 = if n > 1 {
            if c <= 0xffff {
                6
            } else {
                10
            }
        } else if (0x20..0x7f).contains(&c) && c != 0x22 && c != 0x5c {
            1
        } else if short_escape(c).is_some() {
            2
        } else {
            4
        };
        if num > 1 {
            if esc.is_none() && outlen - 3 < num {
                esc = Some((out.len(), num));
            }
            if outlen < num {
                break;
            }
        }
        match num {
            1 => out.push(c as u8),
            2 => out.extend([b'\\', short_escape(c).unwrap_or(b'?')]),
            4 => out.extend(format!("\\{:03o}", c & 0xff).bytes()),
            6 => out.extend(format!("\\u{c:04X}").bytes()),
            _ => out.extend(format!("\\U{c:08X}").bytes()),
        }
        outlen -= num;
    }
    if !quoted {
        return Some(out);
    }
    if c != 0 && inlen > 0 {
        let cut = (out.len() as i64 - 3 + outlen) as usize;
        match esc {
            Some((e, len)) if e < cut && (cut as i64) < e as i64 + len => out.truncate(e),
            _ => out.truncate(cut),
        }
        out.extend_from_slice(b"\"...");
    } else {
        out.push(b'"');
    }
    Some(out)
}

/// `user_buffer_quoted`'s `outlen` as stap takes it: a C int clamped to
/// [0, MAXSTRINGLEN]; 0 gives the empty string.
pub fn buffer_outlen(outlen: i64, maxstringlen: usize) -> i32 {
    (outlen as i32).clamp(0, maxstringlen as i32)
}

/// How many bytes of a buffer the quoting can read: `inlen` as
/// [`text_str`] clamps it, and never more than the output can show (each
/// character shown takes at least one output byte; the last one read may
/// take 4 bytes and not be shown).
pub fn buffer_read_len(inlen: i64, outlen: i32, maxstringlen: usize) -> usize {
    let cap = maxstringlen.saturating_sub(1) as i64;
    let mut n = inlen as i32 as i64;
    if n <= 0 || n > cap {
        n = cap;
    }
    let mut o = outlen as i64;
    if o <= 0 || o > cap {
        o = cap;
    }
    n.min(o.max(5) - 2 + 4) as usize
}

/// The text for an unreadable buffer: its address in hex, cut to
/// `outlen - 1` bytes as stap's `snprintf` into `outlen` bytes does.
pub fn fault_text(addr: i64, outlen: i32) -> Vec<u8> {
    let mut s = format!("0x{:x}", addr as u64).into_bytes();
    s.truncate((outlen.max(1) - 1) as usize);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(input: &[u8], inlen: i32, outlen: i32) -> String {
        let v = text_str(input, PastEnd::Fault, inlen, outlen, 4096, true).unwrap();
        String::from_utf8(v).unwrap()
    }

    fn string(input: &[u8]) -> String {
        let v = text_str(input, PastEnd::Nul, 4096, 4096, 4096, false).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_as_stap() {
        assert_eq!(
            string(b"hi\t\"there\"\n\x01\\"),
            r#""hi\t\"there\"\n\001\\""#
        );
        assert_eq!(string(b"\x07\x08\x0c\r\x0b\x7f"), r#""\a\b\f\r\v\177""#);
        // é (2 bytes), € (3 bytes), 😀 (4 bytes).
        assert_eq!(string("é€😀".as_bytes()), r#""\u00E9\u20AC\U0001F600""#);
        // A string ends at its NUL.
        assert_eq!(string(b"ab\0cd"), r#""ab""#);
    }

    #[test]
    fn invalid_utf8_goes_byte_by_byte() {
        // A lone lead byte, a bad continuation, an overlong NUL, a surrogate.
        assert_eq!(string(b"\xc3x"), r#""\303x""#);
        assert_eq!(string(b"\xc0\x80"), r#""\300\200""#);
        assert_eq!(string(b"\xed\xa0\x80"), r#""\355\240\200""#);
        // A lead byte whose sequence is longer than what is left of inlen.
        assert_eq!(buf(b"a\xc3\xa9", 2, 50), r#""a\303""#);
    }

    #[test]
    fn buffers_go_through_nul() {
        assert_eq!(buf(b"ab\0c\t\"", 6, 50), r#""ab\000c\t\"""#);
    }

    #[test]
    fn truncation_ends_in_dots() {
        // outlen 10: 8 for the text between the quotes; input left over:
        // cut at 10 - 2 - 3 = 5 text bytes, then `"...`.
        assert_eq!(buf(b"abcdefghij", 10, 10), r#""abcde"..."#);
        // Exactly filling is not truncation when nothing is left.
        assert_eq!(buf(b"abcdefgh", 8, 10), r#""abcdefgh""#);
        // One byte over: the text is cut back for the marker.
        assert_eq!(buf(b"abcdefghi", 9, 10), r#""abcde"..."#);
        // An escape the cut would split goes whole: "abcd" then \t at 4..6.
        assert_eq!(buf(b"abcd\tefghij", 11, 10), r#""abcd"..."#);
        assert_eq!(buf(b"abc\xc3\xa9xxxxx", 10, 12), r#""abc"..."#);
        // outlen below 5 counts as 5.
        assert_eq!(buf(b"abcdef", 6, 1), r#"""..."#);
    }

    #[test]
    fn lengths_clamp() {
        // inlen 0 means MAXSTRINGLEN - 1: the whole (short) buffer, then a
        // fault past it.
        assert_eq!(text_str(b"ab", PastEnd::Fault, 0, 50, 4096, true), None);
        assert_eq!(buffer_outlen(-3, 4096), 0);
        assert_eq!(buffer_outlen(1 << 40, 4096), 0);
        assert_eq!(buffer_outlen(9000, 4096), 4096);
        assert_eq!(buffer_read_len(100, 50, 4096), 52);
        assert_eq!(buffer_read_len(10, 50, 4096), 10);
        assert_eq!(buffer_read_len(0, 50, 4096), 52);
        assert_eq!(fault_text(0x1000, 4), "0x1".as_bytes());
        assert_eq!(fault_text(-1, 50), "0xffffffffffffffff".as_bytes());
    }

    #[test]
    fn escaped_without_quotes() {
        let e = |s: &[u8], outlen: i32, quoted: bool| {
            String::from_utf8(escaped(s, outlen, quoted, 4096)).unwrap()
        };
        assert_eq!(
            e(b"a\"b\\c\n\x01\xc3\xa9", 0, false),
            "a\\\"b\\\\c\\n\\001\\u00E9"
        );
        assert_eq!(e(b"abcdefgh", 5, false), "abcde");
        // A cut never splits an escape: it stops before it.
        assert_eq!(e(b"abcd\n", 5, false), "abcd");
        assert_eq!(e(b"abcdefgh", 6, true), "\"a\"...");
        assert_eq!(e(b"abc", 0, true), "\"abc\"");
        assert_eq!(e(b"", 0, false), "");
    }
}
