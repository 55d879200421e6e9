//! Where a function is declared: the file and line its DWARF gives
//! (`DW_AT_decl_file`, `DW_AT_decl_line`, found through the abstract
//! origin of a concrete or inlined instance and the declaration a
//! definition completes, as libdw's `dwarf_decl_file` does). SystemTap
//! names every matched function by them (`pp()` is
//! `function("f@src/f.c:12")`), and `function("f@file.c:12")` picks a
//! function by its declaration line.

use super::dwarf::DieId;
use super::params::Debug;
use gimli::constants as dw;

/// A function's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decl {
    /// The file as the unit's line table names it (its directory joined,
    /// when the name is relative), as stap prints it.
    pub file: String,
    pub line: u64,
}

impl Debug {
    /// The declaration of the function DIE `id`; `None` when its DWARF
    /// does not say (or cannot be read: a name is only for display).
    pub(super) fn declared_at(&self, id: DieId) -> Option<Decl> {
        let (mut file, mut line) = (None, None);
        let mut next = Some(id);
        // A chain is origin -> specification at most; the bound stops a
        // malformed loop.
        for _ in 0..8 {
            let Some(id) = next else { break };
            let u = self.unit_of(id)?;
            let e = u.unit.entry(gimli::UnitOffset(id.offset - u.start)).ok()?;
            if file.is_none() {
                if let Some(index) =
                    e.attr_value(dw::DW_AT_decl_file)
                        .ok()
                        .flatten()
                        .and_then(|v| match v {
                            // gimli reads the attribute as a file index.
                            gimli::AttributeValue::FileIndex(i) => Some(i),
                            v => v.udata_value(),
                        })
                {
                    // The index is into the line table of the unit that
                    // holds the attribute.
                    let program = u.unit.line_program.as_ref()?;
                    file = self.file_path(id.file, u, program.header(), index).ok()?;
                }
            }
            if line.is_none() {
                line = e
                    .attr_value(dw::DW_AT_decl_line)
                    .ok()
                    .flatten()
                    .and_then(|v| v.udata_value());
            }
            if file.is_some() && line.is_some() {
                break;
            }
            next = self.attrs(id).ok()?.origin;
        }
        Some(Decl {
            file: file?,
            line: line.unwrap_or(0),
        })
    }
}
