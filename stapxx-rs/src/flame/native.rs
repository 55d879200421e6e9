//! Names for native (C) frames, as SystemTap prints them symbolically:
//! `print_ustack()`, `print_ubacktrace()`, `print_usyms()`,
//! `print_stack()` and `print_backtrace()` (one frame a line, innermost
//! first), and the strings of `sprint_ubacktrace()`.
//!
//! The shapes stap's runtime writes for one address (`%p` is `0x` and hex):
//!
//! | line | name |
//! |---|---|
//! | `0x4005d4 : main+0x1d/0x40 [/usr/bin/prog]` | `main` |
//! | `0x4005d4 : main+0x1d/0x40` (no module known) | `main` |
//! | `0x4005d4 : main` (and with ` [module]`, or `+off` only) | `main` |
//! | `main+0x1d [prog]`, `main+0x1d` (`sprint_ubacktrace`'s simple form) | `main` |
//! | `0x7f12 [/usr/lib/libc.so.6+0x1234/0x0]` (no symbol) | `[libc.so.6]` |
//! | `0x7f12 [libc.so.6]`, `0x7f12 [libc.so.6+0x1234]` | `[libc.so.6]` |
//! | `0x7f1234567` (nothing known) | `0x7f1234567` |
//!
//! Any of them may end in ` (inexact)`, which is dropped. So the name is
//! the function's, whatever the address and offset: samples at different
//! places of one function merge, as `stackcollapse-stap.pl` merges them.
//! Names are kept as printed otherwise: C++ names with their spaces and
//! brackets, and a leading `.`: stap already left out the `.` of
//! function-descriptor symbols, so a dot that is printed belongs to the
//! name.
//!
//! Lines in no such shape are not native frames ([`name`] says `None`):
//! Lua frames (`@file.lua:3`, `C:pmain`, `builtin#21`) are never taken
//! for one, since a line without a leading address needs a `+0x` offset.

/// The flame graph name of a native frame line, or `None` when the line
/// is in none of stap's symbolic shapes.
pub fn name(line: &str) -> Option<String> {
    let line = line.trim();
    let line = line.strip_suffix(" (inexact)").unwrap_or(line).trim_end();
    let Some((addr, rest)) = split_address(line) else {
        // The simple form has no address; the offset is what tells it
        // apart from any other frame line.
        let func = strip_offset(strip_module(line))?;
        return (!func.is_empty()).then(|| func.to_string());
    };
    if rest.is_empty() {
        return Some(addr.to_string());
    }
    if let Some(sym) = rest.strip_prefix(" : ") {
        let sym = strip_module(sym.trim_start());
        let func = strip_offset(sym).unwrap_or(sym);
        // No symbol after all: the address is all there is.
        return Some(if func.is_empty() { addr } else { func }.to_string());
    }
    // `ADDR [module]`, `ADDR [module+off]`, `ADDR [module+off/size]`.
    let module = rest.strip_prefix(" [")?.strip_suffix(']')?;
    let module = strip_offset(module).unwrap_or(module);
    if module.is_empty() {
        return None;
    }
    let base = module.rsplit('/').next().filter(|b| !b.is_empty());
    Some(format!("[{}]", base.unwrap_or(module)))
}

/// `0x7f12...` at the start of `line`: the address and what follows it.
fn split_address(line: &str) -> Option<(&str, &str)> {
    let digits = line.strip_prefix("0x")?;
    let n = digits.bytes().take_while(|b| b.is_ascii_hexdigit()).count();
    if n == 0 {
        return None;
    }
    Some(line.split_at(2 + n))
}

/// `sym [module]` -> `sym`; the module is the last bracketed part, so
/// `operator[]` in a C++ name stays in the name.
fn strip_module(s: &str) -> &str {
    match s.strip_suffix(']').and_then(|inner| inner.rfind(" [")) {
        Some(i) => s[..i].trim_end(),
        None => s,
    }
}

/// `sym+0x1d/0x40` or `sym+0x1d` -> `sym`; `None` without such an ending.
/// The last `+` is the one: `operator+(A, A)+0x8/0x20` is `operator+(A, A)`.
fn strip_offset(s: &str) -> Option<&str> {
    let (sym, off) = s.rsplit_once('+')?;
    let ok = match off.split_once('/') {
        Some((off, size)) => is_number(off) && is_number(size),
        None => is_number(off),
    };
    ok.then_some(sym)
}

