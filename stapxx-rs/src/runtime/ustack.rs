//! Symbolic user backtraces: the text `print_ustack`, `print_ubacktrace`
//! and friends print for a string of hex addresses, in SystemTap's formats
//! (its runtime's `_STP_SYM_FULL`, `_DATA`, `_BRIEF` and `_SIMPLE` flag
//! sets). Kernel probes send the hex string (`ubacktrace()`'s result) and
//! the host symbolizes it here, once per printed stack, instead of in the
//! probe.

use super::host::Host;

/// Which of stap's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `print_ubacktrace()`: ` 0x4005d4 : main+0x1d/0x40 [/path/prog]`.
    Full,
    /// `print_ustack(s)`, `print_usyms(s)`, `sprint_ustack(s)`: ` TOKEN : `
    /// then `usymdata(addr)`.
    Usyms,
    /// `print_ubacktrace_brief()`: `main+0x1d`.
    Brief,
    /// `sprint_ubacktrace()`: `main+0x1d [prog]`.
    Simple,
}

/// What is known of one address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrInfo {
    /// (name, offset into it, its size).
    pub symbol: Option<(String, u64, u64)>,
    /// The module's path in the target, and the address's offset from the
    /// module's load address.
    pub module: Option<(String, u64)>,
}

/// `usymdata(addr)`: `name+0xoff/0xsize [module]`, with what is missing
/// left out, or the address in hex.
pub fn symdata(a: u64, i: &AddrInfo) -> String {
    match (&i.symbol, &i.module) {
        (Some((n, off, size)), Some((m, _))) => format!("{n}+{off:#x}/{size:#x} [{m}]"),
        (Some((n, off, size)), None) => format!("{n}+{off:#x}/{size:#x}"),
        (None, Some((m, off))) => format!("{a:#x} [{m}+{off:#x}/0x0]"),
        (None, None) => format!("{a:#x}"),
    }
}

/// One address's line in `style`.
pub fn line(style: Style, token: &str, a: u64, i: &AddrInfo) -> String {
    let base = |m: &str| m.rsplit('/').next().unwrap_or(m).to_string();
    match style {
        Style::Usyms => format!(" {token} : {}\n", symdata(a, i)),
        Style::Full => match (&i.symbol, &i.module) {
            (Some(_), _) => format!(" {a:#x} : {}\n", symdata(a, i)),
            (None, Some(_)) => format!(" {}\n", symdata(a, i)),
            (None, None) => format!(" {a:#x}\n"),
        },
        Style::Brief => match &i.symbol {
            Some((n, off, _)) => format!("{n}+{off:#x}\n"),
            None => format!("{a:#x}\n"),
        },
        Style::Simple => match (&i.symbol, &i.module) {
            (Some((n, off, _)), Some((m, _))) => format!("{n}+{off:#x} [{}]\n", base(m)),
            (Some((n, off, _)), None) => format!("{n}+{off:#x}\n"),
            (None, Some((m, off))) => format!("{a:#x} [{}+{off:#x}]\n", base(m)),
            (None, None) => format!("{a:#x}\n"),
        },
    }
}

/// The hex addresses of `stack` (as `ubacktrace()` gives them, separated by
/// spaces), each with its token as written. stap's `strtol(tok, 16)` takes
/// an optional `0x`; a token that is not hex is 0.
pub fn addresses(stack: &str) -> impl Iterator<Item = (&str, u64)> {
    stack.split_whitespace().map(|t| {
        let digits = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        (t, u64::from_str_radix(digits, 16).unwrap_or(0))
    })
}

/// What is known of a kernel address: its function (from kallsyms, sizes
/// to the next symbol) in module `kernel`, as stap names the kernel.
pub fn kernel_info(addr: u64) -> AddrInfo {
    match crate::ksyms::KernelSymbols::get().lookup(addr) {
        Some((name, start, size)) => AddrInfo {
            symbol: Some((name.to_string(), addr - start, size)),
            module: Some(("kernel".to_string(), addr)),
        },
        None => AddrInfo::default(),
    }
}

/// The text for a kernel `stack` (`print_stack`, `print_backtrace`).
pub fn format_kernel(style: Style, stack: &str) -> String {
    addresses(stack)
        .map(|(tok, a)| line(style, tok, a, &kernel_info(a)))
        .collect()
}

/// The whole text for `stack` in `style`.
pub fn format(host: &mut Host, style: Style, stack: &str) -> String {
    let mut out = String::new();
    for (tok, a) in addresses(stack) {
        let info = host.addr_info(a);
        out.push_str(&line(style, tok, a, &info));
    }
    out
}

/// `sprint_ustack(s)`: the `print_ustack` lines while they fit in `max - 1`
/// bytes (whole lines only, as stap's tapset cuts them).
pub fn sprint(host: &mut Host, stack: &str, max: usize) -> String {
    whole_lines(&format(host, Style::Usyms, stack), max)
}

/// `sprint_stack(s)`: the same for a kernel stack.
pub fn sprint_kernel(stack: &str, max: usize) -> String {
    whole_lines(&format_kernel(Style::Usyms, stack), max)
}

/// The first lines of `text` that fit in `max - 1` bytes together.
fn whole_lines(text: &str, max: usize) -> String {
    let mut out = String::new();
    for l in text.split_inclusive('\n') {
        if out.len() + l.len() > max.saturating_sub(1) {
            break;
        }
        out.push_str(l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> AddrInfo {
        AddrInfo {
            symbol: Some(("main".into(), 0x1d, 0x40)),
            module: Some(("/usr/bin/prog".into(), 0x11d4)),
        }
    }

    #[test]
    fn stap_formats() {
        let a = 0x4005d4;
        let none = AddrInfo::default();
        let module_only = AddrInfo {
            symbol: None,
            module: Some(("/lib/libx.so".into(), 0x1234)),
        };
        assert_eq!(
            line(Style::Full, "", a, &full()),
            " 0x4005d4 : main+0x1d/0x40 [/usr/bin/prog]\n"
        );
        assert_eq!(line(Style::Full, "", a, &none), " 0x4005d4\n");
        assert_eq!(
            line(Style::Full, "", a, &module_only),
            " 0x4005d4 [/lib/libx.so+0x1234/0x0]\n"
        );
        assert_eq!(
            line(Style::Usyms, "0x4005d4", a, &full()),
            " 0x4005d4 : main+0x1d/0x40 [/usr/bin/prog]\n"
        );
        assert_eq!(
            line(Style::Usyms, "0x4005d4", a, &none),
            " 0x4005d4 : 0x4005d4\n"
        );
        assert_eq!(line(Style::Brief, "", a, &full()), "main+0x1d\n");
        assert_eq!(line(Style::Simple, "", a, &full()), "main+0x1d [prog]\n");
        assert_eq!(
            line(Style::Simple, "", a, &module_only),
            "0x4005d4 [libx.so+0x1234]\n"
        );
    }

    #[test]
    fn tokens_are_hex_with_or_without_prefix() {
        let got: Vec<(&str, u64)> = addresses("0x10 ff  zz 0X2 ").collect();
        assert_eq!(got, vec![("0x10", 16), ("ff", 255), ("zz", 0), ("0X2", 2)]);
    }
}
