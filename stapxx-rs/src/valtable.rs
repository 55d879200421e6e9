//! The value tables of SystemTap's embedded-C formatters, and what its
//! runtime does with them.
//!
//! Many embedded-C functions of the tapsets (`linux/aux_syscalls.stp`)
//! look a value up in a C array of `{value, "NAME"}` pairs with
//! `_stp_lookup_str` (one value -> its name, else the number) or
//! `_stp_lookup_or_str` (flags -> `NAME|NAME|0x..`). Pass 2 rebuilds
//! such an array from the tapset text and the constants data
//! (`resolve/cfuncs.rs`) and passes it to the builtins
//! `__stapxx_lookup_str(value, base, table)` /
//! `__stapxx_lookup_or_str(value, base, table)` as a string literal,
//! encoded here; the host runs [`lookup_str`]/[`lookup_or_str`], the
//! kernel the same steps unrolled (`codegen/lookup.rs`).

/// One entry: the value and the name printed for it.
pub type Entry<'a> = (i64, &'a str);

/// `NAME=VALUE;NAME=VALUE...` (names are C identifiers, never `;`/`=`).
pub fn encode(entries: &[(i64, String)]) -> String {
    entries
        .iter()
        .map(|(v, n)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The entries of an [`encode`]d table, in order; `None` when malformed.
pub fn decode(table: &str) -> Option<Vec<Entry<'_>>> {
    if table.is_empty() {
        return Some(Vec::new());
    }
    table
        .split(';')
        .map(|e| {
            let (n, v) = e.rsplit_once('=')?;
            Some((v.parse().ok()?, n))
        })
        .collect()
}

/// How the runtime prints a value no name matched: `base` 10 is `%ld`,
/// 8 is `%#lo`, anything else `0x%lx`.
pub fn number(v: i64, base: i64) -> String {
    match base {
        10 => v.to_string(),
        8 if v == 0 => "0".into(),
        8 => format!("0{:o}", v as u64),
        _ => format!("0x{:x}", v as u64),
    }
}

/// `_stp_lookup_str2`: the name of the first entry equal to `v`, else the
/// number.
pub fn lookup_str(table: &[Entry], v: i64, base: i64) -> String {
    match table.iter().find(|e| e.0 == v) {
        Some(e) => e.1.to_string(),
        None => number(v, base),
    }
}

/// `_stp_lookup_or_str2`: 0 is looked up as one value; otherwise every
/// entry (in order) sharing a bit with what is left is named and its bits
/// cleared, even when it shares only some of them (so `O_SYNC` before
/// `O_DSYNC` takes a lone `O_DSYNC` bit, as stap prints it), and the
/// rest is printed as a number.
pub fn lookup_or_str(table: &[Entry], v: i64, base: i64) -> String {
    if v == 0 {
        return lookup_str(table, v, base);
    }
    let mut rest = v;
    let mut out = String::new();
    for &(ev, name) in table {
        if ev & rest != 0 {
            if !out.is_empty() {
                out.push('|');
            }
            out.push_str(name);
            rest &= !ev;
        }
    }
    if rest != 0 {
        if !out.is_empty() {
            out.push('|');
        }
        out.push_str(&number(rest, base));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Vec<(i64, String)> {
        [
            ("O_CREAT", 0o100),
            ("O_SYNC", 0o4010000),
            ("O_DSYNC", 0o10000),
        ]
        .iter()
        .map(|(n, v)| (*v, n.to_string()))
        .collect()
    }

    #[test]
    fn round_trip() {
        let s = encode(&t());
        assert_eq!(s, "O_CREAT=64;O_SYNC=1052672;O_DSYNC=4096");
        let d = decode(&s).unwrap();
        assert_eq!(d[1], (1052672, "O_SYNC"));
        assert_eq!(decode(""), Some(vec![]));
        assert_eq!(decode("A=x"), None);
    }

    #[test]
    fn stap_semantics() {
        let s = encode(&t());
        let d = decode(&s).unwrap();
        assert_eq!(lookup_str(&d, 64, 16), "O_CREAT");
        assert_eq!(lookup_str(&d, 65, 16), "0x41");
        assert_eq!(lookup_str(&d, -1, 16), "0xffffffffffffffff");
        assert_eq!(lookup_str(&d, 9, 10), "9");
        assert_eq!(lookup_str(&d, 9, 8), "011");
        assert_eq!(lookup_or_str(&d, 0, 16), "0x0");
        assert_eq!(lookup_or_str(&d, 64 | 1, 16), "O_CREAT|0x1");
        assert_eq!(lookup_or_str(&d, 0o10000, 16), "O_SYNC");
        assert_eq!(lookup_or_str(&d, 0o4010100, 16), "O_CREAT|O_SYNC");
        assert_eq!(lookup_or_str(&d, 2, 16), "0x2");
    }
}
