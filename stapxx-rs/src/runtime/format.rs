//! `printf`/`sprintf` and histogram text, byte for byte as stap's runtime
//! prints them.
//!
//! Conversions (all numbers are 64-bit):
//!
//! * `%d %i` signed decimal; `%u` unsigned decimal; `%o` octal; `%x %X`
//!   hexadecimal; `%p` is `%#x` (stap >= 1.3), so `%p` of 0 is `0x0`.
//! * Flags `-` (left-justify, beats `0`), `0` (zero-pad: also with a
//!   precision, unlike C), `+` and ` ` (signed conversions only), `#`
//!   (`0x`/`0X` before hex digits and `0` before octal ones, even for 0:
//!   `%#x` of 0 is `0x0`, `%#o` of 0 is `00`).
//! * Precision on numbers is the minimum number of digits; a value of 0
//!   still prints `0` (stap's `number()` always emits one digit).
//! * `%s`: precision is the maximum number of bytes, width pads with spaces
//!   (`0` does not zero-pad strings; stap then appends a NUL byte).
//! * `%c`: the low byte; with `#`, unprintable bytes, `'` and `\` are
//!   escaped (`\n`, `\t`, ... or three octal digits).
//! * `%b`: the value's low `precision` bytes in the host's byte order
//!   (precision 1, 2, 4 or 8; width alone, if 1/2/4/8, sets it; default 8),
//!   padded with NUL bytes to the width.
//! * `%%` is a percent sign.
//!
//! Width and precision are clamped to [`MAX_FIELD`] so that a script cannot
//! ask for gigabytes of padding (stap clamps them to its buffer size).

use super::values::{log_bucket_value, Linear, StatPartial, LOG_BUCKET0};
use crate::ir::types::{Conversion, FormatPiece};

/// Largest width or precision honoured.
pub const MAX_FIELD: usize = 1 << 16;

/// An argument of a conversion.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Long(i64),
    Str(&'a [u8]),
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    special: bool,
    signed: bool,
    upper: bool,
}

fn flags_of(c: &Conversion) -> Flags {
    let mut f = Flags::default();
    for ch in c.flags.chars() {
        match ch {
            '-' => f.left = true,
            '0' => f.zero = true,
            '+' => f.plus = true,
            ' ' => f.space = true,
            '#' => f.special = true,
            _ => {}
        }
    }
    f
}

/// Format `pieces` with `args` (one per conversion, in order; a missing
/// argument prints as 0 or ""). Returns raw bytes: `%b`, `%c` and `%0s` can
/// produce NUL bytes.
pub fn format(pieces: &[FormatPiece], args: &[Arg]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut args = args.iter();
    for p in pieces {
        match p {
            FormatPiece::Text(t) => out.extend_from_slice(&grammar::bytes::literal_bytes(t)),
            FormatPiece::Conv(c) if c.width_arg || c.precision_arg => {
                // `*`: as in C, a negative width is `-` and its size, a
                // negative precision is none.
                let mut c = c.clone();
                let long = |args: &mut std::slice::Iter<'_, Arg>| match args.next() {
                    Some(Arg::Long(n)) => *n,
                    _ => 0,
                };
                if c.width_arg {
                    let w = long(&mut args);
                    if w < 0 && !c.flags.contains('-') {
                        c.flags.push('-');
                    }
                    c.width = Some((w.unsigned_abs() as usize).min(MAX_FIELD));
                }
                if c.precision_arg {
                    let p = long(&mut args);
                    c.precision = (p >= 0).then(|| (p as usize).min(MAX_FIELD));
                }
                let a = args.next().copied();
                conversion(&mut out, &c, a);
            }
            FormatPiece::Conv(c) => {
                let a = args.next().copied();
                conversion(&mut out, c, a);
            }
        }
    }
    out
}

