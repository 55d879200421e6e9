//! A module's call-frame information (`.eh_frame`, else `.debug_frame`),
//! reduced to the rules an x86-64 user-space unwinder needs: where the
//! canonical frame address (CFA) is, and where the caller's `rbp` was
//! saved. The return address is always at CFA-8 on x86-64 (a row saying
//! otherwise is marked unsupported, not guessed).
//!
//! The rows are sorted by address, consecutive equal rules merged, and a
//! [`Cfa::None`] row closes every range no FDE covers, so a binary search
//! for "the last row at or below pc" answers for any pc. This is the form
//! Parca's and the OpenTelemetry profiler's eBPF unwinders walk too; the
//! kernel side is `codegen/unwind.rs`, the packing `crate::unwind`.
//!
//! gimli evaluates the CFI programs (CIE initial instructions, advance_loc,
//! remember/restore state): the parsing is theirs, the reduction ours.

use super::elf::bad;
use super::elf::ElfFile;
use super::error::Result;
use gimli::{
    BaseAddresses, CfaRule, CieOrFde, DebugFrame, EhFrame, EndianSlice, LittleEndian, RegisterRule,
    UnwindContext, UnwindSection, X86_64,
};
use object::{Object, ObjectSection};

/// How to find the canonical frame address at a pc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cfa {
    /// No CFI covers the pc: the walk stops there (and counts it).
    None,
    /// `rsp + off`.
    Rsp(i32),
    /// `rbp + off`.
    Rbp(i32),
    /// The lazy-binding PLT's expression: `rsp + base`, plus 8 once the
    /// pc's offset in its 16-byte slot reaches `threshold` (after the
    /// `push`).
    Plt { base: i32, threshold: u8 },
    /// The return address is undefined: the outermost frame (`_start`,
    /// `clone`'s child), where a walk ends normally.
    Outermost,
    /// A rule this unwinder does not evaluate (other registers, other
    /// expressions): the walk stops there (counted as no CFI).
    Unsupported,
}

/// Where the caller's `rbp` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SavedRbp {
    /// Not saved: the callee left it alone.
    Same,
    /// At `CFA + off`.
    At(i32),
}

/// The rule from `addr` (a link-time address of the module) up to the
/// next row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Row {
    pub addr: u64,
    pub cfa: Cfa,
    pub rbp: SavedRbp,
}

/// The unwind rows of one module's file, sorted and merged (empty when the
/// file has no CFI at all).
pub fn rows(elf: &ElfFile) -> Result<Vec<Row>> {
    let obj = elf.object()?;
    let addr_of = |name: &str| obj.section_by_name(name).map(|s| s.address());
    let mut bases = BaseAddresses::default();
    if let Some(a) = addr_of(".text") {
        bases = bases.set_text(a);
    }
    if let Some(a) = addr_of(".got") {
        bases = bases.set_got(a);
    }
    let mut raw = Vec::new();
    if let Some(data) = elf.section_data(".eh_frame")? {
        let a = addr_of(".eh_frame").unwrap_or(0);
        let section = EhFrame::new(&data[..], LittleEndian);
        collect(&section, &bases.clone().set_eh_frame(a), &mut raw)
            .map_err(|e| bad(elf.name(), format!(".eh_frame: {e}")))?;
    } else if let Some(data) = elf.section_data(".debug_frame")? {
        let section = DebugFrame::new(&data[..], LittleEndian);
        collect(&section, &bases, &mut raw)
            .map_err(|e| bad(elf.name(), format!(".debug_frame: {e}")))?;
    }
    Ok(merge(raw))
}

/// A row with its end (exclusive), as the FDE gives it.
struct Span {
    start: u64,
    end: u64,
    cfa: Cfa,
    rbp: SavedRbp,
}

fn collect<'d, S>(section: &S, bases: &BaseAddresses, out: &mut Vec<Span>) -> gimli::Result<()>
where
    S: UnwindSection<EndianSlice<'d, LittleEndian>>,
{
    let mut ctx = Box::new(UnwindContext::new());
    let mut entries = section.entries(bases);
    while let Some(entry) = entries.next()? {
        let CieOrFde::Fde(partial) = entry else {
            continue;
        };
        // A broken FDE costs its function's rows, not the module's.
        let Ok(fde) = partial.parse(S::cie_from_offset) else {
            continue;
        };
        let Ok(mut table) = fde.rows(section, bases, &mut ctx) else {
            continue;
        };
        while let Ok(Some(row)) = table.next_row() {
            let cfa = match row.cfa() {
                CfaRule::RegisterAndOffset { register, offset } => {
                    match (*register, i32::try_from(*offset)) {
                        (X86_64::RSP, Ok(o)) => Cfa::Rsp(o),
                        (X86_64::RBP, Ok(o)) => Cfa::Rbp(o),
                        _ => Cfa::Unsupported,
                    }
                }
                CfaRule::Expression(e) => match e.get(section) {
                    Ok(expr) => plt_rule(expr.0.slice()),
                    Err(_) => Cfa::Unsupported,
                },
            };
            let cfa = match row.register(X86_64::RA) {
                RegisterRule::Undefined => Cfa::Outermost,
                RegisterRule::Offset(-8) => cfa,
                _ => Cfa::Unsupported,
            };
            let rbp = match row.register(X86_64::RBP) {
                RegisterRule::Offset(o) => i32::try_from(o).map_or(None, |o| Some(SavedRbp::At(o))),
                RegisterRule::SameValue | RegisterRule::Undefined => Some(SavedRbp::Same),
                _ => None,
            };
            let (cfa, rbp) = match rbp {
                Some(r) => (cfa, r),
                None => (Cfa::Unsupported, SavedRbp::Same),
            };
            out.push(Span {
                start: row.start_address(),
                end: row.end_address(),
                cfa,
                rbp,
            });
        }
    }
    Ok(())
}

