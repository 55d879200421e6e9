//! `kernel.trace("subsystem:event")`: classic tracepoints, found in
//! tracefs (`events/SUB/EVENT`); wildcards in either part match every
//! event they name, as in stap. The handler's context is the event's
//! record (its fields are not yet target variables).

use super::{Cx, Miss, SiteKind};
use crate::debuginfo::symbols::glob_match as glob;
use ebpf_backend::Attachment;
use grammar::ast::{Literal, ProbePoint};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracepointSite {
    pub category: String,
    pub name: String,
    /// Which tasks the handler runs for (`process(...).begin/.end`).
    pub filter: Option<super::lifecycle::TaskFilter>,
}

/// (offset, size) of a field of a tracepoint's record, from its tracefs
/// `format` file (`field:long ret; offset:16; size:8; signed:1;`).
pub fn field(category: &str, name: &str, field: &str) -> Option<(u16, u8)> {
    let dir = ebpf_backend::attach::ensure_tracefs().ok()?;
    let text = std::fs::read_to_string(dir.join("events").join(category).join(name).join("format"))
        .ok()?;
    for line in text.lines() {
        let mut parts = line.trim().split(';');
        let decl = parts.next()?.trim();
        let Some(decl) = decl.strip_prefix("field:") else {
            continue;
        };
        let fname = decl
            .rsplit(|c: char| c.is_whitespace() || c == '*')
            .next()?
            .split('[')
            .next()?;
        if fname != field {
            continue;
        }
        let num = |key: &str| -> Option<u64> {
            line.split(';')
                .find_map(|p| p.trim().strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
        };
        return Some((num("offset:")? as u16, num("size:")? as u8));
    }
    None
}

fn events_dir() -> Result<PathBuf, Miss> {
    ebpf_backend::attach::ensure_tracefs()
        .map(|t| t.join("events"))
        .map_err(|e| Miss::Unserved(format!("tracepoints need tracefs: {e}")))
}

fn dir_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub fn resolve(pt: &ProbePoint, _cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    let spec = match (pt.components.len(), &pt.components[1].arg) {
        (2, Some(Literal::String(s))) => s.clone(),
        _ => {
            return Err(Miss::Invalid(
                "expected kernel.trace(\"subsystem:event\")".into(),
            ))
        }
    };
    let (cat_pat, ev_pat) = match spec.split_once(':') {
        Some((c, e)) => (c.to_string(), e.to_string()),
        // stap also takes a bare event name: any subsystem.
        None => ("*".to_string(), spec.clone()),
    };
    let events = events_dir()?;
    let mut out = Vec::new();
    let mut all = Vec::new();
    for cat in dir_names(&events) {
        let names = dir_names(&events.join(&cat));
        let cat_ok = glob(&cat_pat, &cat);
        for ev in names {
            if cat_ok && glob(&ev_pat, &ev) {
                out.push(SiteKind::Tracepoint(TracepointSite {
                    category: cat.clone(),
                    name: ev.clone(),
                    filter: None,
                }));
            }
            all.push(format!("{cat}:{ev}"));
        }
    }
    if out.is_empty() {
        let near = crate::debuginfo::layout::nearest(&spec, all.iter().map(|s| s.as_str()), 3);
        return Err(Miss::NoMatch(format!(
            "no tracepoint '{spec}' in {} (nearest: {})",
            events.display(),
            near.join(", ")
        )));
    }
    Ok(out)
}

pub fn attach(t: &TracepointSite, prog: &ebpf_backend::Program) -> Result<Vec<Attachment>, String> {
    prog.attach_tracepoint(&t.category, &t.name)
        .map(|a| vec![a])
        .map_err(|e| format!("cannot attach: {e}"))
}
