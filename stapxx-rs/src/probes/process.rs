//! The uprobe family: `process[("PATH"|PID)][.library("L")].function("F")`
//! with `.call`, `.exported` and `.return`, as stapprobes(3stap) has them.
//!
//! A function is matched once, here: by DWARF when the module has it (every
//! out-of-line definition, `F@file.c` compile-unit patterns, wildcards),
//! the probe going where stap puts it: after the prologue for unoptimized
//! code, at the entry for optimized code (see
//! [`crate::debuginfo::params`]); by the symbol table when the module has
//! no DWARF for it (at the entry; no target variables). A `.return` probe
//! is a uretprobe on the function's first byte: the kernel takes the
//! return address from the top of the stack there, and nowhere else.

use super::{Cx, Miss, SiteKind};
use crate::debuginfo::callsites::Callee;
use crate::debuginfo::params::FunctionInfo;
use crate::debuginfo::sdt::Marker;
use crate::debuginfo::symbols::glob_match as glob;
use crate::debuginfo::symbols::vaddr_to_file_offset;
use crate::debuginfo::Module;
use crate::resolve::modules::Modules;
use ebpf_backend::Attachment;
use grammar::ast::{BinOp, Expr, ExprKind, Literal, ProbePoint};
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

struct FunctionSpec {
    function: String,
    instances: Instances,
    is_return: bool,
}

/// The parts of a `process...` point.
struct Spec {
    module: Option<String>,
    what: What,
}

enum What {
    Function {
        name: String,
        instances: Instances,
        is_return: bool,
    },
    Mark {
        provider: Option<String>,
        name: String,
    },
    /// `.statement("f@file.c:N")`, `.statement(ADDR).absolute`.
    Statement(String),
    /// `.function("f").callee("g")`, `.callees`: calls f makes.
    Callee { caller: String, callee: String },
    /// `.plt("name")`, `.plt` (every stub).
    Plt { pattern: String, is_return: bool },
}

/// Which instances of a function a point takes (stapprobes(3stap)).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Instances {
    /// `.function("f")`: every copy, inlined ones included.
    All,
    /// `.call`, `.exported`, `.return`: the out-of-line copies.
    OutOfLine,
    /// `.inline`: the inlined copies.
    Inlined,
}

fn string_arg(pt: &ProbePoint, i: usize, what: &str) -> Result<String, Miss> {
    match &pt.components[i].arg {
        Some(Literal::String(s)) => Ok(s.clone()),
        _ => Err(Miss::Invalid(format!("{what} needs a string argument"))),
    }
}

