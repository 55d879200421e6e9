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
