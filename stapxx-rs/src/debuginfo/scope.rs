//! What code holds an address: the out-of-line function, the inlined
//! copies nested in it and the lexical blocks of each, outermost first.
//! A statement probe sees the variables of every one of those blocks.

use gimli::constants as dw;

use super::dwarf::{DieId, R};
use super::error::Result;
use super::params::{Candidate, Debug, UnitInfo};

/// How deep blocks and inlined copies are followed.
const MAX_DEPTH: u32 = 64;

/// One function instance on the way down to an address, and the lexical
/// blocks inside it (not inside a nested copy) that hold the address.
pub(super) struct Level {
    pub function: Candidate,
    /// Outermost first.
    pub blocks: Vec<DieId>,
}

/// Every function instance holding an address: the out-of-line function
/// first, then each inlined copy inside the previous one.
pub(super) struct Scopes {
    pub levels: Vec<Level>,
}

impl Debug {
    /// The scopes holding `pc`, searching unit `hint` first (the unit
    /// whose line table gave the address), then every unit.
    pub(super) fn scopes_at(&self, hint: Option<usize>, pc: u64) -> Result<Option<Scopes>> {
        if let Some(ui) = hint {
            if let Some(s) = self.scopes_in(ui, pc)? {
                return Ok(Some(s));
            }
        }
        for ui in 0..self.units[0].len() {
            if Some(ui) == hint || !self.unit_holds(ui, pc)? {
                continue;
            }
            if let Some(s) = self.scopes_in(ui, pc)? {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    fn unit_holds(&self, ui: usize, pc: u64) -> Result<bool> {
        let u = &self.units[0][ui];
        let run = || -> gimli::Result<bool> {
            let mut ranges = self.dwarf.unit_ranges(&u.unit)?;
            while let Some(r) = ranges.next()? {
                if r.begin <= pc && pc < r.end {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        run().map_err(|e| self.err(format!("ranges of the unit at {:#x}", u.start), e))
    }

    fn scopes_in(&self, ui: usize, pc: u64) -> Result<Option<Scopes>> {
        let u = &self.units[0][ui];
        let err = |e: gimli::Error| self.err(format!("scopes at {pc:#x}"), e);
        let mut tree = u.unit.entries_tree(None).map_err(err)?;
        let root = tree.root().map_err(err)?;
        let mut levels = Vec::new();
        self.descend(ui, u, root, pc, &mut levels, 0)?;
        Ok((!levels.is_empty()).then_some(Scopes { levels }))
    }

    /// Follows the one child of `node` that holds `pc`, down to the
    /// innermost block.
    fn descend(
        &self,
        ui: usize,
        u: &UnitInfo,
        node: gimli::EntriesTreeNode<'_, '_, '_, R>,
        pc: u64,
        levels: &mut Vec<Level>,
        depth: u32,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let err = |e: gimli::Error| self.err(format!("scopes at {pc:#x}"), e);
        let mut children = node.children();
        while let Some(child) = children.next().map_err(err)? {
            let e = child.entry();
            let id = DieId {
                file: 0,
                offset: u.start + e.offset().0,
            };
            let in_code = !levels.is_empty();
            let tag = e.tag();
            let found = match tag {
                dw::DW_TAG_namespace | dw::DW_TAG_class_type | dw::DW_TAG_structure_type
                    if !in_code =>
                {
                    let before = levels.len();
                    self.descend(ui, u, child, pc, levels, depth + 1)?;
                    if levels.len() > before {
                        return Ok(());
                    }
                    continue;
                }
                dw::DW_TAG_subprogram if !in_code => true,
                dw::DW_TAG_inlined_subroutine | dw::DW_TAG_lexical_block if in_code => true,
                _ => false,
            };
            if !found {
                continue;
            }
            let inlined = tag == dw::DW_TAG_inlined_subroutine;
            let Some(code) = self.code_range(u, e, inlined).map_err(err)? else {
                continue;
            };
            // An inlined copy's entry pc often starts an empty range (gcc's
            // location views): the copy begins there all the same.
            let at_entry = inlined && code.entry == pc;
            if !at_entry && !code.ranges.iter().any(|&(b, e)| b <= pc && pc < e) {
                continue;
            }
            if tag == dw::DW_TAG_lexical_block {
                if let Some(l) = levels.last_mut() {
                    l.blocks.push(id);
                }
            } else {
                let own = self.attrs_of(0, u, e).map_err(err)?;
                let name = self.name_and_type(own)?.0;
                let frame = levels.first().map(|l| (l.function.die, l.function.entry));
                let call_line = match inlined {
                    true => e
                        .attr_value(dw::DW_AT_call_line)
                        .map_err(err)?
                        .and_then(|v| v.udata_value()),
                    false => None,
                };
                levels.push(Level {
                    function: Candidate {
                        die: id,
                        unit: ui,
                        entry: code.entry,
                        end: code.end,
                        ranges: code.ranges,
                        name,
                        frame,
                        call_line,
                    },
                    blocks: Vec::new(),
                });
            }
            // Only one child holds the address.
            return self.descend(ui, u, child, pc, levels, depth + 1);
        }
        Ok(())
    }
}
