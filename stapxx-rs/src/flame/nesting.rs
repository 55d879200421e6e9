//! A guard in front of the Lua parser. The parser recurses once per level
//! of syntax, and a stack overflow aborts the process, so sources nested
//! deeper than any Lua implementation accepts are refused before parsing.
//!
//! LuaJIT (like Lua 5.1) refuses chunks with more than 200 levels of syntax
//! ("chunk has too many syntax levels"): brackets, blocks, unary operators
//! and the right-associative `..` and `^` all count. A light tokenizer
//! (strings, comments and long brackets skipped) measures the same thing
//! roughly and generously, so no file LuaJIT runs is refused. It also
//! bounds chains of `.`/`:`/call/index suffixes (`a.b.c(...)[...]...`),
//! which the parser handles in time quadratic in their length.

/// The deepest accepted nesting (LuaJIT's own limit is 200).
pub const MAX_DEPTH: usize = 1000;
/// The longest accepted suffix chain.
pub const MAX_CHAIN: usize = 10_000;
/// The parser's work on suffix chains grows with the square of their
/// lengths: the accepted sum of those squares (over 2), about half a
/// second of parsing.
pub const MAX_CHAIN_COST: u64 = 100_000_000;

/// `Err(why)` when `src` is nested too deeply to parse safely.
pub fn check(src: &[u8]) -> Result<(), String> {
    let mut s = Scanner {
        src,
        pos: 0,
        stack: Vec::new(),
        outer_chains: 0,
        chain: 0,
        suffixes: 0,
        cost: 0,
        after_value: false,
    };
    s.run()
}

struct Scanner<'a> {
    src: &'a [u8],
    pos: usize,
    /// Open brackets and blocks, each with the (chain, suffixes) counts of
    /// the level outside it.
    stack: Vec<(usize, usize)>,
    /// The chains of the levels outside (the sum of `stack`'s chains).
    outer_chains: usize,
    /// Unary and right-associative operators in the current expression.
    chain: usize,
    /// Suffixes in the current suffix chain.
    suffixes: usize,
    /// The sum of suffix chain lengths at each suffix.
    cost: u64,
    /// The last token ends a value (so a `-` after it is binary).
    after_value: bool,
}

