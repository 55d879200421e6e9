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
    /// Width; `Some(None)`-like star widths are not supported.
    pub width: Option<usize>,
    pub precision: Option<usize>,
}

/// A format string split into literal text and conversions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatPiece {
    Text(String),
    Conv(Conversion),
}

impl Conversion {
    /// The argument type a conversion takes.
    pub fn arg_type(&self) -> Ty {
        if self.kind == 's' {
            Ty::Str
        } else {
            Ty::Long
        }
    }
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
        let mut width = None;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = Some(width.unwrap_or(0) * 10 + d as usize);
            chars.next();
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                p = p * 10 + d as usize;
                chars.next();
            }
            precision = Some(p);
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
                precision: None
            })
        );
        assert_eq!(p[4], FormatPiece::Text("% ".into()));
        assert!(parse_format("%q").is_err());
        assert!(parse_format("x %").is_err());
    }
}
