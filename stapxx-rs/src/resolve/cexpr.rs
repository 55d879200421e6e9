//! Integer C constant expressions, as the value tables of the tapsets'
//! embedded C and their `#if` lines write them (`O_SYNC | 04000000`,
//! `defined (EDEADLOCK) && EDEADLOCK != EDEADLK`). Identifiers are the
//! constants data's (`consts.rs`); casts to C's integer types narrow the
//! value as C does (`(unsigned int)RLIM_INFINITY`); anything else (other
//! casts, function-like macros, `sizeof`) is refused with what it was, so
//! the caller can say why it cannot translate a table.

/// The value of `text`; `Err` names what could not be evaluated.
pub fn eval(text: &str) -> Result<i64, String> {
    let toks = tokens(text)?;
    let mut p = P { t: &toks, i: 0 };
    let v = p.binary(0)?;
    match p.t.get(p.i) {
        None => Ok(v),
        Some(t) => Err(format!("unexpected '{t}' in '{text}'")),
    }
}

fn tokens(s: &str) -> Result<Vec<String>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(s[st..i].to_string());
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            if ["<<", ">>", "&&", "||", "==", "!=", "<=", ">="].contains(&two) {
                out.push(two.to_string());
                i += 2;
            } else if b"|&^~!+-*/%()<>,".contains(&c) {
                out.push((c as char).to_string());
                i += 1;
            } else {
                return Err(format!("unexpected '{}' in '{s}'", c as char));
            }
        }
    }
    Ok(out)
}

struct P<'a> {
    t: &'a [String],
    i: usize,
}

/// Binary operators by C precedence, loosest first.
const LEVELS: &[&[&str]] = &[
    &["||"],
    &["&&"],
    &["|"],
    &["^"],
    &["&"],
    &["==", "!="],
    &["<", "<=", ">", ">="],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "%"],
];

impl P<'_> {
    fn peek(&self) -> Option<&str> {
        self.t.get(self.i).map(|s| s.as_str())
    }

    fn expect(&mut self, s: &str) -> Result<(), String> {
        if self.peek() == Some(s) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{s}'"))
        }
    }

    fn binary(&mut self, level: usize) -> Result<i64, String> {
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut v = self.binary(level + 1)?;
        while let Some(op) = self.peek().filter(|o| LEVELS[level].contains(o)) {
            let op = op.to_string();
            self.i += 1;
            let r = self.binary(level + 1)?;
            v = match op.as_str() {
                "||" => (v != 0 || r != 0) as i64,
                "&&" => (v != 0 && r != 0) as i64,
                "|" => v | r,
                "^" => v ^ r,
                "&" => v & r,
                "==" => (v == r) as i64,
                "!=" => (v != r) as i64,
                "<" => (v < r) as i64,
                "<=" => (v <= r) as i64,
                ">" => (v > r) as i64,
                ">=" => (v >= r) as i64,
                "<<" => v.wrapping_shl(r as u32),
                ">>" => v.wrapping_shr(r as u32),
                "+" => v.wrapping_add(r),
                "-" => v.wrapping_sub(r),
                "*" => v.wrapping_mul(r),
                "/" | "%" if r == 0 => return Err("division by 0".into()),
                "/" => v.wrapping_div(r),
                _ => v.wrapping_rem(r),
            };
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<i64, String> {
        let Some(t) = self.peek().map(str::to_string) else {
            return Err("expression ends early".into());
        };
        self.i += 1;
        match t.as_str() {
            "~" => Ok(!self.unary()?),
            "!" => Ok((self.unary()? == 0) as i64),
            "-" => Ok(self.unary()?.wrapping_neg()),
            "+" => self.unary(),
            "(" => {
                if let Some((bits, signed, n)) = self.cast_ahead() {
                    self.i += n;
                    return Ok(narrow(self.unary()?, bits, signed));
                }
                let v = self.binary(0)?;
                self.expect(")")?;
                Ok(v)
            }
            "defined" => {
                let paren = self.peek() == Some("(");
                if paren {
                    self.i += 1;
                }
                let name = self.t.get(self.i).cloned().ok_or("defined of nothing")?;
                self.i += 1;
                if paren {
                    self.expect(")")?;
                }
                Ok(crate::consts::value(&name).is_some() as i64)
            }
            _ if t.as_bytes()[0].is_ascii_digit() => number(&t),
            _ => {
                if self.peek() == Some("(") {
                    return Err(format!("'{t}(...)' (a function-like macro)"));
                }
                crate::consts::value(&t).ok_or_else(|| format!("'{t}' (not a known C constant)"))
            }
        }
    }
}

impl P<'_> {
    /// After a `(`: a cast to one of C's integer types (`unsigned int)`),
    /// as (bits, signed, tokens up to and with the `)`).
    fn cast_ahead(&self) -> Option<(u32, bool, usize)> {
        const WORDS: &[&str] = &["unsigned", "signed", "int", "long", "short", "char"];
        let words: Vec<&str> = self.t[self.i..]
            .iter()
            .map(String::as_str)
            .take_while(|w| WORDS.contains(w))
            .collect();
        if words.is_empty() || self.t.get(self.i + words.len()).map(String::as_str) != Some(")") {
            return None;
        }
        let bits = if words.contains(&"char") {
            8
        } else if words.contains(&"short") {
            16
        } else if words.contains(&"long") {
            64
        } else {
            32
        };
        Some((bits, !words.contains(&"unsigned"), words.len() + 1))
    }
}

/// `v` as a C integer of `bits` bits, signed or not, read back as a long.
fn narrow(v: i64, bits: u32, signed: bool) -> i64 {
    if bits >= 64 {
        return v;
    }
    let shift = 64 - bits;
    if signed {
        (v << shift) >> shift
    } else {
        v & ((1i64 << bits) - 1)
    }
}

/// A C integer literal: decimal, `0x` hex, `0` octal, with any `u`/`l`
/// suffixes.
fn number(t: &str) -> Result<i64, String> {
    let s = t.trim_end_matches(['u', 'U', 'l', 'L']);
    let r = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8)
    } else {
        s.parse::<u64>()
    };
    r.map(|v| v as i64)
        .map_err(|_| format!("'{t}' (not a number)"))
}

#[cfg(test)]
mod tests {
    use super::eval;

    #[test]
    fn c_expressions() {
        assert_eq!(eval("O_SYNC | 04000000"), Ok(0o4010000 | 0o4000000));
        assert_eq!(eval("1UL << 3"), Ok(8));
        assert_eq!(eval("defined (EDEADLOCK) && EDEADLOCK != EDEADLK"), Ok(0));
        assert_eq!(eval("defined(O_CREAT) && !defined(NO_SUCH_THING)"), Ok(1));
        assert_eq!(eval("~0 & 0xff"), Ok(255));
        assert_eq!(eval("(2 + 3) * 4 - -1"), Ok(21));
        assert!(eval("MAY_READ").unwrap_err().contains("MAY_READ"));
        assert!(eval("KERNEL_VERSION(4,1,0)")
            .unwrap_err()
            .contains("function-like"));
        // Casts to integer types narrow as C does; others are refused.
        assert_eq!(eval("(long)1"), Ok(1));
        assert_eq!(eval("(unsigned int)RLIM_INFINITY"), Ok(0xffff_ffff));
        assert_eq!(eval("(unsigned char)0x1ff"), Ok(0xff));
        assert_eq!(eval("(short)0x18000"), Ok(-32768));
        assert_eq!(eval("(unsigned)(-1) + 1"), Ok(0x1_0000_0000));
        assert!(eval("(struct foo *)1").is_err());
    }
}
