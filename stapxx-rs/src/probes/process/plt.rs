//! `.plt("name")`, `.plt`: PLT stubs of imported functions.

use super::super::{Miss, SiteKind};
use super::{miss, pp, Place, UprobeSite};
use crate::debuginfo::Module;

/// `.plt("name")`: the PLT stub of each imported function matching.
pub(super) fn resolve(m: &Module, pattern: &str, is_return: bool) -> Result<Vec<SiteKind>, Miss> {
    let module = m.target_path().display().to_string();
    let process = pp::process(m);
    let entries = m.plt_matching(pattern).map_err(miss)?;
    Ok(entries
        .into_iter()
        .map(|p| {
            SiteKind::Uprobe(UprobeSite {
                module: module.clone(),
                host_path: m.elf().path().to_path_buf(),
                function: p.name,
                entry_address: p.address,
                address: p.address,
                entry_offset: p.file_offset,
                probe_offset: p.file_offset,
                is_return,
                info: None,
                marker: None,
                ref_ctr: None,
                guard: None,
                place: Place::Plt,
                pp: pp::address(&process, p.address, if is_return { ".return" } else { "" }),
            })
        })
        .collect())
}
