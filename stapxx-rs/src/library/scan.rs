//! What a tapset file may define, by a lexical scan of its text: every
//! `function NAME`, `probe NAME =`/`+=` and `global NAME`, ignoring
//! comments, strings and embedded C.
//!
//! The scan runs over the raw text, before `%( %)` conditions are decided,
//! so it over-reports (a function defined in both arms of a condition, or
//! only for another architecture): it only picks which files are worth
//! parsing. The parsed file then says what it really defines. Parsing the
//! whole tree (600 files, 2.6 MB) for every run would cost far more than
//! this scan.

use std::collections::HashSet;

/// Names one file may define.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub functions: HashSet<String>,
    /// Alias names as written, dotted (`syscall.openat.return`).
    pub aliases: Vec<String>,
    pub globals: HashSet<String>,
}

/// Scan one file's text.
pub fn scan(text: &str) -> Names {
    let toks = tokens(text);
    let mut names = Names::default();
    let mut i = 0;
    while i < toks.len() {
        match toks[i] {
            Tok::Word("function") => {
                if let Some(Tok::Word(n)) = toks.get(i + 1) {
                    names.functions.insert((*n).to_string());
                }
            }
            Tok::Word("probe") => {
                // `probe a.b.c =` or `+=`: an alias (a probe's points may
                // have arguments, an alias name does not).
                let mut j = i + 1;
                let mut name = String::new();
                while let Some(t) = toks.get(j) {
                    match t {
                        Tok::Word(w) => name.push_str(w),
                        Tok::Punct('.') => name.push('.'),
                        Tok::Punct('*') => name.push('*'),
                        _ => break,
                    }
                    j += 1;
                }
                // (The `=` may start the next line: `probe netdev.transmit
                // \n = kernel.function(...)` in the tapset tree.)
                while matches!(toks.get(j), Some(Tok::Newline)) {
                    j += 1;
                }
                let assign = matches!(toks.get(j), Some(Tok::Punct('=')))
                    || matches!(
                        (toks.get(j), toks.get(j + 1)),
                        (Some(Tok::Punct('+')), Some(Tok::Punct('=')))
                    );
                if assign && !name.is_empty() {
                    names.aliases.push(name);
                }
            }
            Tok::Word("global") => {
                // `global a, b[10], c = 5`: names at depth 0 after commas.
                let mut j = i + 1;
                let mut expect_name = true;
                let mut depth = 0i32;
                while let Some(t) = toks.get(j) {
                    match t {
                        Tok::Word(w) if expect_name && depth == 0 => {
                            names.globals.insert((*w).to_string());
                            expect_name = false;
                        }
                        Tok::Punct('[') | Tok::Punct('(') => depth += 1,
                        Tok::Punct(']') | Tok::Punct(')') => depth -= 1,
                        Tok::Punct(',') if depth == 0 => expect_name = true,
                        Tok::Newline if depth == 0 => break,
                        Tok::Punct(';') => break,
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    names
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    Word(&'a str),
    Punct(char),
    Newline,
}

/// Words, punctuation and line ends; comments, string and character
/// literals, numbers and `%{ ... %}` blocks dropped.
fn tokens(text: &str) -> Vec<Tok<'_>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                out.push(Tok::Newline);
                i += 1;
            }
            b'#' => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'/') => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = find(b, i + 2, b"*/").map_or(b.len(), |e| e + 2);
            }
            b'%' if b.get(i + 1) == Some(&b'{') => {
                i = find(b, i + 2, b"%}").map_or(b.len(), |e| e + 2);
            }
            b'"' | b'\'' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c == b'$' => {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Tok::Word(&text[start..i]));
            }
            _ if c.is_ascii_digit() => {
                while i < b.len() && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            }
            _ if c.is_ascii_whitespace() => i += 1,
            _ => {
                if c.is_ascii() {
                    out.push(Tok::Punct(c as char));
                }
                i += 1;
            }
        }
    }
    out
}

fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p)
}

fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_functions_aliases_and_globals() {
        let n = scan(
            r#"
# function not_me
global a, b[10], c = 5
global d%
/* probe nope = x */
function f:long (x:long) %{ function g() %}
probe syscall.open = kernel.function("sys_open") ? { name = "function h" }
probe syscall.open.return += x {}
probe begin { }
probe a.b, c.d { }
"#,
        );
        let mut f: Vec<_> = n.functions.iter().cloned().collect();
        f.sort();
        assert_eq!(f, ["f"]);
        assert_eq!(n.aliases, ["syscall.open", "syscall.open.return"]);
        let mut g: Vec<_> = n.globals.iter().cloned().collect();
        g.sort();
        assert_eq!(g, ["a", "b", "c", "d"]);
        // The `=` of an alias may start the next line.
        let n = scan("probe netdev.transmit\n\t= kernel.function(\"a\") !,\n\t  kernel.function(\"b\")\n{ }\nprobe x.y\n{ }\n");
        assert_eq!(n.aliases, ["netdev.transmit"]);
    }
}
