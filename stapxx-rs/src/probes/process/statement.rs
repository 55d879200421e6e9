//! `.statement("f@file.c:N[-M]")` and `.statement(ADDR).absolute`.

use super::super::{Miss, SiteKind};
use super::{miss, pp, Place, UprobeSite};
use crate::debuginfo::symbols::vaddr_to_file_offset;
use crate::debuginfo::Module;
use std::sync::Arc;

/// `.statement("f@file.c:N[-M]")` and `.statement(ADDR).absolute`: a
/// uprobe at each address where such a line begins (one per function
/// instance), with the variables in scope there.
pub(super) fn resolve(m: &Module, spec: &str, absolute: bool) -> Result<Vec<SiteKind>, Miss> {
    let module = m.target_path().display().to_string();
    let process = pp::process(m);
    let sites = m.statement_sites(spec).map_err(miss)?;
    let by_address = matches!(
        crate::debuginfo::statements::StatementSpec::parse(spec),
        Ok(crate::debuginfo::statements::StatementSpec::Address(_))
    );
    let segments = m.elf().load_segments();
    let mut out = Vec::new();
    for s in sites {
        let Some(offset) = vaddr_to_file_offset(segments, s.address) else {
            continue;
        };
        let function = match (&s.function, &s.file, s.line) {
            // The file's own name: the line table's path is the build's.
            (Some(f), Some(file), Some(l)) => format!(
                "{}@{}:{l}",
                f.name,
                std::path::Path::new(file)
                    .file_name()
                    .map_or(file.as_str().into(), |n| n.to_string_lossy())
            ),
            (Some(f), _, _) => f.name.clone(),
            _ => format!("{:#x}", s.address),
        };
        // By address when given so; else by the line, as the line table
        // names its file.
        let pp = match (&s.function, &s.file, s.line) {
            (Some(f), Some(file), Some(l)) if !by_address => pp::line(&process, &f.name, file, l),
            _ => pp::address(&process, s.address, if absolute { ".absolute" } else { "" }),
        };
        out.push(SiteKind::Uprobe(UprobeSite {
            pp,
            module: module.clone(),
            host_path: m.elf().path().to_path_buf(),
            function,
            entry_address: s.address,
            address: s.address,
            entry_offset: offset,
            probe_offset: offset,
            is_return: false,
            info: s.function.map(Arc::new),
            marker: None,
            ref_ctr: None,
            guard: None,
            place: Place::Statement,
        }));
    }
    if out.is_empty() {
        return Err(Miss::NoMatch(format!(
            "statement '{spec}' has no code in {module} that a probe can be placed on"
        )));
    }
    Ok(out)
}
