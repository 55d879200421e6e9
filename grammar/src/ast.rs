//! The abstract syntax tree of a stap script, after preprocessing.
//!
//! Every node carries the [`Span`] of the text it came from, so later passes
//! (resolve, lower, the verifier's error mapping) can point at the script line.

use crate::source::{FileId, Span};

/// One parsed file: a script, an `@use` module or a tapset.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub id: FileId,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Probe(Probe),
    Alias(ProbeAlias),
    Function(Function),
    Global(Global),
    /// Top-level `%{ ... %}`: kept so pass 2 can refuse it with a location.
    Embedded(Embedded),
}

/// `probe P1, P2 { body }`
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub points: Vec<ProbePoint>,
    pub body: Block,
    pub private: bool,
    pub span: Span,
}

/// `probe NAME = P1, P2 { prologue }`, `probe NAME += P { epilogue }` or
/// `probe NAME = P { prologue }, { epilogue }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeAlias {
    pub names: Vec<ProbePoint>,
    pub points: Vec<ProbePoint>,
    /// Runs before the body of a probe that uses the alias.
    pub prologue: Option<Block>,
    /// Runs after it.
    pub epilogue: Option<Block>,
    pub private: bool,
    pub span: Span,
}

/// `kernel.function("f").return ?` and the like.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePoint {
    pub components: Vec<Component>,
    /// Trailing `?`: no error when the point cannot be resolved.
    pub optional: bool,
    /// Trailing `!`: when it resolves, the rest of the list is skipped.
    /// As in stap, it is optional too (see [`ProbePoint::is_optional`]).
    pub sufficient: bool,
    /// `if (expr)`: the probe body runs only when it holds.
    pub condition: Option<Expr>,
    pub span: Span,
}

impl ProbePoint {
    /// `?` or `!`: failing to resolve is not an error (stap's `!` means
    /// "optional and sufficient").
    pub fn is_optional(&self) -> bool {
        self.optional || self.sufficient
    }
}