/// Append one conversion of `arg`.
pub fn conversion(out: &mut Vec<u8>, c: &Conversion, arg: Option<Arg>) {
    let mut f = flags_of(c);
    let width = c.width.map(|w| w.min(MAX_FIELD) as i64);
    let prec = c.precision.map(|p| p.min(MAX_FIELD) as i64);
    let num = match arg {
        Some(Arg::Long(n)) => n,
        _ => 0,
    };
    match c.kind {
        's' => {
            let s = match arg {
                Some(Arg::Str(s)) => s,
                _ => b"",
            };
            string(out, s, width, prec, f);
        }
        'c' => character(out, num as u8, width, f),
        'b' => binary(out, num, width, prec, f),
        'd' | 'i' => {
            f.signed = true;
            number(out, num as u64, 10, width, prec, f)
        }
        'u' => number(out, num as u64, 10, width, prec, f),
        'o' => number(out, num as u64, 8, width, prec, f),
        'x' => number(out, num as u64, 16, width, prec, f),
        'X' => {
            f.upper = true;
            number(out, num as u64, 16, width, prec, f)
        }
        'p' => {
            f.special = true;
            number(out, num as u64, 16, width, prec, f)
        }
        other => {
            out.push(b'%');
            let mut buf = [0u8; 4];
            out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
        }
    }
}

fn pad(out: &mut Vec<u8>, byte: u8, n: i64) {
    if n > 0 {
        out.resize(out.len() + n as usize, byte);
    }
}

/// An integer conversion, laid out as stap's runtime `number()` does.
fn number(
    out: &mut Vec<u8>,
    num: u64,
    base: u64,
    width: Option<i64>,
    prec: Option<i64>,
    mut f: Flags,
) {
    let digits: &[u8; 16] = if f.upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    if f.left {
        f.zero = false;
    }
    // Remaining room in the field; -1 when no width was given.
    let mut size = width.unwrap_or(-1);
    let mut n = num;
    let mut sign = None;
    if f.signed {
        if (num as i64) < 0 {
            sign = Some(b'-');
            n = (num as i64).unsigned_abs();
            size -= 1;
        } else if f.plus {
            sign = Some(b'+');
            size -= 1;
        } else if f.space {
            sign = Some(b' ');
            size -= 1;
        }
    }
    let prefix: &[u8] = match (f.special, base) {
        (true, 16) if f.upper => b"0X",
        (true, 16) => b"0x",
        (true, 8) => b"0",
        _ => b"",
    };
    size -= prefix.len() as i64;
    let mut tmp = Vec::with_capacity(24);
    if n == 0 {
        tmp.push(b'0');
    }
    while n != 0 {
        tmp.push(digits[(n % base) as usize]);
        n /= base;
    }
    let ndigits = tmp.len() as i64;
    let precision = prec.unwrap_or(-1).max(ndigits);
    size -= precision;
    if !f.zero && !f.left {
        pad(out, b' ', size);
        size = 0;
    }
    if let Some(s) = sign {
        out.push(s);
    }
    out.extend_from_slice(prefix);
    if !f.left {
        pad(out, if f.zero { b'0' } else { b' ' }, size);
        size = 0;
    }
    pad(out, b'0', precision - ndigits);
    out.extend(tmp.iter().rev());
    pad(out, b' ', size);
}

/// `%s`: at most `prec` bytes of the string (up to its first NUL).
fn string(out: &mut Vec<u8>, s: &[u8], width: Option<i64>, prec: Option<i64>, f: Flags) {
    let s = match s.iter().position(|&b| b == 0) {
        Some(nul) => &s[..nul],
        None => s,
    };
    let len = match prec {
        Some(p) => s.len().min(p.max(0) as usize),
        None => s.len(),
    };
    let room = width.unwrap_or(0) - len as i64;
    if !f.left {
        pad(out, b' ', room);
    }
    out.extend_from_slice(&s[..len]);
    if f.left {
        pad(out, b' ', room);
    }
    if f.zero {
        out.push(0);
    }
}

/// `%c`, with `#` escaping.
fn character(out: &mut Vec<u8>, c: u8, width: Option<i64>, f: Flags) {
    let mut text = Vec::with_capacity(4);
    let quote = f.special && (!(c.is_ascii_graphic() || c == b' ') || c == b'\'' || c == b'\\');
    if quote {
        text.push(b'\\');
        match c {
            0x07 => text.push(b'a'),
            0x08 => text.push(b'b'),
            0x0c => text.push(b'f'),
            b'\n' => text.push(b'n'),
            b'\r' => text.push(b'r'),
            b'\t' => text.push(b't'),
            0x0b => text.push(b'v'),
            b'\'' => text.push(b'\''),
            b'\\' => text.push(b'\\'),
            _ => {
                text.push(b'0' + ((c >> 6) & 3));
                text.push(b'0' + ((c >> 3) & 7));
                text.push(b'0' + (c & 7));
            }
        }
    } else {
        text.push(c);
    }
    let room = width.unwrap_or(0) - text.len() as i64;
    if !f.left {
        pad(out, b' ', room);
    }
    out.extend_from_slice(&text);
    if f.left {
        pad(out, b' ', room);
    }
}

