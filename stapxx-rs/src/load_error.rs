//! A BPF program the kernel refused, told in the script's terms.
//!
//! Every kernel probe handler is one program (its script functions
//! inlined), so a refusal belongs to a probe. Three kinds:
//!
//! - too long: more instructions than the kernel loads at all (1,000,000;
//!   `bpf(BPF_PROG_LOAD)` fails with E2BIG before the verifier runs, so
//!   there is no log and no line);
//! - too complex: the verifier gave up exploring the program ("BPF program
//!   is too large. Processed 1000001 insn", "The sequence of 8193 jumps is
//!   too complex", ...), usually at a line deep in straight-line code;
//! - anything else: the verifier refused one instruction, whose script
//!   line is known from its tag.
//!
//! The first two are errors at the probe, with the line where the verifier
//! stopped (if any) and what to do; the third is an error at its line.

use crate::codegen::Compiled;
use crate::ir::Program;
use grammar::Diagnostic;

/// The most instructions the kernel takes in one program.
const MAX_INSNS: usize = 1_000_000;

/// What to do about a program that is too long or too complex.
const ADVICE: &str = "make this probe's handler smaller: every script function it calls is \
                      inlined at each call, so split the work over several probes, or move \
                      what need not run in the kernel into `end` or `timer.*` probes (they \
                      run on the host, without this limit)";

/// The diagnostic for `e`, a failure of [`ebpf_backend::Loaded::load`]
/// on `c`'s module. `verbose`: add the tail of the verifier's log.
pub fn diagnose(
    e: &ebpf_backend::Error,
    c: &Compiled,
    program: &Program,
    verbose: bool,
) -> Diagnostic {
    let Some(v) = e.as_verifier() else {
        return Diagnostic::bare(format!("loading the BPF programs failed: {e}"));
    };
    let probe = c
        .probes
        .iter()
        .find(|p| c.module.program(p.prog).name == v.program);
    let handler = probe.and_then(|p| program.probes.get(p.probe));
    let line = v.tag.and_then(|t| c.spans.get(t as usize)).copied();
    let insns = probe
        .and_then(|p| c.module.link(p.prog).ok())
        .map(|img| img.insns.len());
    // E2BIG is both "too many instructions" (no log: refused before the
    // verifier ran) and the verifier's own "too complex".
    let e2big = v.errno.raw_os_error() == Some(libc::E2BIG);
    let too_long = insns.is_some_and(|n| n > MAX_INSNS) || (e2big && v.log.trim().is_empty());
    let too_complex = !too_long
        && (e2big
            || v.message.contains("too complex")
            || v.message.contains("program is too large")
            || v.message.contains("too many states"));
    let mut d = if too_long || too_complex {
        let what = if too_long {
            match insns {
                Some(n) => format!(
                    "the kernel refused the program of this probe as too long: {} BPF \
                     instructions, more than the {} it loads",
                    thousands(n),
                    thousands(MAX_INSNS)
                ),
                None => format!(
                    "the kernel refused the program of this probe as too long ({})",
                    v.errno
                ),
            }
        } else {
            format!(
                "the kernel's BPF verifier gave up on the program of this probe: {}",
                v.message
            )
        };
        let mut d = match handler {
            Some(h) => Diagnostic::error(h.span, what),
            None => Diagnostic::bare(what),
        };
        if let Some(s) = line.filter(|_| too_complex) {
            d = d.with_place(s, "the verifier stopped");
        }
        d.with_note(ADVICE)
    } else {
        let msg = format!(
            "the kernel's BPF verifier rejected the code for this line: {}",
            v.message
        );
        match (line, handler) {
            (Some(s), _) => Diagnostic::error(s, msg),
            (None, Some(h)) => Diagnostic::error(
                h.span,
                format!(
                    "the kernel's BPF verifier rejected the program of this probe: {}",
                    v.message
                ),
            ),
            (None, None) => Diagnostic::bare(msg),
        }
    };
    if verbose {
        let tail: Vec<&str> = v.log.lines().rev().take(30).collect();
        if !tail.is_empty() {
            d = d.with_note(format!(
                "verifier log (last lines):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
    } else if !v.log.is_empty() {
        d = d.with_note("run with -p4 -v for the verifier log");
    }
    d
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(123_456), "123,456");
    }
}
