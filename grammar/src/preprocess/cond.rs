//! The comparisons `%( ... %?` conditions are made of: version order (as
//! glibc's `strverscmp`), shell glob matching (as `fnmatch` without flags
//! and without backslash escapes) and C integer parsing (as `strtoll` with
//! base 0).

use std::cmp::Ordering;

/// How a character class enters the version comparison state machine.
fn class(c: u8) -> usize {
    match c {
        b'0' => 2,
        b'1'..=b'9' => 1,
        _ => 0,
    }
}

/// Compare two version strings the way glibc's `strverscmp` does: runs of
/// digits compare by numeric value ("2.10" > "2.9"), and runs starting with
/// `0` compare as fractional parts ("1.01" < "1.1").
pub(crate) fn version_cmp(a: &str, b: &str) -> Ordering {
    // States: normal text, inside an integral part, inside a fractional
    // part, inside leading zeros. Each takes three rows in the tables below
    // (by the class of the current character of `a`).
    const NORMAL: usize = 0;
    const INTEGRAL: usize = 3;
    const FRACTION: usize = 6;
    const ZEROS: usize = 9;
    const NEXT: [usize; 12] = [
        NORMAL, INTEGRAL, ZEROS, // normal
        NORMAL, INTEGRAL, INTEGRAL, // integral
        NORMAL, FRACTION, FRACTION, // fractional
        NORMAL, FRACTION, ZEROS, // zeros
    ];
    // What to do at the first difference, by (state + class of a's
    // character) * 3 + class of b's character: compare the bytes (C),
    // compare the lengths of the digit runs (L), or a fixed answer.
    const C: i8 = 2;
    const L: i8 = 3;
    const RESULT: [i8; 36] = [
        C, C, C, C, L, C, C, C, C, // normal
        C, -1, -1, 1, L, L, 1, L, L, // integral
        C, C, C, C, C, C, C, C, C, // fractional
        C, 1, 1, -1, C, C, -1, C, C, // zeros
    ];

    let a = a.as_bytes();
    let b = b.as_bytes();
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = 0;
    let mut c1 = at(a, 0);
    let mut c2 = at(b, 0);
    let mut state = NORMAL + class(c1);
    while c1 == c2 {
        if c1 == 0 {
            return Ordering::Equal;
        }
        state = NEXT[state];
        i += 1;
        c1 = at(a, i);
        c2 = at(b, i);
        state += class(c1);
    }
    let byte_order = c1.cmp(&c2);
    match RESULT[state * 3 + class(c2)] {
        C => byte_order,
        L => {
            // The longer run of digits is the larger number.
            let mut j = i + 1;
            loop {
                let d1 = at(a, j).is_ascii_digit();
                let d2 = at(b, j).is_ascii_digit();
                match (d1, d2) {
                    (true, true) => j += 1,
                    (true, false) => return Ordering::Greater,
                    (false, true) => return Ordering::Less,
                    (false, false) => return byte_order,
                }
            }
        }
        r => (r as i32).cmp(&0),
    }
}

/// Does `text` match the shell glob `pattern` (`*`, `?`, `[...]`)? There
/// are no escapes and `/` and `.` are ordinary characters.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let s = text.as_bytes();
    let (mut pi, mut si) = (0usize, 0usize);
    // Where the last `*` was and which text position it is now trying.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(pi + 1),
            Some(b'[') => match bracket(p, pi, s[si]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // An unclosed `[` is an ordinary character.
                None => (s[si] == b'[').then_some(pi + 1),
            },
            Some(&c) => (c == s[si]).then_some(pi + 1),
            None => None,
        };
        match step {
            Some(next) => {
                pi = next;
                si += 1;
            }
            None => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

/// Match `c` against the bracket expression starting at `p[open]` (`[`).
/// Returns whether it matched and where the pattern continues, or `None`
/// when the bracket is not closed.
fn bracket(p: &[u8], open: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = open + 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if ch == b'[' && p.get(i + 1) == Some(&b':') {
            if let Some(len) = p[i + 2..].windows(2).position(|w| w == b":]") {
                let name = &p[i + 2..i + 2 + len];
                matched |= class_match(name, c);
                i += 2 + len + 2;
                continue;
            }
        }
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
            let hi = p[i + 2];
            matched |= ch <= c && c <= hi;
            i += 3;
        } else {
            matched |= ch == c;
            i += 1;
        }
    }
}

