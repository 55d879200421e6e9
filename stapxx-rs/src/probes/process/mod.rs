//! The uprobe family, `process[("PATH"|PID)][.library("L")]...` as
//! stapprobes(3stap) has it, one file per point kind: [`function`]
//! (`.function`, `.call`, `.inline`, `.return`: every instance, inlined
//! copies included, after the prologue where stap puts it), [`statement`],
//! [`mark`] (SDT markers), [`plt`] and [`callee`] (`.callee`, `.callees`);
//! [`spec`] parses the point. This file owns the site type and the attach
//! call; `process(...).begin/.end` are in [`super::lifecycle`].

mod callee;
mod function;
mod mark;
mod paths;
mod plt;
mod pp;
mod spec;
mod statement;

use super::{Cx, Miss, SiteKind};
use crate::debuginfo::params::FunctionInfo;
use crate::debuginfo::sdt::Marker;
use crate::debuginfo::Module;
use crate::resolve::modules::Modules;
use ebpf_backend::Attachment;
use grammar::ast::{Expr, ProbePoint};
use spec::{parse, What};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct UprobeSite {
    /// The module as the script names it (`@var`-style key).
    pub module: String,
    /// Where this host opens it (through `/proc/PID/root` for a target in
    /// a container): what the kernel's uprobe is placed on.
    pub host_path: PathBuf,
    /// The matched function's name.
    pub function: String,
    /// Link-time address of the function's first instruction.
    pub entry_address: u64,
    /// Link-time address the (non-return) probe sits at.
    pub address: u64,
    /// File offsets of the function's entry and of the probe address
    /// (after the prologue where stap skips it; else the entry).
    pub entry_offset: u64,
    pub probe_offset: u64,
    pub is_return: bool,
    /// The function's DWARF facts at the probe address (`None`: symbol
    /// table only, or a marker).
    pub info: Option<Arc<FunctionInfo>>,
    /// An SDT marker's note: its `$argN` specs, provider and name.
    pub marker: Option<Arc<Marker>>,
    /// The file offset of the marker's semaphore: the kernel raises it
    /// while the probe is attached (uprobe `ref_ctr_offset`).
    pub ref_ctr: Option<u64>,
    /// A test the handler runs under (`.callee`: the call came from one of
    /// the caller's call sites), in stap's language.
    pub guard: Option<Expr>,
    /// What the probe sits on (for listings).
    pub place: Place,
    /// What `pp()` says at this site: stap's name of it (see [`pp`]).
    pub pp: String,
}

/// What a uprobe site sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Function,
    Statement,
    Mark,
    Plt,
    /// A callee's entry (or inlined copy) for `.callee`.
    Callee,
}

impl UprobeSite {
    /// The file offset the uprobe goes at.
    pub fn offset(&self) -> u64 {
        if self.is_return {
            self.entry_offset
        } else {
            self.probe_offset
        }
    }

    /// The same function's entry probe (where `@entry` values are taken).
    pub fn entry_site(&self) -> UprobeSite {
        UprobeSite {
            is_return: false,
            ..self.clone()
        }
    }

    pub fn describe(&self) -> String {
        if let Some(m) = &self.marker {
            return format!(
                "uprobe at SDT marker {}:{} in {} (file offset {:#x}{}), {} argument(s)",
                m.provider,
                m.name,
                self.module,
                self.offset(),
                match self.ref_ctr {
                    Some(o) => format!(", semaphore at file offset {o:#x}"),
                    None => String::new(),
                },
                m.args.len()
            );
        }
        let inlined = self.info.as_ref().is_some_and(|i| i.inlined);
        let place = if self.place == Place::Statement {
            "uprobe at statement".to_string()
        } else if self.place == Place::Plt {
            "uprobe at the PLT stub".to_string()
        } else if inlined {
            "uprobe at the entry of an inlined copy".to_string()
        } else if self.is_return {
            "uretprobe at the entry".to_string()
        } else if self.probe_offset != self.entry_offset {
            format!(
                "uprobe after the prologue (entry +{:#x})",
                self.probe_offset - self.entry_offset
            )
        } else {
            "uprobe at the entry".to_string()
        };
        format!(
            "{place} of {} in {} (file offset {:#x}){}",
            self.function,
            self.module,
            self.offset(),
            match (&self.guard, &self.info) {
                (Some(_), _) => ", for calls from the caller's call sites only",
                (None, Some(_)) => "",
                (None, None) => ", no DWARF",
            }
        )
    }
}

fn open<'m>(modules: &'m mut Modules, name: Option<&str>) -> Result<&'m Module, Miss> {
    modules.get(name).map_err(Miss::Invalid)
}

pub fn resolve(pt: &ProbePoint, cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    let spec = parse(pt)?;
    let module = match (&spec.library_of, &spec.module) {
        (Some(process), Some(lib)) => Some(
            cx.modules
                .library(process.as_deref(), lib)
                .map_err(Miss::NoMatch)?
                .display()
                .to_string(),
        ),
        _ => spec.module.clone(),
    };
    let Some(name) = module else {
        return resolve_in(cx, None, spec.what);
    };
    let files = paths::expand(&name)?;
    if !paths::is_pattern(&name) {
        return resolve_in(cx, files.first().map(String::as_str), spec.what);
    }
    // Each file a pattern matches is optional: the point applies to
    // those that have what it names.
    let mut out = Vec::new();
    let mut first_miss = None;
    for f in &files {
        match resolve_in(cx, Some(f), spec.what.clone()) {
            Ok(kinds) => out.extend(kinds),
            Err(m) => {
                first_miss.get_or_insert_with(|| format!("{f}: {}", m.message()));
            }
        }
    }
    match first_miss {
        Some(why) if out.is_empty() => Err(Miss::NoMatch(format!(
            "none of the {} files '{name}' matches has it; the first: {why}",
            files.len()
        ))),
        _ => Ok(out),
    }
}

/// The sites of `what` in one module (`None`: the default executable).
fn resolve_in(cx: &mut Cx<'_>, module: Option<&str>, what: What) -> Result<Vec<SiteKind>, Miss> {
    let m = open(cx.modules, module)?;
    let spec = match what {
        What::Function {
            name,
            instances,
            is_return,
            suffix,
            decl_lines,
        } => spec::FunctionSpec {
            function: name,
            instances,
            is_return,
            suffix,
            decl_lines,
        },
        What::Mark { provider, name } => return mark::resolve(m, provider.as_deref(), &name),
        What::Statement { spec, absolute } => return statement::resolve(m, &spec, absolute),
        What::Callee { caller, callee } => return callee::resolve(m, &caller, &callee),
        What::Plt { pattern, is_return } => return plt::resolve(m, &pattern, is_return),
    };
    function::resolve(m, &spec)
}

/// A debuginfo lookup's failure: a name that does not exist (which `?`
/// makes silent), or a real error.
fn miss(e: crate::debuginfo::DebugError) -> Miss {
    if Modules::is_unresolved(&e) {
        Miss::NoMatch(e.to_string())
    } else {
        Miss::Invalid(e.to_string())
    }
}

pub fn attach(u: &UprobeSite, prog: &ebpf_backend::Program) -> Result<Vec<Attachment>, String> {
    prog.attach_uprobe_with(&u.host_path, u.offset(), None, u.ref_ctr)
        .map(|a| vec![a])
        .map_err(|e| format!("cannot attach: {e}"))
}