fn parse(pt: &ProbePoint) -> Result<Spec, Miss> {
    let c = &pt.components;
    let mut module = match &c[0].arg {
        None | Some(Literal::Number(_)) => None,
        Some(Literal::String(s)) => Some(s.clone()),
    };
    let mut i = 1;
    if c.get(i).is_some_and(|c| c.name == "library") {
        module = Some(string_arg(pt, i, "library")?);
        i += 1;
    }
    let mut provider = None;
    if c.get(i).is_some_and(|c| c.name == "provider") {
        provider = Some(string_arg(pt, i, "provider")?);
        i += 1;
    }
    let Some(kind) = c.get(i) else {
        return Err(Miss::NoMatch(
            "expected .function(\"NAME\") or .mark(\"NAME\") after process(...)".into(),
        ));
    };
    match kind.name.as_str() {
        "function" if provider.is_none() => {}
        "mark" => {
            let name = string_arg(pt, i, "mark")?;
            if let Some(extra) = c.get(i + 1) {
                return Err(Miss::Invalid(format!(
                    ".mark(\"{name}\") takes no .{}",
                    extra.name
                )));
            }
            return Ok(Spec {
                module,
                what: What::Mark { provider, name },
            });
        }
        "statement" => {
            let spec = match &kind.arg {
                Some(Literal::String(s)) => s.clone(),
                Some(Literal::Number(n)) => format!("{:#x}", *n as u64),
                _ => {
                    return Err(Miss::Invalid(
                        "statement needs a \"PATTERN\" or an address".into(),
                    ))
                }
            };
            for extra in &c[i + 1..] {
                if !matches!(extra.name.as_str(), "absolute" | "nearest") {
                    return Err(Miss::Unserved(format!(
                        ".statement(...).{} is not supported",
                        extra.name
                    )));
                }
            }
            return Ok(Spec {
                module,
                what: What::Statement(spec),
            });
        }
        "plt" => {
            let pattern = match &kind.arg {
                None => "*".to_string(),
                Some(_) => string_arg(pt, i, "plt")?,
            };
            let mut is_return = false;
            for extra in &c[i + 1..] {
                match extra.name.as_str() {
                    "return" => is_return = true,
                    other => {
                        return Err(Miss::Unserved(format!(
                            ".plt(...).{other} is not supported"
                        )))
                    }
                }
            }
            return Ok(Spec {
                module,
                what: What::Plt { pattern, is_return },
            });
        }
        "syscall" => {
            return Err(Miss::Unserved(
                "process(...).syscall probes are not supported yet".into(),
            ))
        }
        other => {
            let kinds = [
                "function",
                "statement",
                "mark",
                "provider",
                "plt",
                "begin",
                "end",
            ];
            let near = crate::debuginfo::layout::nearest(other, kinds.into_iter(), 2);
            return Err(Miss::NoMatch(format!(
                "unknown process probe '.{other}' (nearest: {})",
                near.join(", ")
            )));
        }
    }
    let function = string_arg(pt, i, "function")?;
    if let Some((_, file)) = function.split_once('@') {
        if let Some((_, line)) = file.rsplit_once([':', '+']) {
            // stap takes a function by its declaration line here; the
            // statement form probes a line.
            return Err(Miss::Unserved(format!(
                "function(\"NAME@FILE:{line}\") (a function by its declaration line) is not supported yet; statement(\"{function}\") probes that line"
            )));
        }
    }
    let mut is_return = false;
    let mut instances = Instances::All;
    if let Some(cc) = c
        .get(i + 1)
        .filter(|cc| cc.name == "callee" || cc.name == "callees")
    {
        let callee = match (cc.name.as_str(), &cc.arg) {
            ("callee", Some(Literal::String(g))) => g.clone(),
            ("callees", None) | ("callees", Some(Literal::Number(1))) => "*".into(),
            ("callees", Some(_)) => {
                return Err(Miss::Unserved(
                    ".callees(N) deeper than 1 is not supported".into(),
                ))
            }
            _ => return Err(Miss::Invalid(".callee needs a \"NAME\"".into())),
        };
        if let Some(extra) = c.get(i + 2) {
            return Err(Miss::Unserved(format!(
                ".{}(...).{} is not supported",
                cc.name, extra.name
            )));
        }
        return Ok(Spec {
            module,
            what: What::Callee {
                caller: function,
                callee,
            },
        });
    }
    for s in &c[i + 1..] {
        match s.name.as_str() {
            "return" => {
                is_return = true;
                instances = Instances::OutOfLine;
            }
            "call" | "exported" => instances = Instances::OutOfLine,
            "inline" => instances = Instances::Inlined,
            other => {
                return Err(Miss::Unserved(format!(
                    ".function(\"{function}\").{other} is not supported yet"
                )))
            }
        }
    }
    if is_return && instances == Instances::Inlined {
        return Err(Miss::Invalid(
            ".inline and .return cannot be combined: an inlined copy has no return".into(),
        ));
    }
    Ok(Spec {
        module,
        what: What::Function {
            name: function,
            instances,
            is_return,
        },
    })
}

fn open<'m>(modules: &'m mut Modules, name: Option<&str>) -> Result<&'m Module, Miss> {
    modules.get(name).map_err(Miss::Invalid)
}

