//! Pass 2, probe points: every point of every probe matched once into
//! typed [`Site`]s. Nothing after this pass reads a probe point's syntax or
//! opens a binary to find where to attach: codegen reads [`Site::prog_kind`]
//! and [`Site::context`], the kernel side calls [`attach`], the host
//! runtime reads the begin/end/timer sites.
//!
//! One file per probe kind, each owning how its points match, what context
//! its handler gets and how it attaches; [`KINDS`] is the table that routes
//! a point to its kind (as bpftrace's probe-type table does). A new kind is
//! a new file and a row here.

pub mod lifecycle;
pub mod perf;
pub mod process;
pub mod process_syscall;
pub mod special;
pub mod syscall;
pub mod timer;
pub mod trace;
pub mod unserved;

use crate::debuginfo::params::FunctionInfo;
use crate::resolve::modules::Modules;
use ebpf_backend::{Attachment, ProgKind};
use grammar::ast::{Expr, ProbePoint};
use grammar::{Diagnostic, Span};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// One place a probe handler runs from.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The point as the script wrote it (`pp()`, messages).
    pub point: String,
    /// The point's place in the script.
    pub span: Span,
    /// The point ended in `?`: failing to attach is not an error.
    pub optional: bool,
    /// The point's `if (cond)`: the handler runs only when it holds.
    pub condition: Option<Expr>,
    pub kind: SiteKind,
    /// What `pn()` says when it is not `pp()`: the probe alias the
    /// script's point went through (stap's script-level name, e.g.
    /// `syscall.read` for `syscall.*`).
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SiteKind {
    /// `begin(seq)`, `end(seq)`, `error(seq)`: run by the host in `seq` order.
    Begin(i64),
    End(i64),
    Error(i64),
    /// `never`: compiled, never run.
    Never,
    /// `timer.s(N)` and friends: host timers on absolute deadlines.
    Timer(Duration),
    /// `timer.profile`, `perf.*`: a sampling perf event on every CPU.
    Perf(perf::PerfSite),
    /// `process(...).function(...)` and the rest of the uprobe family.
    Uprobe(process::UprobeSite),
    /// `kernel.trace("sub:event")`.
    Tracepoint(trace::TracepointSite),
}

/// What a handler's code may read of its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The context pointer is a `pt_regs` (uprobes, perf samples).
    pub regs: bool,
    /// Samples may hit kernel mode: user registers come from the task.
    pub kernel_samples: bool,
}

impl Site {
    /// What `pp()` says in this site's handler: a process site is named
    /// as stap names what matched (see `process::pp`), a tracepoint by its
    /// system and name (`kernel.trace("sched:sched_switch")`, whatever
    /// pattern matched it), `process("P").begin` and friends by P's full
    /// path, every other point as written.
    pub fn pp(&self) -> String {
        match &self.kind {
            SiteKind::Uprobe(u) if !u.pp.is_empty() => u.pp.clone(),
            SiteKind::Tracepoint(t) if self.point.starts_with("kernel.trace(") => {
                format!("kernel.trace(\"{}:{}\")", t.category, t.name)
            }
            SiteKind::Tracepoint(t) => {
                match t.filter.as_ref().and_then(|f| f.exe_path.as_deref()) {
                    Some(exe) => lifecycle::pp(&self.point, exe),
                    None => self.point.clone(),
                }
            }
            _ => self.point.clone(),
        }
    }

    /// `pn()`: the script-level point after wildcard expansion, as stap
    /// finds it (the outermost probe alias the point went through, else
    /// the site's own name, `pp()`).
    pub fn pn(&self) -> String {
        self.alias.clone().unwrap_or_else(|| self.pp())
    }

    /// Where the handler runs: `None` for the host (begin/end/timers),
    /// else the BPF program type the kernel runs it as.
    pub fn prog_kind(&self) -> Option<ProgKind> {
        match &self.kind {
            SiteKind::Begin(_)
            | SiteKind::End(_)
            | SiteKind::Error(_)
            | SiteKind::Never
            | SiteKind::Timer(_) => None,
            SiteKind::Perf(_) => Some(ProgKind::PerfEvent),
            SiteKind::Uprobe(u) => Some(if u.is_return {
                ProgKind::Uretprobe
            } else {
                ProgKind::Uprobe
            }),
            SiteKind::Tracepoint(t) => Some(trace::prog_kind(t)),
        }
    }