fn binary_size(p: i64) -> Option<i64> {
    matches!(p, 1 | 2 | 4 | 8).then_some(p)
}

/// `%b`: raw bytes of the value.
fn binary(out: &mut Vec<u8>, num: i64, width: Option<i64>, prec: Option<i64>, f: Flags) {
    let prec = prec.and_then(binary_size);
    let (width, prec) = match (width, prec) {
        (None, None) => (8, 8),
        (None, Some(p)) => (p, p),
        (Some(w), Some(p)) => (w, p),
        (Some(w), None) => (w, binary_size(w).unwrap_or(8)),
    };
    if !f.left {
        pad(out, 0, width - prec);
    }
    let bytes = num.to_ne_bytes();
    let n = prec as usize;
    if cfg!(target_endian = "little") {
        out.extend_from_slice(&bytes[..n]);
    } else {
        out.extend_from_slice(&bytes[8 - n..]);
    }
    if f.left {
        pad(out, 0, width - prec);
    }
}

// ---------------------------------------------------------------- histograms

/// Columns of the bar.
pub const HIST_WIDTH: i64 = 50;
/// Zero rows kept next to a non-zero one; longer runs are elided (`~`).
pub const HIST_ELISION: i64 = 2;

/// Characters `%lld` needs for `v`.
fn needed_space(v: i64) -> i64 {
    let mut n = (v as i128).abs();
    let mut space = i64::from(v < 0);
    if n == 0 {
        return 1;
    }
    while n > 0 {
        n /= 10;
        space += 1;
    }
    space
}

/// What kind of histogram a bucket vector is.
#[derive(Debug, Clone, Copy)]
pub enum HistKind {
    Log,
    Linear(Linear),
}

/// The text of `print(@hist_log(s))` / `print(@hist_linear(s, ...))` for an
/// aggregate, as stap lays it out: a header, one row per bucket from two
/// empty buckets below the lowest used one to two above the highest (log
/// histograms do not go below 0 unless there are negative values; linear
/// ones show their `<start` and `>stop` rows only when used), runs of empty
/// rows beyond two replaced by one `~` row, bars of `@` scaled to 50
/// columns, and a blank line at the end. `None` when every bucket is empty.
pub fn histogram(kind: HistKind, buckets: &[i64]) -> Option<String> {
    let n = buckets.len() as i64;
    let first = buckets.iter().position(|&c| c > 0)? as i64;
    let last = buckets.iter().rposition(|&c| c > 0)? as i64;
    let valmax = buckets.iter().copied().max().unwrap_or(0);
    let (mut low, mut high) = (first, last);
    for _ in 0..2 {
        match kind {
            HistKind::Log => {
                if low != LOG_BUCKET0 as i64 && low > 0 {
                    low -= 1;
                }
            }
            HistKind::Linear(_) => {
                if low > 0 {
                    low -= 1;
                }
            }
        }
        if high < n - 1 {
            high += 1;
        }
    }
    let count = |i: i64| buckets.get(i as usize).copied().unwrap_or(0);
    let (mut under, mut over) = (0, 0);
    if let HistKind::Linear(_) = kind {
        if low == 0 && count(0) == 0 {
            low += 1;
        }
        if high == n - 1 && count(high) == 0 {
            high -= 1;
        }
        under = i64::from(low == 0);
        over = i64::from(high == n - 1);
    }
    let scale = if valmax <= HIST_WIDTH {
        1
    } else {
        (valmax + HIST_WIDTH - 1) / HIST_WIDTH
    };
    let cnt_space = needed_space(valmax);
    let val_space = match kind {
        HistKind::Linear(l) => (needed_space(l.start) + under)
            .max(needed_space(l.start.wrapping_add(l.interval.wrapping_mul(high))) + over),
        HistKind::Log => needed_space(log_bucket_value(high as usize))
            .max(needed_space(log_bucket_value(low as usize))),
    }
    .max(5);
    let vs = val_space as usize;

    let mut out = format!("{:>vs$} |", "value");
    out.push_str(&"-".repeat(HIST_WIDTH as usize));
    out.push_str(" count\n");
    let mut eliding = false;
    for i in low..=high {
        let lo = (i - HIST_ELISION.min(n)).max(low);
        let hi = (i + HIST_ELISION.min(n)).min(high);
        if (lo..=hi).all(|k| count(k) == 0) {
            eliding = true;
            continue;
        }
        if eliding {
            out.push_str(&format!("{:>vs$} ~\n", ""));
            eliding = false;
        }
        let (val, prefix) = match kind {
            HistKind::Linear(l) if i == 0 => (l.start, "<"),
            HistKind::Linear(l) if i == n - 1 => {
                (l.start.wrapping_add((i - 2).wrapping_mul(l.interval)), ">")
            }
            HistKind::Linear(l) => (l.start.wrapping_add((i - 1).wrapping_mul(l.interval)), ""),
            HistKind::Log => (log_bucket_value(i as usize), ""),
        };
        let pw = (val_space - needed_space(val)).max(0) as usize;
        out.push_str(&format!("{prefix:>pw$}{val} |"));
        let c = count(i);
        let bar = (c / scale).clamp(0, HIST_WIDTH);
        out.push_str(&"@".repeat(bar as usize));
        let cw = (HIST_WIDTH - bar + 1 + cnt_space).max(0) as usize;
        out.push_str(&format!("{c:>cw$}\n"));
    }
    out.push('\n');
    Some(out)
}

