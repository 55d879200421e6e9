//! The functions a handler reaches, resolved right after it, so that what
//! one probe needs is known before the next: a probe that an alias
//! wildcard matched (`syscall.*`) and that needs what we cannot run (an
//! embedded-C function no builtin serves) is taken back whole, with the
//! functions it alone pulled in, and named in a warning; the others run.

use super::cfuncs;
use super::{ResolvedProbe, Resolver, R};
use grammar::ast::{Function, FunctionBody};
use grammar::Diagnostic;
use std::collections::{BTreeSet, HashMap};

/// Where resolution stood before one probe.
pub(super) struct Mark {
    probes: usize,
    entries: usize,
    functions: usize,
    used: BTreeSet<String>,
    /// Warnings of `--skip-badvars` (an optional point left out takes its
    /// own back).
    badvars: usize,
}

impl Resolver<'_, '_> {
    pub(super) fn mark(&self, probes: &[ResolvedProbe]) -> Mark {
        Mark {
            probes: probes.len(),
            entries: self.entries.len(),
            functions: self.resolved_functions.len(),
            used: self.used_functions.clone(),
            badvars: self.badvars.len(),
        }
    }

    pub(super) fn rollback(&mut self, m: Mark, probes: &mut Vec<ResolvedProbe>) {
        probes.truncate(m.probes);
        self.entries.truncate(m.entries);
        self.resolved_functions.truncate(m.functions);
        self.used_functions = m.used;
        self.badvars.truncate(m.badvars);
        self.queue.clear();
    }

    /// Resolve every queued function (and what they queue in turn).
    /// Embedded-C bodies of a known shape become script functions
    /// (`cfuncs`); others are an error.
    pub(super) fn drain_queue(&mut self, c_blocks: &[&str]) -> R<()> {
        // Functions are resolved outside any probe: `$vars` mean nothing.
        let sites = self.sites.take();
        let r = self.drain(c_blocks);
        self.sites = sites;
        r
    }

    fn drain(&mut self, c_blocks: &[&str]) -> R<()> {
        while let Some(name) = self.queue.pop() {
            let f = (*self
                .functions
                .get(name.as_str())
                .expect("queued functions exist"))
            .clone();
            self.autotypes.clear();
            let body = match f.body {
                FunctionBody::Script(b) => FunctionBody::Script(self.block(b)?),
                FunctionBody::Embedded(_) => match cfuncs::translate(&f, c_blocks) {
                    Ok(b) => FunctionBody::Script(self.block(b)?),
                    Err(why) => {
                        return Err(Diagnostic::error(
                            f.span,
                            format!(
                                "function '{}' is embedded C: eBPF cannot run C code (stapxx-rs has no kernel module), and {why}",
                                f.name
                            ),
                        ))
                    }
                },
            };
            self.resolved_functions.push(Function { body, ..f });
        }
        Ok(())
    }
}

/// One warning per wildcard point that left aliases out: how many of how
/// many, and each with the first line of its error.
pub(super) fn skipped_warnings(
    skipped: &[(String, String, Diagnostic)],
    matched: &HashMap<String, BTreeSet<String>>,
) -> Vec<Diagnostic> {
    let mut by_pattern: Vec<(&str, Vec<String>)> = Vec::new();
    for (pattern, alias, e) in skipped {
        let first = e.message.lines().next().unwrap_or("");
        let line = format!("{alias}: {first}");
        match by_pattern.iter_mut().find(|(p, _)| p == pattern) {
            Some((_, lines)) => {
                if !lines.iter().any(|l| l.starts_with(&format!("{alias}: "))) {
                    lines.push(line)
                }
            }
            None => by_pattern.push((pattern, vec![line])),
        }
    }
    by_pattern
        .into_iter()
        .map(|(pattern, lines)| {
            let total = matched.get(pattern).map_or(lines.len(), |s| s.len());
            let mut d = Diagnostic::bare(format!(
                "'{pattern}': {} of the {total} probe aliases it matches left out, as they need what stapxx-rs cannot run:",
                lines.len()
            ));
            d.severity = grammar::diag::Severity::Warning;
            for l in lines {
                d = d.with_note(l);
            }
            d
        })
        .collect()
}
