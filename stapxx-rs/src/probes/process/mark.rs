//! `.mark("name")`, `.provider("p").mark("name")`: SDT (USDT) markers.

use super::super::{Miss, SiteKind};
use super::{pp, Place, UprobeSite};
use crate::debuginfo::symbols::glob_match as glob;
use crate::debuginfo::Module;
use std::sync::Arc;

/// The SDT markers matching `provider` (any when `None`) and `name`
/// (wildcards allowed; `-` in a name stands for the `__` the notes use,
/// as dtrace-style names are written both ways).
pub(super) fn resolve(
    m: &Module,
    provider: Option<&str>,
    name: &str,
) -> Result<Vec<SiteKind>, Miss> {
    let module = m.target_path().display().to_string();
    let process = pp::process(m);
    let markers = m
        .sdt_markers()
        .map_err(|e| Miss::Invalid(format!("reading the SDT notes of {module}: {e}")))?;
    let want = name.replace('-', "__");
    let mut out = Vec::new();
    for mk in &markers {
        let provider_ok = provider.is_none_or(|p| glob(p, &mk.provider));
        if provider_ok && glob(&want, &mk.name) {
            out.push(SiteKind::Uprobe(UprobeSite {
                module: module.clone(),
                host_path: m.elf().path().to_path_buf(),
                function: format!("{}:{}", mk.provider, mk.name),
                entry_address: mk.pc,
                address: mk.pc,
                entry_offset: mk.file_offset,
                probe_offset: mk.file_offset,
                is_return: false,
                info: None,
                ref_ctr: mk.semaphore.map(|s| s.file_offset),
                marker: Some(Arc::new(mk.clone())),
                guard: None,
                place: Place::Mark,
                pp: pp::address(&process, mk.pc, ""),
            }));
        }
    }
    if out.is_empty() {
        let all: Vec<String> = markers
            .iter()
            .map(|mk| format!("{}:{}", mk.provider, mk.name))
            .collect();
        let near = crate::debuginfo::layout::nearest(name, all.iter().map(|s| s.as_str()), 3);
        return Err(Miss::NoMatch(if markers.is_empty() {
            format!("{module} has no SDT markers (no .note.stapsdt notes)")
        } else {
            format!(
                "no SDT marker '{}{name}' in {module} (nearest: {})",
                provider.map(|p| format!("{p}:")).unwrap_or_default(),
                near.join(", ")
            )
        }));
    }
    Ok(out)
}