/// `%#lx` output: `0x` and hex digits; a bare `0` too, which is how a C
/// library's printf writes zero (stap's dyninst runtime prints with it).
fn is_number(s: &str) -> bool {
    s == "0"
        || s.strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(line: &str) -> Option<String> {
        name(line)
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn symbol_with_address() {
        // print_ustack()/print_ubacktrace()/print_usyms(), as printed.
        assert_eq!(
            n(" 0x4005d4 : main+0x1d/0x40 [/usr/bin/prog]"),
            some("main")
        );
        assert_eq!(n(" 0x4005d4 : main+0x1d/0x40"), some("main"));
        assert_eq!(n("0x4005d4 : main+0x1d [prog]"), some("main"));
        assert_eq!(n("0x4005d4 : main [/usr/bin/prog]"), some("main"));
        assert_eq!(n("0x4005d4 : main"), some("main"));
        assert_eq!(n("0x4005d4 : main+0x0/0x40"), some("main"));
        assert_eq!(n("0x4005d4 : main+0/0x40"), some("main"));
        // print_backtrace()/print_stack().
        assert_eq!(
            n(" 0xffffffff8103ce3b : native_safe_halt+0xb/0x10 [kernel]"),
            some("native_safe_halt")
        );
        assert_eq!(
            n(" 0xffffffffc0a1b2c3 : nft_do_chain+0x9e/0x4d0 [nf_tables]"),
            some("nft_do_chain")
        );
        assert_eq!(
            n(" 0x00007f3a1c2b3d4e : __libc_start_main+0xf5/0x1c0 [/lib64/libc.so.6] (inexact)"),
            some("__libc_start_main")
        );
    }

    #[test]
    fn no_symbol() {
        assert_eq!(
            n(" 0x7f12 [/usr/lib/x86_64-linux-gnu/libc.so.6+0x1234/0x0]"),
            some("[libc.so.6]")
        );
        assert_eq!(n("0x7f12 [libc.so.6+0x1234]"), some("[libc.so.6]"));
        assert_eq!(
            n("0x7f12 [/usr/lib/libstdc++.so.6]"),
            some("[libstdc++.so.6]")
        );
        assert_eq!(n("0xffffffffc0001234 [kernel]"), some("[kernel]"));
        assert_eq!(n(" 0x7f1234567"), some("0x7f1234567"));
        assert_eq!(n("0x00007f1234567 (inexact)"), some("0x00007f1234567"));
        assert_eq!(n("0x10 : +0x1/0x2"), some("0x10"));
    }

    #[test]
    fn simple_form() {
        // sprint_ubacktrace(): module basenames, no address.
        assert_eq!(n("main+0x1d [prog]"), some("main"));
        assert_eq!(n("main+0x1d"), some("main"));
        assert_eq!(
            n("ngx_epoll_process_events+0x2e1/0x6a0"),
            some("ngx_epoll_process_events")
        );
    }

    #[test]
    fn names_stay_as_printed() {
        assert_eq!(
            n(" 0x401136 : std::vector<int, std::allocator<int> >::push_back(int const&)+0x26/0x50 [/opt/a.out]"),
            some("std::vector<int, std::allocator<int> >::push_back(int const&)")
        );
        assert_eq!(
            n("0x401200 : operator+(A const&, A const&)+0x8/0x20 [/opt/a.out]"),
            some("operator+(A const&, A const&)")
        );
        assert_eq!(
            n("0x401300 : Foo::operator[](unsigned long)+0x4/0x10"),
            some("Foo::operator[](unsigned long)")
        );
        assert_eq!(n("0x401300 : Foo::operator[]"), some("Foo::operator[]"));
        assert_eq!(
            n("0x401400 : (anonymous namespace)::run()+0x1/0x9 [/opt/a.out]"),
            some("(anonymous namespace)::run()")
        );
        // stap drops the dot of function descriptors itself: one printed
        // is part of the name.
        assert_eq!(n(" 0x10 : .L.str+0x1/0x8 [/bin/x]"), some(".L.str"));
        assert_eq!(
            n("memcpy@@GLIBC_2.14+0x10/0x80"),
            some("memcpy@@GLIBC_2.14")
        );
    }

    #[test]
    fn other_lines_are_not_native() {
        for line in [
            "@app/mod.lua:3",
            "C:pmain",
            "builtin#21",
            "T:@a.lua:3",
            "=stdin:0",
            "main",
            "leaf",
            "a+b",
            "+0x10",
            "main+0x1d/oops",
            "0x",
            "0xzz",
            "0x12 foo",
            "0x12 []",
            "",
        ] {
            assert_eq!(n(line), None, "{line:?}");
        }
    }
}