pub fn resolve(pt: &ProbePoint, cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    // process[("P")].begin/.end/.thread.*: tasks starting and ending.
    if pt.components.len() >= 2
        && matches!(pt.components[1].name.as_str(), "begin" | "end" | "thread")
    {
        return super::lifecycle::resolve(pt, cx);
    }
    let spec = parse(pt)?;
    let m = open(cx.modules, spec.module.as_deref())?;
    let spec = match spec.what {
        What::Function {
            name,
            instances,
            is_return,
        } => FunctionSpec {
            function: name,
            instances,
            is_return,
        },
        What::Mark { provider, name } => return marks(m, provider.as_deref(), &name),
        What::Statement(spec) => return statements(m, &spec),
        What::Callee { caller, callee } => return callees(m, &caller, &callee),
        What::Plt { pattern, is_return } => return plt(m, &pattern, is_return),
    };
    let module = m.target_path().display().to_string();
    let host_path = m.elf().path().to_path_buf();
    let segments = m.elf().load_segments();
    let offset_of = |addr: u64| vaddr_to_file_offset(segments, addr);
    let mut out = Vec::new();
    match m.function_instances(&spec.function) {
        Ok(infos) => {
            for info in infos {
                let wanted = match spec.instances {
                    Instances::All => true,
                    Instances::OutOfLine => !info.inlined,
                    Instances::Inlined => info.inlined,
                };
                if !wanted || info.no_probe.is_some() {
                    continue;
                }
                let (Some(entry_offset), Some(probe_offset)) =
                    (offset_of(info.entry_address), offset_of(info.probe_address))
                else {
                    continue;
                };
                out.push(UprobeSite {
                    module: module.clone(),
                    host_path: host_path.clone(),
                    function: info.name.clone(),
                    entry_address: info.entry_address,
                    address: info.probe_address,
                    entry_offset,
                    probe_offset,
                    is_return: spec.is_return,
                    info: Some(Arc::new(info)),
                    marker: None,
                    ref_ctr: None,
                    guard: None,
                    place: Place::Function,
                });
            }
        }
        // No DWARF for it (stripped, or a function the debug info does not
        // describe): the symbol table places it at its entry.
        Err(dwarf_err) => match m.function_probes(&spec.function) {
            Ok(funcs) => {
                for f in funcs {
                    out.push(UprobeSite {
                        module: module.clone(),
                        host_path: host_path.clone(),
                        function: f.name,
                        entry_address: f.address,
                        address: f.address,
                        entry_offset: f.file_offset,
                        probe_offset: f.file_offset,
                        is_return: spec.is_return,
                        info: None,
                        marker: None,
                        ref_ctr: None,
                        guard: None,
                        place: Place::Function,
                    });
                }
            }
            Err(sym_err) => {
                let msg = if Modules::is_unresolved(&dwarf_err) {
                    sym_err.to_string()
                } else {
                    format!("{sym_err} ({dwarf_err})")
                };
                return Err(Miss::NoMatch(msg));
            }
        },
    }
    // One probe per address: a function seen in two compile units (or
    // through two names) is one place.
    out.sort_by_key(|s| (s.offset(), s.function.clone()));
    out.dedup_by_key(|s| s.offset());
    if out.is_empty() {
        let what = match spec.instances {
            Instances::Inlined => "has no inlined copies",
            Instances::OutOfLine => "has no out-of-line copy (only inlined ones)",
            Instances::All => "has no code that a probe can be placed on",
        };
        return Err(Miss::NoMatch(format!(
            "function '{}' {what} in {module}",
            spec.function
        )));
    }
    Ok(out.into_iter().map(SiteKind::Uprobe).collect())
}

