//! Errors.

use std::fmt;
use std::io;

use crate::asm::AsmError;

/// Everything that can go wrong between assembling and attaching.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("assembler: {0}")]
    Asm(#[from] AsmError),
    #[error("invalid module: {0}")]
    Invalid(String),
    /// The verifier rejected a program.
    #[error("{0}")]
    Verifier(Box<VerifierError>),
    /// The kernel rejected our BTF (a bug in this crate).
    #[error("kernel rejected BTF: {errno}\n{log}")]
    Btf { errno: io::Error, log: String },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("ELF emission: {0}")]
    Elf(String),
    /// The kernel refused to create a map (too large, no memory): which
    /// one, so the caller can say what the map is for.
    #[error("creating map {name} ({kind:?}): {source}")]
    MapCreate {
        map: crate::MapId,
        name: String,
        kind: crate::MapKind,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn sys(what: impl Into<String>, source: io::Error) -> Error {
        Error::Sys {
            what: what.into(),
            source,
        }
    }
    /// The verifier error, if this is one.
    pub fn as_verifier(&self) -> Option<&VerifierError> {
        match self {
            Error::Verifier(v) => Some(v),
            _ => None,
        }
    }
}

/// A program the verifier rejected.
#[derive(Debug)]
pub struct VerifierError {
    /// The program name.
    pub program: String,
    /// What `bpf(BPF_PROG_LOAD)` returned.
    pub errno: io::Error,
    /// The complete verifier log (level 1, or the level asked for).
    pub log: String,
    /// The verifier's complaint: the last meaningful line of the log.
    pub message: String,
    /// The index of the instruction slot the verifier failed at, if the log names one.
    pub insn: Option<usize>,
    /// The function containing that instruction.
    pub func: Option<String>,
    /// The tag (script line) of that instruction.
    pub tag: Option<u32>,
}

impl fmt::Display for VerifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "program {} rejected by the BPF verifier ({})",
            self.program, self.errno
        )?;
        if let Some(i) = self.insn {
            write!(f, " at insn {i}")?;
            if let Some(func) = &self.func {
                write!(f, " in {func}")?;
            }
            if let Some(t) = self.tag {
                write!(f, " (tag {t})")?;
            }
        }
        write!(f, ": {}", self.message)?;
        // The tail of the log, which is where the reason is.
        let lines: Vec<&str> = self.log.lines().collect();
        let from = lines.len().saturating_sub(40);
        if !lines.is_empty() {
            writeln!(f)?;
            writeln!(f, "verifier log{}:", if from > 0 { " (tail)" } else { "" })?;
            for l in &lines[from..] {
                writeln!(f, "  {l}")?;
            }
        }
        Ok(())
    }
}

/// Pull the complaint and the failing instruction index out of a verifier log.
pub fn parse_verifier_log(log: &str) -> (String, Option<usize>) {
    let mut lines: Vec<&str> = log.lines().map(str::trim_end).collect();
    while let Some(l) = lines.last() {
        let t = l.trim();
        if t.is_empty()
            || t.starts_with("processed ")
            || t.starts_with("verification time")
            || t.starts_with("stack depth")
            || t.starts_with("-- END PROG LOAD LOG --")
        {
            lines.pop();
        } else {
            break;
        }
    }
    let message = lines
        .last()
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    // The last "N: (op) ..." or "N: R.." line is the instruction being checked.
    let mut insn = lines.iter().rev().find_map(|l| {
        let (n, rest) = l.split_once(':')?;
        if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let rest = rest.trim_start();
        if rest.starts_with('(') || rest.starts_with('R') || rest.starts_with("frame") {
            n.parse().ok()
        } else {
            None
        }
    });
    if insn.is_none() {
        // cfg-check errors: "back-edge from insn 5 to 3", "unreachable insn 7", ...
        if let Some(p) = message.find("insn ") {
            let digits: String = message[p + 5..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            insn = digits.parse().ok();
        }
    }
    (message, insn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typical_logs() {
        let log = "func#0 @0\n0: R1=ctx() R10=fp0\n0: (bf) r0 = r2\nR2 !read_ok\nprocessed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
        assert_eq!(
            parse_verifier_log(log),
            ("R2 !read_ok".to_string(), Some(0))
        );
        let log = "func#0 @0\n0: R1=ctx() R10=fp0\n0: (b7) r0 = 0\n1: R0_w=0\n1: (05) goto pc+0\n2: (79) r1 = *(u64 *)(r10 -8)\ninvalid read from stack off -8+0 size 8\nprocessed 3 insns\n";
        assert_eq!(parse_verifier_log(log).1, Some(2));
        let log = "back-edge from insn 5 to 3\nverification time 5 usec\n";
        assert_eq!(
            parse_verifier_log(log),
            ("back-edge from insn 5 to 3".to_string(), Some(5))
        );
    }
}