impl Scanner<'_> {
    fn peek(&self, k: usize) -> u8 {
        self.src.get(self.pos + k).copied().unwrap_or(0)
    }

    fn run(&mut self) -> Result<(), String> {
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => self.pos += 1,
                b'-' if self.peek(1) == b'-' => self.comment(),
                b'[' if matches!(self.peek(1), b'[' | b'=') && self.long_bracket() => self.value(),
                b'"' | b'\'' => {
                    self.string(c);
                    self.value();
                }
                b'0'..=b'9' => {
                    self.number();
                    self.value();
                }
                b'.' if self.peek(1).is_ascii_digit() => {
                    self.number();
                    self.value();
                }
                b'(' | b'[' | b'{' => {
                    self.pos += 1;
                    self.suffix();
                    self.open()?;
                    self.after_value = false;
                }
                b')' | b']' | b'}' => {
                    self.pos += 1;
                    self.close();
                    self.after_value = true;
                }
                b'.' if self.peek(1) == b'.' && self.peek(2) == b'.' => {
                    self.pos += 3;
                    self.value();
                }
                b'.' if self.peek(1) == b'.' => {
                    self.pos += 2;
                    self.operator(true)?;
                }
                b'.' | b':' => {
                    self.pos += if self.peek(1) == b':' { 2 } else { 1 };
                    self.suffix();
                    self.after_value = false;
                }
                b'^' => {
                    self.pos += 1;
                    self.operator(true)?;
                }
                b'-' | b'#' => {
                    self.pos += 1;
                    let unary = c == b'#' || !self.after_value;
                    self.operator(unary)?;
                }
                b'=' if self.peek(1) != b'=' => {
                    self.pos += 1;
                    self.reset();
                }
                b',' | b';' => {
                    self.pos += 1;
                    self.reset();
                }
                c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => self.word()?,
                _ => {
                    // Other operators: `+ * / % == ~= < <= > >=` and junk.
                    self.pos += 1;
                    while matches!(self.peek(0), b'=' | b'<' | b'>' | b'~') {
                        self.pos += 1;
                    }
                    self.operator(false)?;
                }
            }
            if self.suffixes > MAX_CHAIN || self.cost > MAX_CHAIN_COST {
                return Err("its chains of calls and fields are too long to parse".to_string());
            }
        }
        Ok(())
    }

    fn suffix(&mut self) {
        self.suffixes += 1;
        self.cost = self.cost.saturating_add(self.suffixes as u64);
    }

    fn depth_ok(&self) -> Result<(), String> {
        if self.stack.len() + self.outer_chains + self.chain > MAX_DEPTH {
            return Err(format!(
                "nested deeper than Lua allows (more than {MAX_DEPTH} levels)"
            ));
        }
        Ok(())
    }

    fn open(&mut self) -> Result<(), String> {
        self.stack.push((self.chain, self.suffixes));
        self.outer_chains += self.chain;
        self.chain = 0;
        self.suffixes = 0;
        self.depth_ok()
    }

    fn close(&mut self) {
        if let Some((chain, suffixes)) = self.stack.pop() {
            self.outer_chains -= chain;
            self.chain = chain;
            self.suffixes = suffixes;
        }
    }

    fn reset(&mut self) {
        self.chain = 0;
        self.suffixes = 0;
        self.after_value = false;
    }

    fn value(&mut self) {
        self.after_value = true;
    }

    /// A binary or unary operator; `nests`: one that the parser recurses on.
    fn operator(&mut self, nests: bool) -> Result<(), String> {
        self.suffixes = 0;
        self.after_value = false;
        if nests {
            self.chain += 1;
            return self.depth_ok();
        }
        Ok(())
    }

    fn word(&mut self) -> Result<(), String> {
        let start = self.pos;
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            if c == b'_' || c.is_ascii_alphanumeric() || c >= 0x80 {
                self.pos += 1;
            } else {
                break;
            }
        }
        match &self.src[start..self.pos] {
            b"function" | b"do" | b"if" | b"repeat" => {
                let r = self.open();
                self.after_value = false;
                r
            }
            b"end" | b"until" => {
                self.close();
                self.after_value = true;
                Ok(())
            }
            b"not" => self.operator(true),
            b"and" | b"or" => self.operator(false),
            b"true" | b"false" | b"nil" => {
                self.value();
                Ok(())
            }
            b"local" | b"return" | b"while" | b"for" | b"in" | b"then" | b"else" | b"elseif"
            | b"break" | b"goto" => {
                self.reset();
                Ok(())
            }
            _ => {
                self.value();
                Ok(())
            }
        }
    }

    /// `--...` to the end of the line, or a long comment `--[==[ ... ]==]`.
    fn comment(&mut self) {
        self.pos += 2;
        if self.peek(0) == b'[' && self.long_bracket() {
            return;
        }
        while self.pos < self.src.len() && !matches!(self.src[self.pos], b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    /// At `[`: skip a long bracket `[==[ ... ]==]` and return true, or
    /// return false (and move nothing) when this `[` does not open one.
    fn long_bracket(&mut self) -> bool {
        let mut k = 1;
        while self.peek(k) == b'=' {
            k += 1;
        }
        if self.peek(k) != b'[' {
            return false;
        }
        let level = k - 1;
        self.pos += k + 1;
        while self.pos < self.src.len() {
            if self.src[self.pos] == b']' {
                let mut j = 1;
                while j <= level && self.peek(j) == b'=' {
                    j += 1;
                }
                if j == level + 1 && self.peek(j) == b']' {
                    self.pos += j + 1;
                    return true;
                }
            }
            self.pos += 1;
        }
        true
    }

    fn string(&mut self, quote: u8) {
        self.pos += 1;
        while self.pos < self.src.len() {
            match self.src[self.pos] {
                b'\\' => self.pos += 2,
                b'\n' | b'\r' => return,
                c if c == quote => {
                    self.pos += 1;
                    return;
                }
                _ => self.pos += 1,
            }
        }
    }

    fn number(&mut self) {
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            let exponent_sign = matches!(c, b'+' | b'-')
                && self.pos > 0
                && matches!(self.src[self.pos - 1], b'e' | b'E' | b'p' | b'P');
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
                self.pos += 1;
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_code_passes() {
        let src = br#"
local M = {}
-- a comment with ((((( and "quotes
--[==[ long ((((( comment ]] still ]==]
local s = [[ long (((( string ]] .. "esc\"aped (((" .. '((('
function M.f(a, b)
    if a then return -a - -b elseif b then return #b else return not not a end
    local x = a.b.c:d(1)[2].e { 3 } "s"
    for i = 1, 10 do while true do repeat until x end end
    return 1e-5 - 0x1p+4 - .5 ^ 2 ^ 3
end
return M
"#;
        assert_eq!(check(src), Ok(()));
        // Many statements and long left-associative chains are flat.
        let flat = "x = a - b - c\n".repeat(50_000) + &"a + ".repeat(50_000) + "a";
        assert_eq!(check(flat.as_bytes()), Ok(()));
        // LuaJIT's own limit is well within ours.
        let deep = "(".repeat(200) + "1" + &")".repeat(200);
        assert_eq!(check(deep.as_bytes()), Ok(()));
    }

    #[test]
    fn deep_code_is_refused() {
        for src in [
            "x = ".to_string() + &"(".repeat(2000),
            "do ".repeat(2000),
            "x = ".to_string() + &"{".repeat(2000),
            "x = ".to_string() + &"- ".repeat(2000) + "1",
            "x = ".to_string() + &"not ".repeat(2000) + "1",
            "x = a".to_string() + &" .. a".repeat(2000),
            "x = a".to_string() + &" ^ a".repeat(2000),
            "x = a".to_string() + &".b".repeat(20_000),
            "x = a".to_string() + &"()".repeat(20_000),
            "x = ".to_string() + &"-(".repeat(600),
            format!("x = a{}\n", ".b".repeat(5000)).repeat(10),
        ] {
            assert!(check(src.as_bytes()).is_err(), "{}", &src[..20]);
        }
    }
}