/// The CFA expression GNU ld writes for a lazy-binding `.plt` (each 16-byte
/// slot pushes once, at a fixed offset):
/// `breg7(rsp) BASE; breg16(rip) 0; lit15; and; litK; ge; lit3; shl; plus`.
fn plt_rule(b: &[u8]) -> Cfa {
    const DW_OP_BREG7: u8 = 0x77;
    const DW_OP_BREG16: u8 = 0x80;
    const DW_OP_LIT0: u8 = 0x30;
    match b {
        [DW_OP_BREG7, base, DW_OP_BREG16, 0, 0x3f, 0x1a, k, 0x2a, 0x33, 0x24, 0x22]
            if *base < 0x40 && (DW_OP_LIT0..DW_OP_LIT0 + 16).contains(k) =>
        {
            Cfa::Plt {
                base: i32::from(*base),
                threshold: k - DW_OP_LIT0,
            }
        }
        _ => Cfa::Unsupported,
    }
}

/// Sorted rows, a `None` row wherever coverage ends, equal neighbours
/// merged. Overlapping FDEs (rare: aliases) keep the one starting first.
fn merge(mut spans: Vec<Span>) -> Vec<Row> {
    spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    let mut out: Vec<Row> = Vec::with_capacity(spans.len() + 16);
    let mut covered_to = 0u64;
    for (i, s) in spans.iter().enumerate() {
        if s.end <= s.start || s.end <= covered_to && s.start < covered_to {
            continue;
        }
        let start = s.start.max(covered_to);
        push(&mut out, start, s.cfa, s.rbp);
        covered_to = s.end;
        let next_start = spans[i + 1..]
            .iter()
            .find(|n| n.end > covered_to)
            .map(|n| n.start);
        if next_start.is_none_or(|n| n > covered_to) {
            push(&mut out, covered_to, Cfa::None, SavedRbp::Same);
        }
    }
    out
}

fn push(out: &mut Vec<Row>, addr: u64, cfa: Cfa, rbp: SavedRbp) {
    if let Some(last) = out.last_mut() {
        if last.cfa == cfa && last.rbp == rbp {
            return;
        }
        if last.addr == addr {
            last.cfa = cfa;
            last.rbp = rbp;
            return;
        }
    }
    out.push(Row { addr, cfa, rbp });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u64, end: u64, cfa: Cfa) -> Span {
        Span {
            start,
            end,
            cfa,
            rbp: SavedRbp::Same,
        }
    }

    #[test]
    fn gaps_get_none_rows_and_equal_rules_merge() {
        let rows = merge(vec![
            span(0x1010, 0x1020, Cfa::Rsp(8)),
            span(0x1000, 0x1004, Cfa::Rsp(8)),
            span(0x1004, 0x1010, Cfa::Rsp(16)),
            span(0x1040, 0x1050, Cfa::Rsp(8)),
        ]);
        let got: Vec<(u64, Cfa)> = rows.iter().map(|r| (r.addr, r.cfa)).collect();
        assert_eq!(
            got,
            vec![
                (0x1000, Cfa::Rsp(8)),
                (0x1004, Cfa::Rsp(16)),
                (0x1010, Cfa::Rsp(8)),
                (0x1020, Cfa::None),
                (0x1040, Cfa::Rsp(8)),
                (0x1050, Cfa::None),
            ]
        );
    }

    #[test]
    fn plt_expression_is_recognised() {
        let e = [0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22];
        assert_eq!(
            plt_rule(&e),
            Cfa::Plt {
                base: 8,
                threshold: 11
            }
        );
        assert_eq!(plt_rule(&e[..10]), Cfa::Unsupported);
    }

    #[test]
    fn this_test_binary_has_rows() {
        let exe = std::env::current_exe().expect("exe");
        let elf = ElfFile::open(&exe).expect("open");
        let rows = rows(&elf).expect("rows");
        assert!(rows.len() > 1000, "{}", rows.len());
        assert!(rows.windows(2).all(|w| w[0].addr < w[1].addr));
        assert!(rows.iter().any(|r| matches!(r.cfa, Cfa::Rsp(8))));
    }
}