/// The SDT markers matching `provider` (any when `None`) and `name`
/// (wildcards allowed; `-` in a name stands for the `__` the notes use,
/// as dtrace-style names are written both ways).
fn marks(m: &Module, provider: Option<&str>, name: &str) -> Result<Vec<SiteKind>, Miss> {
    let module = m.target_path().display().to_string();
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

/// A debuginfo lookup's failure: a name that does not exist (which `?`
/// makes silent), or a real error.
fn miss(e: crate::debuginfo::DebugError) -> Miss {
    if Modules::is_unresolved(&e) {
        Miss::NoMatch(e.to_string())
    } else {
        Miss::Invalid(e.to_string())
    }
}

/// `.statement("f@file.c:N[-M]")` and `.statement(ADDR).absolute`: a
/// uprobe at each address where such a line begins (one per function
/// instance), with the variables in scope there.
fn statements(m: &Module, spec: &str) -> Result<Vec<SiteKind>, Miss> {
    let module = m.target_path().display().to_string();
    let sites = m.statement_sites(spec).map_err(miss)?;
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
        out.push(SiteKind::Uprobe(UprobeSite {
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

/// `.function("f").callee("g")`: each inlined copy of g in f at the
/// copy; an out-of-line g (or its PLT stub, for an imported g) at its
/// entry, guarded by where the call came from: the return address on the
/// stack must be one of f's call sites, as stap checks it. Addresses are
/// compared relative to the probe's own `rip`, so the test needs no load
/// bias.
fn callees(m: &Module, caller: &str, callee: &str) -> Result<Vec<SiteKind>, Miss> {
    let module = m.target_path().display().to_string();
    let found = m.callees(caller, callee).map_err(miss)?;
    let segments = m.elf().load_segments();
    let host_path = m.elf().path().to_path_buf();
    // Out-of-line calls, per probe address: (name, info, return addresses).
    let mut calls: Vec<(u64, String, Option<FunctionInfo>, Vec<u64>)> = Vec::new();
    let mut out = Vec::new();
    for c in found {
        match c {
            Callee::Inlined(info) => {
                let Some(off) = vaddr_to_file_offset(segments, info.probe_address) else {
                    continue;
                };
                if info.no_probe.is_some() {
                    continue;
                }
                out.push(SiteKind::Uprobe(UprobeSite {
                    module: module.clone(),
                    host_path: host_path.clone(),
                    function: info.name.clone(),
                    entry_address: info.entry_address,
                    address: info.probe_address,
                    entry_offset: off,
                    probe_offset: off,
                    is_return: false,
                    info: Some(Arc::new(info)),
                    marker: None,
                    ref_ctr: None,
                    guard: None,
                    place: Place::Callee,
                }));
            }
            Callee::Call {
                callee,
                call_return,
                call_target,
                callee_entry,
                ..
            } => {
                let at = match (&callee_entry, call_target) {
                    (Some(info), _) => info.probe_address,
                    (None, Some(t)) => t,
                    (None, None) => continue,
                };
                match calls.iter_mut().find(|x| x.0 == at) {
                    Some(x) => x.3.push(call_return),
                    None => calls.push((at, callee, callee_entry, vec![call_return])),
                }
            }
        }
    }
    for (at, name, info, returns) in calls {
        let Some(off) = vaddr_to_file_offset(segments, at) else {
            continue;
        };
        // Where the return address is at the probe: the word below the
        // CFA; at a function's (or stub's) first instruction, at rsp.
        let (reg, cfa_off) = match info.as_ref().and_then(|i| i.cfa) {
            Some((r, o)) => match crate::debuginfo::params::x86_64_register_name(r) {
                Some(name) => (name, o),
                None => continue,
            },
            None if info
                .as_ref()
                .is_none_or(|i| i.probe_address == i.entry_address) =>
            {
                ("rsp", 8)
            }
            None => continue,
        };
        let guard = return_guard(reg, cfa_off - 8, at, &returns);
        out.push(SiteKind::Uprobe(UprobeSite {
            module: module.clone(),
            host_path: host_path.clone(),
            function: name,
            entry_address: info.as_ref().map_or(at, |i| i.entry_address),
            address: at,
            entry_offset: off,
            probe_offset: off,
            is_return: false,
            info: info.map(Arc::new),
            marker: None,
            ref_ctr: None,
            guard: Some(guard),
            place: Place::Callee,
        }));
    }
    if out.is_empty() {
        return Err(Miss::NoMatch(format!(
            "no call to '{callee}' in '{caller}' in {module} can be probed"
        )));
    }
    Ok(out)
}

/// `user_uint64(REG + off) - u_register("rip") == R1 - at || ...`: the
/// return address (at `REG + off`) is one of `returns`, each compared by its
/// distance from the probe address `at`, which `rip` holds when it fires.
fn return_guard(reg: &str, off: i64, at: u64, returns: &[u64]) -> Expr {
    let span = grammar::Span::default();
    let e = |kind| Expr { kind, span };
    let call = |name: &str, args| {
        e(ExprKind::Call {
            name: name.into(),
            args,
        })
    };
    let bin = |op, l, r| {
        e(ExprKind::Binary {
            op,
            lhs: Box::new(l),
            rhs: Box::new(r),
        })
    };
    let slot = bin(
        BinOp::Add,
        call("u_register", vec![e(ExprKind::String(reg.into()))]),
        e(ExprKind::Number(off)),
    );
    let distance = bin(
        BinOp::Sub,
        call("user_uint64", vec![slot]),
        call("u_register", vec![e(ExprKind::String("rip".into()))]),
    );
    let mut guard: Option<Expr> = None;
    for r in returns {
        let test = bin(
            BinOp::Eq,
            distance.clone(),
            e(ExprKind::Number(r.wrapping_sub(at) as i64)),
        );
        guard = Some(match guard {
            None => test,
            Some(g) => bin(BinOp::Or, g, test),
        });
    }
    guard.unwrap_or(e(ExprKind::Number(0)))
}

/// `.plt("name")`: the PLT stub of each imported function matching.
fn plt(m: &Module, pattern: &str, is_return: bool) -> Result<Vec<SiteKind>, Miss> {
    let module = m.target_path().display().to_string();
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
            })
        })
        .collect())
}

pub fn attach(u: &UprobeSite, prog: &ebpf_backend::Program) -> Result<Vec<Attachment>, String> {
    prog.attach_uprobe_with(&u.host_path, u.offset(), None, u.ref_ctr)
        .map(|a| vec![a])
        .map_err(|e| format!("cannot attach: {e}"))
}
