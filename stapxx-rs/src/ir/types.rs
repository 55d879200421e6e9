//! Type slots and unification, stap style: every variable, array key,
//! array value, parameter and return value starts unknown and gets its type
//! from the first use that says; a later use that says otherwise is an error.

use super::Ty;
use grammar::{Diagnostic, Span};

/// A slot that may not know its type yet.
pub type Slot = Option<Ty>;

/// Merge what a use says (`found`) into a slot. Returns whether the slot
/// learnt something, or a type-mismatch error naming `what`.
pub fn unify(slot: &mut Slot, found: Slot, what: &str, span: Span) -> Result<bool, Diagnostic> {
    match (*slot, found) {
        (_, None) => Ok(false),
        (None, Some(t)) => {
            *slot = Some(t);
            Ok(true)
        }
        (Some(a), Some(b)) if a == b => Ok(false),
        (Some(a), Some(b)) => Err(Diagnostic::error(
            span,
            format!(
                "type mismatch: {what} is {} elsewhere but {} here",
                a.name(),
                b.name()
            ),
        )),
    }
}

/// One conversion of a printf-style format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// `d i u x X p c s o b`
    pub kind: char,
    /// `-`, `0`, `+`, ` `, `#`
    pub flags: String,
    /// Width (`None` also for a `*` width, which [`Self::width_arg`] marks).
    pub width: Option<usize>,
    pub precision: Option<usize>,
    /// `%*d`: the width is the argument before the value.
    pub width_arg: bool,
    /// `%.*s`: the precision is the argument before the value (after a
    /// `*` width's).
    pub precision_arg: bool,
}

/// A format string split into literal text and conversions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatPiece {
    Text(String),
    Conv(Conversion),
}

impl Conversion {
    /// How many arguments the conversion takes: its value, and the `*`
    /// width and precision before it.
    pub fn arg_count(&self) -> usize {
        1 + usize::from(self.width_arg) + usize::from(self.precision_arg)
    }

    /// The argument type a conversion takes.
    pub fn arg_type(&self) -> Ty {
        if self.kind == 's' {
            Ty::Str
        } else {
            Ty::Long
        }
    }
}

/// The largest field width and precision a conversion may ask for: the
/// kernel's own printf limits (`FIELD_WIDTH_MAX`, `PRECISION_MAX` in
/// lib/vsprintf.c), which `bpf_snprintf` in kernel probes goes through.
/// Past them a width is an error here rather than gigabytes of padding
/// from a host probe (or an overflow while reading the digits).
pub const MAX_WIDTH: usize = (1 << 23) - 1;
pub const MAX_PRECISION: usize = (1 << 15) - 1;

/// The decimal number at the front of `chars`, if any; `Err` once it
/// passes `max` (`what` names it in the message).
fn format_number(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    max: usize,
    what: &str,
) -> Result<Option<usize>, String> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        let v = n.unwrap_or(0) * 10 + d as usize;
        if v > max {
            return Err(format!("format {what} too large (at most {max})"));
        }
        n = Some(v);
        chars.next();
    }
    Ok(n)
}

/// Split a stap format string; errors name the bad conversion.
pub fn parse_format(fmt: &str) -> Result<Vec<FormatPiece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            text.push('%');
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if "-0+ #".contains(f) {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let width_arg = chars.peek() == Some(&'*');
        let width = if width_arg {
            chars.next();
            None
        } else {
            format_number(&mut chars, MAX_WIDTH, "width")?
        };
        let mut precision = None;
        let mut precision_arg = false;
        if chars.peek() == Some(&'.') {
            chars.next();
            if chars.peek() == Some(&'*') {
                chars.next();
                precision_arg = true;
            } else {
                precision =
                    Some(format_number(&mut chars, MAX_PRECISION, "precision")?.unwrap_or(0));
            }
        }
        // Length modifiers are accepted and ignored (all values are 64-bit).
        while let Some(&m) = chars.peek() {
            if "lhjzt".contains(m) {
                chars.next();
            } else {
                break;
            }
        }
        let kind = match chars.next() {
            Some(k) if "diuxXpcsob".contains(k) => k,
            Some(k) => return Err(format!("unsupported conversion '%{k}' in format")),
            None => return Err("format ends in '%'".into()),
        };
        if !text.is_empty() {
            out.push(FormatPiece::Text(std::mem::take(&mut text)));
        }
        out.push(FormatPiece::Conv(Conversion {
            kind,
            flags,
            width,
            precision,
            width_arg,
            precision_arg,
        }));
    }
    if !text.is_empty() {
        out.push(FormatPiece::Text(text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let p = parse_format("a %-5d %s%% %08lx %.3s").unwrap();
        assert_eq!(p.len(), 8);
        assert_eq!(
            p[1],
            FormatPiece::Conv(Conversion {
                kind: 'd',
                flags: "-".into(),
                width: Some(5),
                precision: None,
                width_arg: false,
                precision_arg: false,
            })
        );
        assert_eq!(p[4], FormatPiece::Text("% ".into()));
        assert!(parse_format("%q").is_err());
        assert!(parse_format("x %").is_err());
    }

    /// Found by the frontend fuzz target: the width's digits overflowed
    /// (a panic with overflow checks; in a release build a wrapped width,
    /// or a host probe printing 10^11 spaces).
    #[test]
    fn huge_widths_and_precisions_are_errors() {
        assert_eq!(
            parse_format("%d %9999999999999999999999999999999999999999999999999999999s\n"),
            Err("format width too large (at most 8388607)".to_string())
        );
        assert_eq!(
            parse_format("%.99999999999999999999999s"),
            Err("format precision too large (at most 32767)".to_string())
        );
        let width = |f: &str| match parse_format(f).unwrap()[0].clone() {
            FormatPiece::Conv(c) => (c.width, c.precision),
            p => panic!("{p:?}"),
        };
        assert_eq!(width("%8388607.32767s"), (Some(8388607), Some(32767)));
        assert!(parse_format("%8388608s").is_err());
        assert!(parse_format("%.32768s").is_err());
        assert_eq!(width("%.s"), (None, Some(0)));
        let stars = match parse_format("%-*.*s").unwrap()[0].clone() {
            FormatPiece::Conv(c) => (c.flags.clone(), c.width_arg, c.precision_arg, c.arg_count()),
            p => panic!("{p:?}"),
        };
        assert_eq!(stars, ("-".to_string(), true, true, 3));
    }
}