/// One dotted component: a name (maybe with `*` wildcards) and an optional argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub name: String,
    pub arg: Option<Literal>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Number(i64),
    String(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeName {
    Long,
    String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    pub ret: Option<TypeName>,
    pub params: Vec<Param>,
    pub body: FunctionBody,
    pub private: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: Option<TypeName>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FunctionBody {
    Script(Block),
    /// `%{ C %}`: eBPF cannot run C, so pass 2 refuses a call to it.
    Embedded(Embedded),
}

/// `global a, b[100], c = 5, d%`: one declaration per variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    pub name: String,
    /// `[N]`: the maximum number of entries of an array.
    pub size: Option<i64>,
    /// `[...]` was written, even without a size: it is an array.
    pub array: bool,
    /// `%`: when full, the oldest entries are overwritten instead of failing.
    pub wrap: bool,
    pub init: Option<Literal>,
    pub private: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub code: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    Block(Block),
    Expr(Expr),
    If {
        cond: Expr,
        then: Box<Stmt>,
        otherwise: Option<Box<Stmt>>,
    },
    While {
        cond: Expr,
        body: Box<Stmt>,
    },
    For {
        init: Option<Expr>,
        cond: Option<Expr>,
        step: Option<Expr>,
        body: Box<Stmt>,
    },
    Foreach(Box<Foreach>),
    Delete(Expr),
    Next,
    Break,
    Continue,
    Return(Option<Expr>),
    Try {
        body: Block,
        /// `catch (msg)`: the variable that receives the error message.
        var: Option<String>,
        handler: Block,
    },
    /// `%{ ... %}` inside a block (guru mode only in stap).
    Embedded(Embedded),
    /// A lone `;`.
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

/// `foreach (v = [k1+, k2] in arr- limit N) body`
#[derive(Debug, Clone, PartialEq)]
pub struct Foreach {
    pub value: Option<String>,
    pub keys: Vec<ForeachKey>,
    /// An array name, an index slice `arr[*, k]`, or a histogram `@hist_log(s)`.
    pub array: Expr,
    /// Sort on the value (`arr+` / `arr-`).
    pub value_sort: Option<SortDir>,
    /// The aggregate a statistics array's value sort is on (`arr @sum-`:
    /// `sum`; none: stap's default, the count).
    pub value_agg: Option<String>,
    pub limit: Option<Expr>,
    pub body: Stmt,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForeachKey {
    pub name: String,
    pub sort: Option<SortDir>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    BitOr,
    BitXor,
    BitAnd,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    RegexMatch,
    RegexNoMatch,
    Shl,
    Shr,
    Concat,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        use BinOp::*;
        match self {
            Or => "||",
            And => "&&",
            BitOr => "|",
            BitXor => "^",
            BitAnd => "&",
            Eq => "==",
            Ne => "!=",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            RegexMatch => "=~",
            RegexNoMatch => "!~",
            Shl => "<<",
            Shr => ">>",
            Concat => ".",
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Not,
    BitNot,
    Neg,
    Plus,
}

/// `=`, `+=`, ..., `.=` and `<<<` (add a value to a statistic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    Assign,
    Op(BinOp),
    StatAdd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatOp {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    Variance,
    HistLog,
    HistLinear,
}

impl StatOp {
    pub fn from_name(name: &str) -> Option<StatOp> {
        Some(match name {
            "count" => StatOp::Count,
            "sum" => StatOp::Sum,
            "min" => StatOp::Min,
            "max" => StatOp::Max,
            "avg" => StatOp::Avg,
            "variance" => StatOp::Variance,
            "hist_log" => StatOp::HistLog,
            "hist_linear" => StatOp::HistLinear,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            StatOp::Count => "count",
            StatOp::Sum => "sum",
            StatOp::Min => "min",
            StatOp::Max => "max",
            StatOp::Avg => "avg",
            StatOp::Variance => "variance",
            StatOp::HistLog => "hist_log",
            StatOp::HistLinear => "hist_linear",
        }
    }
}

/// One step of a DWARF access chain: `->name` or `[index]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Deref {
    Member { name: String, span: Span },
    Index(Expr),
}

/// A DWARF-typed value: `$var`, `@cast(...)`, `@var(...)`, each with a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct DwarfValue {
    pub base: DwarfBase,
    pub chain: Vec<Deref>,
    /// `$` or `$$` suffix: pretty-print the value as a string (1 or 2 levels).
    pub pretty: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DwarfBase {
    /// `$name` (a target variable) or `$$vars`/`$$parms`/`$$locals`/`$$return`
    /// (then `name` starts with `$`).
    Target(String),
    /// `@cast(addr, "type"[, "module"])`
    Cast {
        addr: Box<Expr>,
        ty: String,
        module: Option<String>,
    },
    /// `@var("name[@file]"[, "module"])`
    Var {
        name: String,
        module: Option<String>,
    },
    /// `expr->member` on a plain expression (stap's autocast): the type
    /// comes from whatever DWARF-typed value the expression holds.
    Autocast(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Number(i64),
    String(String),
    /// A local or global variable name.
    Var(String),
    /// `arr[k1, k2]`; `base` is a variable or a histogram extractor.
    Index {
        base: Box<Expr>,
        keys: Vec<Expr>,
    },
    /// `*` in an index slice: `arr[*, 3]`.
    Wildcard,
    Call {
        name: String,
        args: Vec<Expr>,
    },
    Unary {
        op: UnOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Assign {
        op: AssignOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `++x` / `--x` (`increment`: true for `++`)
    PreCrement {
        increment: bool,
        operand: Box<Expr>,
    },
    /// `x++` / `x--`
    PostCrement {
        increment: bool,
        operand: Box<Expr>,
    },
    /// `k in arr` or `[k1, k2] in arr`
    In {
        keys: Vec<Expr>,
        array: Box<Expr>,
    },
    Dwarf(Box<DwarfValue>),
    /// `&` before a DWARF value: its address, nothing read.
    AddrOf(Box<Expr>),
    /// `@defined(expr)`: decided at pass 2.
    Defined(Box<Expr>),
    /// `@entry(expr)`: evaluated at function entry, used in `.return`.
    Entry(Box<Expr>),
    /// `@perf("name")`
    Perf(String),
    /// `@const("C expression")` (guru mode in stap).
    Const(String),
    /// `@count(x)`, `@hist_linear(x, lo, hi, step)`, ...
    Stat {
        op: StatOp,
        operand: Box<Expr>,
        args: Vec<Expr>,
    },
    /// Any other `@name(args)` builtin (`@kregister`, `@uregister`, `@probewrite`).
    AtCall {
        name: String,
        args: Vec<Expr>,
    },
    /// `%{ C %}` used as a value (guru mode).
    Embedded(String),
}