    pub fn context(&self) -> Context {
        match &self.kind {
            SiteKind::Perf(_) => Context {
                regs: true,
                kernel_samples: true,
            },
            SiteKind::Uprobe(_) => Context {
                regs: true,
                kernel_samples: false,
            },
            _ => Context {
                regs: false,
                kernel_samples: false,
            },
        }
    }

    /// Which tasks a tracepoint handler runs for (`process.begin/.end`).
    pub fn filter(&self) -> Option<&lifecycle::TaskFilter> {
        match &self.kind {
            SiteKind::Tracepoint(t) => t.filter.as_ref(),
            _ => None,
        }
    }

    /// A test the handler runs under, set by the site's kind (`.callee`).
    pub fn guard(&self) -> Option<&Expr> {
        match &self.kind {
            SiteKind::Uprobe(u) => u.guard.as_ref(),
            _ => None,
        }
    }

    /// The function this site's target variables are read in.
    pub fn function(&self) -> Option<&Arc<FunctionInfo>> {
        match &self.kind {
            SiteKind::Uprobe(u) => u.info.as_ref(),
            _ => None,
        }
    }

    /// One line for `-p2`: the site and where it goes.
    pub fn describe(&self) -> String {
        let what = match &self.kind {
            SiteKind::Begin(s) => format!("begin({s})"),
            SiteKind::End(s) => format!("end({s})"),
            SiteKind::Error(s) => format!("error({s})"),
            SiteKind::Never => "never".into(),
            SiteKind::Timer(d) => format!("host timer every {} ns", d.as_nanos()),
            SiteKind::Perf(p) => p.describe(),
            SiteKind::Uprobe(u) => u.describe(),
            SiteKind::Tracepoint(t) => t.describe(),
        };
        format!("{what} <- {}", self.point)
    }
}

/// What a kind's matcher needs: the modules the script names and the
/// kernel's tick rate.
pub struct Cx<'m> {
    pub modules: &'m mut Modules,
    /// CONFIG_HZ: `timer.profile` and `timer.jiffies` count in it.
    pub hz: u64,
}

/// Why a point gives no site.
#[derive(Debug, Clone)]
pub enum Miss {
    /// It names things that do not exist (`?` makes this silent).
    NoMatch(String),
    /// It cannot be served here (`?` makes this silent too).
    Unserved(String),
    /// Malformed: always an error.
    Invalid(String),
}

impl Miss {
    pub(crate) fn message(&self) -> &str {
        match self {
            Miss::NoMatch(m) | Miss::Unserved(m) | Miss::Invalid(m) => m,
        }
    }
}

type Matcher = fn(&ProbePoint, &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss>;

/// One probe kind: the component names that select it and its matcher.
struct Kind {
    /// The first component(s), for routing and for "did you mean".
    head: &'static [&'static str],
    resolve: Matcher,
}

/// Every probe kind, in the order they are tried.
const KINDS: &[Kind] = &[
    Kind {
        head: &["begin"],
        resolve: special::resolve,
    },
    Kind {
        head: &["end"],
        resolve: special::resolve,
    },
    Kind {
        head: &["error"],
        resolve: special::resolve,
    },
    Kind {
        head: &["never"],
        resolve: special::resolve,
    },
    Kind {
        head: &["timer", "profile"],
        resolve: perf::resolve_profile,
    },
    Kind {
        head: &["timer"],
        resolve: timer::resolve,
    },
    Kind {
        head: &["perf"],
        resolve: perf::resolve,
    },
    Kind {
        head: &["process", "begin"],
        resolve: lifecycle::resolve,
    },
    Kind {
        head: &["process", "end"],
        resolve: lifecycle::resolve,
    },
    Kind {
        head: &["process", "thread"],
        resolve: lifecycle::resolve,
    },
    Kind {
        head: &["process", "syscall"],
        resolve: process_syscall::resolve,
    },
    Kind {
        head: &["process"],
        resolve: process::resolve,
    },
    Kind {
        head: &["kernel", "trace"],
        resolve: trace::resolve,
    },
    Kind {
        head: &["kernel"],
        resolve: unserved::resolve,
    },
    Kind {
        head: &["kprobe"],
        resolve: unserved::resolve,
    },
    Kind {
        head: &["module"],
        resolve: unserved::resolve,
    },
    Kind {
        head: &["procfs"],
        resolve: unserved::resolve,
    },
    Kind {
        head: &["netfilter"],
        resolve: unserved::resolve,
    },
];

