//! The typed IR: one tree per probe handler and per function, shared by the
//! eBPF code generator (kernel probes) and the host interpreter (`begin`,
//! `end`, `timer.s`...).
//!
//! It stays a tree, not a control-flow graph, on purpose: the BPF back end
//! turns each loop body into a `bpf_loop` callback, which needs the loop's
//! structure intact. What the tree no longer has: names (variables are slot
//! numbers), untyped operators (string and number comparisons differ), and
//! anything pass 2 resolved away (`@cast`, `@var`, `@defined`).

pub mod builtins;
pub mod gate;
pub mod lower;
pub mod print;
pub mod stats;
pub mod types;

use crate::probes::Site;
pub use builtins::{Builtin, Fault};
use grammar::ast::{SortDir, StatOp};
use grammar::Span;

/// A value type, as stap has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ty {
    Long,
    Str,
    /// An aggregate fed by `<<<` and read by `@count`, `@sum`, ...
    Stats,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Long => "long",
            Ty::Str => "string",
            Ty::Stats => "stats",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GlobalId(pub u32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalId(pub u32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub u32);

#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub globals: Vec<GlobalVar>,
    pub functions: Vec<Function>,
    pub probes: Vec<ProbeHandler>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GlobalVar {
    pub name: String,
    /// The scalar's type, or an array's value type.
    pub ty: Ty,
    /// Key types of an array; empty for a scalar.
    pub keys: Vec<Ty>,
    /// `global a[N]`: the declared size (else MAXMAPENTRIES).
    pub size: Option<i64>,
    pub wrap: bool,
    /// Initial value of a scalar.
    pub init: Option<Const>,
    pub span: Span,
}

impl GlobalVar {
    pub fn is_array(&self) -> bool {
        !self.keys.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    Long(i64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Local {
    pub name: String,
    pub ty: Ty,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    /// Parameters are the first `params` locals.
    pub params: usize,
    pub locals: Vec<Local>,
    /// `None`: returns nothing (stap's "unknown" return type, used as statement).
    pub ret: Option<Ty>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// Where a probe's handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exec {
    /// In the kernel, as BPF (timer.profile, uprobes, tracepoints, perf).
    Kernel,
    /// In stapxx-rs itself (begin, end, error, timer.s/ms/us/hz).
    Host,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeHandler {
    /// Where it runs: pass 2's sites, all of one executor and program type.
    pub sites: Vec<Site>,
    /// `pp()`: the first point as the script wrote it.
    pub pp: String,
    pub exec: Exec,
    pub locals: Vec<Local>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

impl ProbeHandler {
    /// `pn()` of the handler: its first site's (a handler whose body or
    /// functions call `pn()` has sites of one name only, pass 2 saw to it).
    pub fn pn(&self) -> String {
        self.sites.first().map(|s| s.pn()).unwrap_or_default()
    }

    /// The BPF program type of a kernel handler (`None` on the host).
    pub fn prog_kind(&self) -> Option<ebpf_backend::ProgKind> {
        self.sites.first().and_then(|s| s.prog_kind())
    }

    /// What the handler's context holds (registers, kernel samples).
    pub fn context(&self) -> crate::probes::Context {
        self.sites
            .first()
            .map(|s| s.context())
            .unwrap_or(crate::probes::Context {
                regs: false,
                kernel_samples: false,
            })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    Expr(Expr),
    Block(Vec<Stmt>),
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    /// `while` and `for` (init hoisted before it; `step` runs after the body
    /// and after `continue`).
    Loop {
        cond: Option<Expr>,
        body: Vec<Stmt>,
        step: Option<Expr>,
    },
    Foreach(Box<Foreach>),
    /// `delete arr[k]`, `delete arr`, `delete scalar`.
    Delete(Place),
    DeleteArray(GlobalId),
    Next,
    Break,
    Continue,
    Return(Option<Expr>),
    Try {
        body: Vec<Stmt>,
        /// Receives the error message.
        var: Option<LocalId>,
        handler: Vec<Stmt>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Foreach {
    pub array: GlobalId,
    /// Locals that receive each key.
    pub keys: Vec<LocalId>,
    pub value: Option<LocalId>,
    /// Sort by key `i` (`Some((i, dir))`) or by value (`i == usize::MAX`).
    pub sort: Option<(usize, SortDir)>,
    /// For a statistics array sorted by value: the aggregate it sorts on.
    pub sort_agg: SortAgg,
    pub limit: Option<Expr>,
    pub body: Vec<Stmt>,
}

/// What a statistics array's value sort compares (`foreach (k in s @sum-)`);
/// stap's default is the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortAgg {
    #[default]
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

/// Something that can be assigned.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    Local(LocalId),
    Global(GlobalId),
    Elem(GlobalId, Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Shl,
    Shr,
    And,
    Or,
    Xor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Long(i64),
    Str(String),
    Read(Place),
    /// `k in arr`
    Exists(GlobalId, Vec<Expr>),
    Call(FuncId, Vec<Expr>),
    Builtin(Builtin, Vec<Expr>),
    Neg(Box<Expr>),
    BitNot(Box<Expr>),
    Not(Box<Expr>),
    Arith(LongOp, Box<Expr>, Box<Expr>),
    /// Comparison of two longs or of two strings (by `lhs.ty`).
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `=~` (`negate`: `!~`) with a regular expression literal.
    Regex {
        subject: Box<Expr>,
        pattern: String,
        negate: bool,
    },
    Concat(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Assign(Place, Box<Expr>),
    /// `x op= v` for longs.
    AssignOp(Place, LongOp, Box<Expr>),
    /// `s .= v`
    AppendStr(Place, Box<Expr>),
    /// `++x`, `x--`, ...: `delta` is +1/-1, `post` gives the old value.
    Crement {
        place: Place,
        delta: i64,
        post: bool,
    },
    /// `place <<< v`
    StatAdd(Place, Box<Expr>),
    /// `@count(place)` ...; `args` for `@hist_linear(x, lo, hi, step)`.
    StatGet {
        op: StatOp,
        place: Place,
        args: Vec<i64>,
    },
    /// `sprintf`/`printf` with a literal format, checked at compile time.
    Format {
        fmt: String,
        args: Vec<Expr>,
    },
}
