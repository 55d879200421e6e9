//! C constants of x86-64 Linux, the one place `@const("NAME")` and the
//! errno names are decided.
//!
//! stap compiles `@const("O_CREAT")` as C, against the kernel's headers;
//! we have no C compiler at run time, so the values were computed from the
//! real headers once and committed: `data/constants.tsv` (`NAME<TAB>VALUE`)
//! and `data/errnos.txt` (the names of errno.stp's `errlist`, in order),
//! both written by the generator in `tests/constants_data.rs`, which also
//! checks that they still match the headers. Names the headers do not
//! define (kernel-internal ones, other architectures') are not there.

use std::collections::HashMap;
use std::sync::OnceLock;

const CONSTANTS: &str = include_str!("../data/constants.tsv");
const ERRNOS: &str = include_str!("../data/errnos.txt");

fn table() -> &'static HashMap<&'static str, i64> {
    static T: OnceLock<HashMap<&'static str, i64>> = OnceLock::new();
    T.get_or_init(|| {
        data_lines(CONSTANTS)
            .filter_map(|l| {
                let (name, value) = l.split_once('\t')?;
                Some((name, value.parse().ok()?))
            })
            .collect()
    })
}

fn data_lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The value of the C constant `name`, if the headers define it, or if
/// it is one of the kernel-internal facts of this machine that
/// [`machine_value`] knows.
pub fn value(name: &str) -> Option<i64> {
    table().get(name).copied().or_else(|| machine_value(name))
}

/// Kernel-internal constants the tapsets use that no UAPI header has but
/// this machine says: the page size (`sysconf`, as the kernel's
/// `PAGE_SIZE`) and the word size of the architecture we were built for.
fn machine_value(name: &str) -> Option<i64> {
    match name {
        "PAGE_SIZE" => Some(crate::system::page_size() as i64),
        "PAGE_SHIFT" => Some(i64::from(crate::system::page_size().trailing_zeros())),
        "BITS_PER_LONG" => Some(i64::from(usize::BITS)),
        _ => None,
    }
}

/// Up to `max` known names nearest to `name` (for "did you mean").
pub fn nearest(name: &str, max: usize) -> Vec<String> {
    let mut names: Vec<&str> = table().keys().copied().collect();
    names.sort_unstable();
    crate::debuginfo::layout::nearest(name, names.into_iter(), max)
}

/// Whether `text` is a plain C identifier (what `@const` can name here).
pub fn is_identifier(text: &str) -> bool {
    let mut b = text.bytes();
    matches!(b.next(), Some(c) if c == b'_' || c.is_ascii_alphabetic())
        && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

/// What `@const("text")` means: its value, or why it has none.
pub fn at_const(text: &str) -> Result<i64, String> {
    if !is_identifier(text) {
        return Err(format!(
            "@const(\"{text}\") is a C expression: only a named C constant (an identifier such as \"O_CREAT\") can be used without a kernel module"
        ));
    }
    if let Some(v) = value(text) {
        return Ok(v);
    }
    let near = nearest(text, 3);
    Err(format!(
        "@const(\"{text}\"): no C constant of that name in x86-64 Linux's headers{}",
        if near.is_empty() {
            String::new()
        } else {
            format!(" (nearest: {})", near.join(", "))
        }
    ))
}

/// The integer constants the tapsets' own embedded C defines, which
/// `@const` sees as stap's C compiler does: `#define NAME VALUE` and the
/// members of `enum { A = 1, B, ... }` (`aux_syscalls.stp`'s
/// `SA_PRETTY`), values as C writes them.
pub fn from_embedded_c(blocks: &[&str]) -> HashMap<String, i64> {
    let define = regex::Regex::new(r"(?m)^\s*#\s*define\s+(\w+)\s+\(?\s*(-?\w+)\s*\)?\s*$")
        .expect("valid regex");
    let enums = regex::Regex::new(r"enum\s*\w*\s*\{([^}]*)\}").expect("valid regex");
    let int = |t: &str| crate::limits::c_integer(t.trim()).and_then(|v| i64::try_from(v).ok());
    let comments = regex::Regex::new(r"(?s)/\*.*?\*/|//[^\n]*").expect("valid regex");
    let mut out = HashMap::new();
    for block in blocks {
        let block = comments.replace_all(block, " ");
        for c in define.captures_iter(&block) {
            if let Some(v) = int(&c[2]) {
                out.insert(c[1].to_string(), v);
            }
        }
        for c in enums.captures_iter(&block) {
            let mut next = Some(0i64);
            for member in c[1].split(',') {
                let (name, value) = match member.split_once('=') {
                    Some((n, v)) => (n.trim(), int(v)),
                    None => (member.trim(), next),
                };
                if !is_identifier(name) {
                    continue;
                }
                if let Some(v) = value {
                    out.insert(name.to_string(), v);
                }
                next = value.and_then(|v| v.checked_add(1));
            }
        }
    }
    out
}

/// stap's errno table: index = errno value, entry = its name.
fn errnos() -> &'static Vec<Option<&'static str>> {
    static T: OnceLock<Vec<Option<&'static str>>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t: Vec<Option<&'static str>> = Vec::new();
        // A later name for the same value replaces an earlier one, as
        // later designated initializers do in errno.stp's C array.
        for name in data_lines(ERRNOS) {
            let Some(v) = value(name).and_then(|v| usize::try_from(v).ok()) else {
                continue;
            };
            if t.len() <= v {
                t.resize(v + 1, None);
            }
            t[v] = Some(name);
        }
        t
    })
}

