//! The `-D NAME=VAL` limits: which names stapxx-rs honours, their
//! defaults and bounds, and how their values are read.
//!
//! stap hands every `-D` to the C compiler as a macro, after checking it
//! against `NAME[=VAL]` with VAL one word of letters, digits and `_`
//! (optionally after a `-`). So for the limits the runtime reads, what
//! works in stap is a C integer constant: decimal, `0x` hex, `0` octal,
//! with `u`/`l` suffixes; those are the values taken here, and anything
//! else is an error naming the `-D` (stap would fail in the C compiler, or
//! worse, compile `-5`). Names stapxx-rs does not use are not errors (in
//! stap they may be macros for the script's embedded C): they get a
//! warning.
//!
//! The upper bounds keep each limit inside what the kernel side can
//! honour; the memory all limits together ask of the kernel is checked
//! once the maps are laid out ([`crate::footprint`]).

use std::collections::BTreeMap;

/// One limit the runtime reads.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub name: &'static str,
    pub default: u64,
    pub min: u64,
    pub max: u64,
    /// Why the maximum is what it is (shown when a value is above it).
    pub why_max: &'static str,
}

/// Every limit stapxx-rs reads. The defaults are stap++'s (MAXACTION,
/// MAXMAPENTRIES, MAXBACKTRACE) or stap's (MAXERRORS, MAXNESTING);
/// MAXSTRINGLEN is larger than both, for Lua backtraces built with `.=`.
pub const LIMITS: &[Limit] = &[
    Limit {
        name: "MAXACTION",
        default: 100_000,
        min: 1,
        max: 1 << 23,
        why_max: "the kernel's bpf_loop runs at most 8388608 iterations",
    },
    Limit {
        name: "MAXBACKTRACE",
        default: 200,
        min: 1,
        max: 10_000,
        why_max: "deeper stacks are not walked",
    },
    Limit {
        name: "MAXERRORS",
        default: 0,
        min: 0,
        max: i32::MAX as u64,
        why_max: "stap's error counter is an int",
    },
    Limit {
        name: "MAXMAPENTRIES",
        default: 5000,
        min: 1,
        max: 1 << 24,
        why_max: "every array's kernel map is allocated whole when loaded",
    },
    Limit {
        name: "MAXNESTING",
        default: 10,
        min: 0,
        max: 10_000,
        why_max: "script function calls nest on the host's stack",
    },
    Limit {
        name: "MAXSTRINGLEN",
        default: 4096,
        min: 2,
        max: 1 << 20,
        why_max: "a kernel map entry must stay under 4 MiB",
    },
];

/// Settings of stap's kernel-module runtime that mean nothing here (no
/// overload checks, no locks to time out, no kernel stack to guard).
const STAP_RUNTIME_ONLY: &[&str] = &[
    "INTERRUPTIBLE",
    "MAXACTION_INTERRUPTIBLE",
    "MAXSKIPPED",
    "MAXTRYLOCK",
    "MINSTACKSPACE",
    "STAP_NO_OVERLOAD",
    "STP_NO_OVERLOAD",
    "STP_OVERLOAD",
    "STP_OVERLOAD_INTERVAL",
    "STP_OVERLOAD_THRESHOLD",
    "TRYLOCKDELAY",
];

pub fn limit(name: &str) -> Option<&'static Limit> {
    LIMITS.iter().find(|l| l.name == name)
}

/// The value of a known limit: the `-D` one when it is valid (the command
/// line has been checked by [`check`]), else the default.
pub fn value(defines: &BTreeMap<String, String>, name: &str) -> u64 {
    let Some(l) = limit(name) else { return 0 };
    defines
        .get(name)
        .and_then(|v| c_integer(v))
        .filter(|n| (l.min as i128..=l.max as i128).contains(n))
        .map_or(l.default, |n| n as u64)
}

/// Check one `-D NAME=VAL` (`val` is `None` for a bare `-D NAME`). A known
/// limit with a bad value is an error; an unknown name gives a warning.
pub fn check(name: &str, val: Option<&str>) -> Result<Option<String>, String> {
    let Some(l) = limit(name) else {
        return Ok(Some(unknown_warning(name, val)));
    };
    let range = format!("{name} takes an integer from {} to {}", l.min, l.max);
    let Some(v) = val else {
        return Err(format!("-D {name}: a value is needed ({range})"));
    };
    let Some(n) = c_integer(v) else {
        return Err(format!(
            "-D {name}={v}: not a number ({range}, decimal or 0x hex)"
        ));
    };
    if n < l.min as i128 {
        return Err(format!("-D {name}={v}: out of range ({range})"));
    }
    if n > l.max as i128 {
        return Err(format!(
            "-D {name}={v}: out of range ({range}: {})",
            l.why_max
        ));
    }
    Ok(None)
}

fn unknown_warning(name: &str, val: Option<&str>) -> String {
    let shown = match val {
        Some(v) => format!("{name}={v}"),
        None => name.to_string(),
    };
    if STAP_RUNTIME_ONLY.contains(&name) {
        return format!(
            "-D {shown} is ignored: it sets stap's kernel-module runtime, which stapxx-rs does not use"
        );
    }
    let known: Vec<&str> = LIMITS.iter().map(|l| l.name).collect();
    let hint = nearest(name)
        .map(|n| format!(" (did you mean {n}?)"))
        .unwrap_or_default();
    format!(
        "-D {shown} is ignored: not a limit stapxx-rs knows{hint}; the known ones are {}",
        known.join(", ")
    )
}