fn kind_of(pt: &ProbePoint) -> Option<&'static Kind> {
    KINDS.iter().find(|k| {
        k.head.len() <= pt.components.len()
            && k.head.iter().zip(&pt.components).all(|(h, c)| *h == c.name)
    })
}

/// The probe kinds' names (`timer.profile`, `kernel.trace`, ...).
pub fn kind_names() -> Vec<String> {
    KINDS.iter().map(|k| k.head.join(".")).collect()
}

/// Whether one of our probe kinds serves `pt` (then no probe alias does:
/// the tapset tree's `timer.profile` and `perf.hw.*` aliases name what
/// these kinds serve directly).
pub fn claims(pt: &ProbePoint) -> bool {
    kind_of(pt).is_some()
}

/// The sites of one point; `Ok(empty)` only for an optional point.
pub fn resolve_point(pt: &ProbePoint, cx: &mut Cx<'_>) -> Result<Vec<Site>, Diagnostic> {
    let text = grammar::printer::point(&ProbePoint {
        condition: None,
        optional: false,
        sufficient: false,
        ..pt.clone()
    });
    let result = match kind_of(pt) {
        Some(k) => (k.resolve)(pt, cx),
        None => Err(Miss::NoMatch(unknown_kind(pt))),
    };
    match result {
        Ok(kinds) if kinds.is_empty() && !pt.is_optional() => Err(Diagnostic::error(
            pt.span,
            format!("probe point '{text}' matched nothing"),
        )),
        Ok(kinds) => Ok(kinds
            .into_iter()
            .map(|kind| Site {
                point: text.clone(),
                span: pt.span,
                optional: pt.is_optional(),
                condition: pt.condition.clone(),
                kind,
                alias: None,
            })
            .collect()),
        Err(Miss::NoMatch(_) | Miss::Unserved(_)) if pt.is_optional() => Ok(Vec::new()),
        Err(m) => Err(Diagnostic::error(
            pt.span,
            format!("probe point '{text}': {}", m.message()),
        )),
    }
}

/// No kind starts with these components: name the nearest kinds.
fn unknown_kind(pt: &ProbePoint) -> String {
    let head = pt.components.first().map(|c| c.name.as_str()).unwrap_or("");
    let names: Vec<String> = KINDS.iter().map(|k| k.head.join(".")).collect();
    let nearest = crate::debuginfo::layout::nearest(head, names.iter().map(|s| s.as_str()), 3);
    let mut m = format!("unknown probe kind '{head}'");
    if !nearest.is_empty() {
        let _ = write!(m, " (nearest: {})", nearest.join(", "));
    }
    // Aliases were tried first (resolve/aliases.rs): none has this name.
    m.push_str(", and no probe alias of the script or the tapset library matches it");
    m
}

/// Sites that can share one handler: the same executor and BPF program
/// type, the same point condition and the same guard.
pub fn groups(sites: Vec<Site>) -> Vec<Vec<Site>> {
    let mut out: Vec<Vec<Site>> = Vec::new();
    for s in sites {
        let key = s.prog_kind();
        match out.iter_mut().find(|g| {
            g[0].prog_kind() == key
                && g[0].condition == s.condition
                && g[0].guard() == s.guard()
                && g[0].filter() == s.filter()
        }) {
            Some(g) => g.push(s),
            None => out.push(vec![s]),
        }
    }
    out
}

/// Attach one kernel site to its program.
pub fn attach(site: &Site, prog: &ebpf_backend::Program) -> Result<Vec<Attachment>, String> {
    match &site.kind {
        SiteKind::Perf(p) => perf::attach(p, prog),
        SiteKind::Uprobe(u) => process::attach(u, prog),
        SiteKind::Tracepoint(t) => trace::attach(t, prog),
        _ => Err(format!("'{}' is not a kernel probe", site.point)),
    }
}