/// `errno_str(err)` as stap has it: the name of `|err|` when its errno
/// table has one, else nothing (stap returns the empty string, whatever
/// its documentation says about `E#N`).
pub fn errno_name(err: i64) -> Option<&'static str> {
    let e = usize::try_from(err.unsigned_abs()).ok()?;
    errnos().get(e).copied().flatten()
}

/// The errno table as (value, name), ascending: what the kernel side
/// builds its lookup from.
pub fn errno_table() -> Vec<(i64, &'static str)> {
    errnos()
        .iter()
        .enumerate()
        .filter_map(|(v, n)| Some((v as i64, (*n)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_of_embedded_c() {
        let c = from_embedded_c(&[
            "#define STP_A 0x10\n#define STP_B (4)\n#define STP_F(x) x\ntypedef enum {\n  SA_PRETTY = 1, /* one */\n  // next\n  SA_NEXT,\n  SA_IP = 8, // eight\n} sa;\n",
        ]);
        assert_eq!(c.get("STP_A"), Some(&16));
        assert_eq!(c.get("STP_B"), Some(&4));
        assert_eq!(c.get("SA_PRETTY"), Some(&1));
        assert_eq!(c.get("SA_NEXT"), Some(&2));
        assert_eq!(c.get("STP_F"), None);
    }

    #[test]
    fn values_from_the_data() {
        assert_eq!(value("AT_FDCWD"), Some(-100));
        assert_eq!(value("O_CREAT"), Some(0o100));
        assert_eq!(value("__NR_openat"), Some(257));
        assert_eq!(value("__NR_compat_openat"), Some(295));
        assert_eq!(value("GFP_KERNEL"), None);
    }

    #[test]
    fn at_const_messages() {
        assert_eq!(at_const("O_RDWR"), Ok(2));
        let e = at_const("O_CRAET").unwrap_err();
        assert!(
            e.starts_with(
                "@const(\"O_CRAET\"): no C constant of that name in x86-64 Linux's headers (nearest: O_CREAT"
            ),
            "{e}"
        );
        let e = at_const("current->pid").unwrap_err();
        assert!(
            e.starts_with("@const(\"current->pid\") is a C expression"),
            "{e}"
        );
    }

    #[test]
    fn errno_names_as_stap() {
        assert_eq!(errno_name(2), Some("ENOENT"));
        assert_eq!(errno_name(-2), Some("ENOENT"));
        // EAGAIN, not its alias EWOULDBLOCK; EDEADLK, not EDEADLOCK.
        assert_eq!(errno_name(11), Some("EAGAIN"));
        assert_eq!(errno_name(35), Some("EDEADLK"));
        assert_eq!(errno_name(0), None);
        assert_eq!(errno_name(3333), None);
        assert_eq!(errno_name(i64::MIN), None);
        // errno.stp's list ends at ENOTRECOVERABLE (131).
        assert_eq!(errno_name(131), Some("ENOTRECOVERABLE"));
        assert_eq!(errno_name(133), None);
    }
}