fn class_match(name: &[u8], c: u8) -> bool {
    match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"digit" => c.is_ascii_digit(),
        b"lower" => c.is_ascii_lowercase(),
        b"upper" => c.is_ascii_uppercase(),
        b"space" => matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c),
        b"xdigit" => c.is_ascii_hexdigit(),
        b"punct" => c.is_ascii_punctuation(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"print" => (0x20..0x7f).contains(&c),
        b"graph" => (0x21..0x7f).contains(&c),
        _ => false,
    }
}

/// Parse a whole string as a C integer (decimal, `0x` hex or `0` octal,
/// optional sign, leading blanks), like `strtoll(s, &end, 0)` followed by a
/// check that `*end == 0`. The empty string is 0, as it is for `strtoll`.
/// `None` for anything else, including overflow.
pub(crate) fn parse_c_int(s: &str) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if (t.starts_with("0x") || t.starts_with("0X"))
        && t[2..].starts_with(|c: char| c.is_ascii_hexdigit())
    {
        (16, &t[2..])
    } else if t.starts_with('0') {
        (8, t)
    } else {
        (10, t)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 + 1 {
            Some((mag as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(mag).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn versions() {
        assert_eq!(version_cmp("6.18.44", "2.6.32"), Greater);
        assert_eq!(version_cmp("6.18.44", "6.18.44"), Equal);
        assert_eq!(version_cmp("6.18.44", "6.2"), Greater);
        assert_eq!(version_cmp("3.10", "3.9"), Greater);
        assert_eq!(version_cmp("4.17.0", "4.17"), Greater);
        assert_eq!(version_cmp("4.17", "4.17.0"), Less);
        assert_eq!(version_cmp("5.0", "4.8"), Greater);
        assert_eq!(version_cmp("1.01", "1.1"), Less);
        assert_eq!(version_cmp("a", "b"), Less);
        assert_eq!(version_cmp("", "1"), Less);
        // The ordering glibc documents: 000 < 00 < 01 < 010 < 09 < 0 < 1 < 9 < 10
        let order = ["000", "00", "01", "010", "09", "0", "1", "9", "10"];
        for w in order.windows(2) {
            assert_eq!(version_cmp(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
            assert_eq!(version_cmp(w[1], w[0]), Greater, "{} > {}", w[1], w[0]);
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("i?86", "i686"));
        assert!(!glob_match("i?86", "x86_64"));
        assert!(glob_match("x86_*", "x86_64"));
        assert!(glob_match("[ym]", "m"));
        assert!(!glob_match("[ym]", "n"));
        assert!(!glob_match("[ym]", ""));
        assert!(glob_match("[!y]", "n"));
        assert!(glob_match("*", ""));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "y"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(glob_match("[[:digit:]]*", "4.1"));
        assert!(glob_match("a[", "a["));
        assert!(glob_match("[]]", "]"));
        assert!(glob_match("6.*", "6.18.44"));
    }

    #[test]
    fn c_ints() {
        assert_eq!(parse_c_int(""), Some(0));
        assert_eq!(parse_c_int("42"), Some(42));
        assert_eq!(parse_c_int("-42"), Some(-42));
        assert_eq!(parse_c_int("0x10"), Some(16));
        assert_eq!(parse_c_int("010"), Some(8));
        assert_eq!(parse_c_int("y"), None);
        assert_eq!(parse_c_int("0x"), None);
        assert_eq!(parse_c_int("99999999999999999999"), None);
        assert_eq!(parse_c_int("-9223372036854775808"), Some(i64::MIN));
    }
}