/// The histogram text of an aggregate (`None`: it has no such histogram,
/// or it is empty).
pub fn histogram_of(agg: &StatPartial, linear: Option<(usize, Linear)>) -> Option<String> {
    match linear {
        None => histogram(HistKind::Log, &agg.log),
        Some((i, l)) => histogram(HistKind::Linear(l), agg.linear.get(i)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::types::parse_format;

    fn f(fmt: &str, args: &[Arg]) -> String {
        let pieces = parse_format(fmt).expect("format parses");
        String::from_utf8_lossy(&format(&pieces, args)).into_owned()
    }

    fn l(n: i64) -> Arg<'static> {
        Arg::Long(n)
    }

    #[test]
    fn signed_and_unsigned() {
        assert_eq!(
            f("%d|%i|%u", &[l(-5), l(7), l(-1)]),
            "-5|7|18446744073709551615"
        );
        assert_eq!(f("%d", &[l(i64::MIN)]), "-9223372036854775808");
        assert_eq!(f("%+d|% d|%+d", &[l(5), l(5), l(-5)]), "+5| 5|-5");
        assert_eq!(f("%+u|% x", &[l(5), l(255)]), "5|ff");
    }

    #[test]
    fn widths_and_flags() {
        assert_eq!(
            f("[%5d][%-5d][%05d]", &[l(42), l(42), l(42)]),
            "[   42][42   ][00042]"
        );
        assert_eq!(f("[%05d][%-05d]", &[l(-42), l(-42)]), "[-0042][-42  ]");
        assert_eq!(f("[%+05d]", &[l(42)]), "[+0042]");
        assert_eq!(
            f("[%.3d][%8.3d][%-8.3d]", &[l(7), l(7), l(-7)]),
            "[007][     007][-007    ]"
        );
        // stap zero-pads even with a precision.
        assert_eq!(f("[%08.3d]", &[l(7)]), "[00000007]");
        assert_eq!(f("[%.0d]", &[l(0)]), "[0]");
        assert_eq!(f("[%2d]", &[l(12345)]), "[12345]");
    }

    #[test]
    fn hex_octal_pointer() {
        assert_eq!(f("%x|%X|%o", &[l(255), l(255), l(8)]), "ff|FF|10");
        assert_eq!(f("%#x|%#X|%#o", &[l(255), l(255), l(8)]), "0xff|0XFF|010");
        assert_eq!(f("%#x|%#o", &[l(0), l(0)]), "0x0|00");
        assert_eq!(f("%x", &[l(-1)]), "ffffffffffffffff");
        assert_eq!(
            f("[%#10x][%#-10x][%#010x]", &[l(255), l(255), l(255)]),
            "[      0xff][0xff      ][0x000000ff]"
        );
        assert_eq!(f("%p|%p", &[l(0), l(0x1234)]), "0x0|0x1234");
        assert_eq!(f("[%18p]", &[l(0x1234)]), "[            0x1234]");
        assert_eq!(f("[%.8x]", &[l(0xab)]), "[000000ab]");
    }

    #[test]
    fn strings() {
        let s = Arg::Str(b"hello");
        assert_eq!(
            f("[%s][%8s][%-8s][%.3s][%8.2s]", &[s, s, s, s, s]),
            "[hello][   hello][hello   ][hel][      he]"
        );
        assert_eq!(f("[%.0s]", &[s]), "[]");
        assert_eq!(f("[%2s]", &[s]), "[hello]");
        assert_eq!(f("%s", &[Arg::Str(b"ab\0cd")]), "ab");
        assert_eq!(f("%05s|", &[Arg::Str(b"ab")]), "   ab\0|");
        assert_eq!(f("100%%", &[]), "100%");
    }

    #[test]
    fn chars() {
        assert_eq!(f("%c%c", &[l(65), l(0x142)]), "AB");
        assert_eq!(f("[%3c][%-3c]", &[l(120), l(120)]), "[  x][x  ]");
        assert_eq!(
            f("%#c|%#c|%#c|%#c", &[l(10), l(39), l(1), l(65)]),
            "\\n|\\'|\\001|A"
        );
        assert_eq!(f("[%#5c]", &[l(9)]), "[   \\t]");
    }

    #[test]
    fn binary() {
        let pieces = parse_format("%b").unwrap();
        assert_eq!(
            format(&pieces, &[l(0x0102)]),
            0x0102i64.to_ne_bytes().to_vec()
        );
        let pieces = parse_format("%.2b").unwrap();
        assert_eq!(format(&pieces, &[l(0x0102)]).len(), 2);
        let pieces = parse_format("%4b").unwrap();
        assert_eq!(format(&pieces, &[l(1)]).len(), 4);
        let pieces = parse_format("%6.2b").unwrap();
        let out = format(&pieces, &[l(0x4142)]);
        assert_eq!(out.len(), 6);
        assert_eq!(&out[..4], &[0, 0, 0, 0]);
        let pieces = parse_format("%-6.1b").unwrap();
        assert_eq!(format(&pieces, &[l(0x41)]), b"A\0\0\0\0\0");
    }

    #[test]
    fn huge_fields_are_clamped() {
        // (Under the 8388607 a format accepts, over what is printed.)
        let out = f("%8000000d", &[l(1)]);
        assert_eq!(out.len(), MAX_FIELD);
    }

    #[test]
    fn missing_args_are_zero() {
        assert_eq!(f("%d %s.", &[]), "0 .");
    }

    #[test]
    fn log_histogram_layout() {
        let mut b = vec![0i64; 128];
        b[LOG_BUCKET0 + 1] = 4; // value 1
        b[LOG_BUCKET0 + 2] = 2; // 2..3
        b[LOG_BUCKET0 + 5] = 1; // 16..31
        let text = histogram(HistKind::Log, &b).unwrap();
        let expect = "\
value |-------------------------------------------------- count
    0 |                                                   0
    1 |@@@@                                               4
    2 |@@                                                 2
    4 |                                                   0
    8 |                                                   0
   16 |@                                                  1
   32 |                                                   0
   64 |                                                   0

";
        assert_eq!(text, expect);
    }

    #[test]
    fn log_histogram_elides_and_scales() {
        let mut b = vec![0i64; 128];
        b[LOG_BUCKET0 + 1] = 100; // 1
        b[LOG_BUCKET0 + 11] = 7; // 1024
        let text = histogram(HistKind::Log, &b).unwrap();
        let expect = "\
value |-------------------------------------------------- count
    0 |                                                     0
    1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 100
    2 |                                                     0
    4 |                                                     0
      ~
  256 |                                                     0
  512 |                                                     0
 1024 |@@@                                                  7
 2048 |                                                     0
 4096 |                                                     0

";
        assert_eq!(text, expect);
    }

    #[test]
    fn linear_histogram_layout() {
        let lin = Linear::new(0, 100, 10).unwrap();
        let mut b = vec![0i64; lin.buckets()];
        b[lin.bucket(5)] += 3;
        b[lin.bucket(25)] += 1;
        b[lin.bucket(-3)] += 2;
        b[lin.bucket(500)] += 1;
        let text = histogram(HistKind::Linear(lin), &b).unwrap();
        let expect = "\
value |-------------------------------------------------- count
   <0 |@@                                                 2
    0 |@@@                                                3
   10 |                                                   0
   20 |@                                                  1
   30 |                                                   0
   40 |                                                   0
      ~
   90 |                                                   0
  100 |                                                   0
 >100 |@                                                  1

";
        assert_eq!(text, expect);
    }

    #[test]
    fn empty_histogram_is_none() {
        assert!(histogram(HistKind::Log, &[0; 128]).is_none());
    }
}
