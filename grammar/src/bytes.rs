//! String literals as the bytes stap gives them. stap's `"\303\251"` is
//! two bytes (UTF-8 for "é"), its `"\377"` one byte that is not text at
//! all; this front end keeps literals in Rust `String`s (UTF-8), where a
//! lone byte above 0x7f has no place. So an escape of such a byte
//! (`\ooo`, `\xhh`) is kept as one character of a private range,
//! U+10FF80..U+10FFFF (the last 128 code points of Unicode's
//! supplementary private use area B, which no script text means as
//! itself), and [`literal_bytes`] turns each back into its byte where the
//! compiler and runtime take a literal's bytes. Text written as it is
//! ("é" in the source) stays UTF-8.

/// The character that stands for byte `b` (0x80..=0xff) of an escape.
pub fn byte_char(b: u8) -> char {
    debug_assert!(b >= 0x80);
    char::from_u32(0x10FF00 + u32::from(b)).unwrap_or('\u{fffd}')
}

/// The byte a character of the private range stands for.
pub fn char_byte(c: char) -> Option<u8> {
    let v = c as u32;
    (0x10FF80..=0x10FFFF)
        .contains(&v)
        .then(|| (v - 0x10FF00) as u8)
}

/// A literal's bytes: its text as UTF-8, each escaped byte as itself.
pub fn literal_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match char_byte(c) {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_bytes_are_bytes() {
        let s: String = [byte_char(0xc3), byte_char(0xa9), 'é', 'a']
            .iter()
            .collect();
        assert_eq!(literal_bytes(&s), vec![0xc3, 0xa9, 0xc3, 0xa9, b'a']);
        assert_eq!(char_byte('a'), None);
        assert_eq!(char_byte(byte_char(0xff)), Some(0xff));
    }
}