/// The known limit closest to a misspelt name, if one is close: compared
/// without case (C macros have case, but `maxstringlen` means the limit).
fn nearest(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    LIMITS
        .iter()
        .map(|l| {
            (
                crate::debuginfo::layout::edit_distance(&upper, l.name),
                l.name,
            )
        })
        .filter(|(d, n)| *d <= (n.len() / 3).max(2))
        .min()
        .map(|(_, n)| n)
}

/// A C integer constant as the compiler stap hands `-D` values to reads
/// it: an optional `-`, then decimal, `0x` hex or `0` octal, then
/// `u`/`l`/`ul`/`ll`/`ull` in any case. `None` when it is not one.
pub fn c_integer(s: &str) -> Option<i128> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let digits = lower.trim_end_matches(['u', 'l']);
    let suffix = &lower[digits.len()..];
    if !matches!(suffix, "" | "u" | "l" | "ul" | "lu" | "ll" | "ull" | "llu") {
        return None;
    }
    let (digits, radix) = if let Some(hex) = digits.strip_prefix("0x") {
        (hex, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (&digits[1..], 8)
    } else {
        (digits, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // (Longer than any u64: still a number, just out of every range.)
    let n = u64::from_str_radix(digits, radix).map_or(i128::MAX, i128::from);
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_c_reads_them() {
        assert_eq!(c_integer("4096"), Some(4096));
        assert_eq!(c_integer("0x1000"), Some(4096));
        assert_eq!(c_integer("0X1aF"), Some(0x1af));
        assert_eq!(c_integer("010"), Some(8));
        assert_eq!(c_integer("0"), Some(0));
        assert_eq!(c_integer("100UL"), Some(100));
        assert_eq!(c_integer("-0"), Some(0));
        assert_eq!(c_integer("-5"), Some(-5));
        assert_eq!(c_integer("99999999999999999999"), Some(i128::MAX));
        for bad in [
            "", "abc", "0x", "08", "1e3", "12k", "1_000", "100lul", "+5", " 5",
        ] {
            assert_eq!(c_integer(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_values_name_the_define() {
        assert_eq!(
            check("MAXSTRINGLEN", Some("abc")).unwrap_err(),
            "-D MAXSTRINGLEN=abc: not a number (MAXSTRINGLEN takes an integer from 2 to 1048576, decimal or 0x hex)"
        );
        assert_eq!(
            check("MAXSTRINGLEN", Some("-5")).unwrap_err(),
            "-D MAXSTRINGLEN=-5: out of range (MAXSTRINGLEN takes an integer from 2 to 1048576)"
        );
        assert_eq!(
            check("MAXACTION", Some("0")).unwrap_err(),
            "-D MAXACTION=0: out of range (MAXACTION takes an integer from 1 to 8388608)"
        );
        assert_eq!(
            check("MAXERRORS", None).unwrap_err(),
            "-D MAXERRORS: a value is needed (MAXERRORS takes an integer from 0 to 2147483647)"
        );
        assert_eq!(
            check("MAXSTRINGLEN", Some("1000000000")).unwrap_err(),
            "-D MAXSTRINGLEN=1000000000: out of range (MAXSTRINGLEN takes an integer from 2 to 1048576: a kernel map entry must stay under 4 MiB)"
        );
        assert_eq!(check("MAXMAPENTRIES", Some("0x10")), Ok(None));
    }

    #[test]
    fn unknown_names_warn_with_the_nearest() {
        let w = check("MAXSTRLEN", Some("10")).unwrap().unwrap();
        assert_eq!(
            w,
            "-D MAXSTRLEN=10 is ignored: not a limit stapxx-rs knows (did you mean MAXSTRINGLEN?); the known ones are MAXACTION, MAXBACKTRACE, MAXERRORS, MAXMAPENTRIES, MAXNESTING, MAXSTRINGLEN"
        );
        let w = check("maxaction", Some("5")).unwrap().unwrap();
        assert!(w.contains("(did you mean MAXACTION?)"), "{w}");
        let w = check("FOO", None).unwrap().unwrap();
        assert!(w.starts_with("-D FOO is ignored: not a limit stapxx-rs knows; "));
        let w = check("STP_NO_OVERLOAD", None).unwrap().unwrap();
        assert_eq!(w, "-D STP_NO_OVERLOAD is ignored: it sets stap's kernel-module runtime, which stapxx-rs does not use");
    }

    #[test]
    fn values_fall_back_to_defaults() {
        let mut d = BTreeMap::new();
        assert_eq!(value(&d, "MAXSTRINGLEN"), 4096);
        d.insert("MAXSTRINGLEN".to_string(), "0x100".to_string());
        assert_eq!(value(&d, "MAXSTRINGLEN"), 256);
        assert_eq!(value(&d, "MAXNESTING"), 10);
    }
}
