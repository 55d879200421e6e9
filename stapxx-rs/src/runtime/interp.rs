//! The interpreter over IR trees: one probe handler run at a time.
//!
//! Semantics follow stap's generated C:
//!
//! * longs are `int64_t` with wrapping arithmetic; `/` and `%` truncate
//!   toward zero (C), `x / 0` and `x % 0` are the error "division by 0",
//!   `MIN / -1` wraps to `MIN` and `MIN % -1` is 0; shift counts are clamped
//!   to 0..=64 as stap's C does, and then taken modulo 64 as the x86 shift
//!   instructions its compiled `<<`/`>>` execute (so `x << 64` is `x`; C
//!   leaves that case undefined); `>>` is arithmetic;
//! * strings are byte strings of at most `MAXSTRINGLEN - 1` bytes: values
//!   stored in variables, array keys and elements, function arguments and
//!   results, concatenations and `sprintf` results are cut there (string
//!   literals and `printf` output are not);
//! * string comparison is byte-wise;
//! * an error (division by 0, `error()`, empty aggregate, array overflow,
//!   a user-memory fault, MAXNESTING) aborts the handler unless a
//!   `try`/`catch` catches it; the catch variable gets the bare message.
//!   "MAXACTION exceeded" cannot be caught, as in stap;
//! * MAXACTION counts executed statements and loop iterations per handler
//!   run (stap counts per statement block too, so a limit hit may come a
//!   few statements earlier or later than in stap);
//! * `exit()` does not abort the handler: the rest of it runs, then the
//!   session stops (see the session);
//! * `next` leaves the probe handler; inside a function it is stap's
//!   "try the next overload", and with no overloads it is the error
//!   "all functions exhausted".

use super::format::{self, Arg};
use super::host::{self, Host};
use super::output::Output;
use super::textstr::{self, PastEnd};
use super::values::*;
use crate::ir::types::{parse_format, FormatPiece};
use crate::ir::*;
use grammar::ast::{SortDir, StatOp};
use grammar::{Diagnostic, Span};
use regex::bytes::Regex;
use std::cmp::Ordering;
use std::collections::HashMap;

/// The `-D` limits the runtime honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub maxaction: u64,
    pub maxstringlen: usize,
    pub maxmapentries: usize,
    pub maxnesting: usize,
    pub maxerrors: u64,
    /// Frames a backtrace holds at most.
    pub maxbacktrace: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::from_defines(&Default::default())
    }
}

impl Limits {
    /// From `-D NAME=VAL` values (checked on the command line, see
    /// [`crate::limits`]); a missing value keeps the limit's default.
    pub fn from_defines(defines: &std::collections::BTreeMap<String, String>) -> Limits {
        let get = |name: &str| crate::limits::value(defines, name);
        Limits {
            maxaction: get("MAXACTION"),
            maxstringlen: get("MAXSTRINGLEN") as usize,
            maxmapentries: get("MAXMAPENTRIES") as usize,
            maxnesting: get("MAXNESTING") as usize,
            maxerrors: get("MAXERRORS"),
            maxbacktrace: get("MAXBACKTRACE") as usize,
        }
    }
}

/// The size of the kernel's string slots: MAXSTRINGLEN rounded up to a
/// power of two of at least 64 bytes (offsets into a slot are masked with
/// it to keep the BPF verifier's bounds).
pub fn string_slot(maxstringlen: u64) -> u32 {
    (maxstringlen.clamp(64, 1 << 24) as u32).next_power_of_two()
}

/// Where an error happened, for the "near ..." part of its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Near {
    /// The token at the start of this span.
    At(Span),
    /// The operator `op` that follows `after` (a binary operator's token).
    Operator { after: Span, op: &'static str },
}

/// A runtime error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtError {
    pub msg: Vec<u8>,
    pub near: Option<Near>,
    /// `try`/`catch` can catch it (all but MAXACTION).
    pub catchable: bool,
}

impl RtError {
    pub fn new(msg: impl Into<Vec<u8>>, near: Option<Near>) -> RtError {
        RtError {
            msg: msg.into(),
            near,
            catchable: true,
        }
    }
}

type R<T> = Result<T, RtError>;

/// How a statement ended.
enum Flow {
    Normal,
    Break,
    Continue,
    Return(Option<Value>),
    Next,
}

struct Frame {
    locals: Vec<Value>,
}

impl Frame {
    fn new(locals: &[Local]) -> Frame {
        Frame {
            locals: locals.iter().map(|l| Value::zero(l.ty)).collect(),
        }
    }
}

/// A place with its keys evaluated.
enum Loc {
    Local(usize),
    Global(usize),
    Elem(usize, Key),
}

pub struct Interp<'p> {
    pub prog: &'p Program,
    pub globals: Globals,
    pub out: Output,
    pub limits: Limits,
    pub host: Host,
    regexes: HashMap<String, Regex>,
    formats: HashMap<String, Vec<FormatPiece>>,
    /// Statements run by the current handler.
    actions: u64,
    /// Function frames active.
    depth: usize,
    /// `exit()` was called.
    pub exit_requested: bool,
    /// `pp()` of the running handler.
    pub pp: String,
    /// The running handler (its index in the program).
    probe: usize,
    /// `--skip-badvars`: failed user-memory reads give 0 or "".
    pub skip_badvars: bool,
    /// `-v` count, for `__stapxx_verbose()`.
    pub verbose: u8,
    /// Reads `--skip-badvars` turned into 0 or "" (told at the end).
    pub skipped_reads: u64,
    /// `__set_syscall_pt_regs()` of the running handler (`sregs.rs`).
    sregs: u64,
    /// `tokenize()`'s string and where the next token starts (stap keeps
    /// the same per context).
    tokens: (Vec<u8>, usize),
}

impl<'p> Interp<'p> {
    /// Prepare `prog` to run: globals initialised, every regular expression
    /// compiled (a bad one is an error here, before any probe runs).
    pub fn new(
        prog: &'p Program,
        limits: Limits,
        out: Output,
        host: Host,
    ) -> Result<Interp<'p>, Diagnostic> {
        let globals = Globals::new(prog, limits.maxmapentries, limits.maxstringlen)
            .map_err(Diagnostic::bare)?;
        let mut regexes = HashMap::new();
        let mut formats = HashMap::new();
        let mut bad = None;
        let mut visit = |e: &Expr| match &e.kind {
            ExprKind::Regex { pattern, .. } if !regexes.contains_key(pattern) => {
                match compile_regex(pattern) {
                    Ok(r) => {
                        regexes.insert(pattern.clone(), r);
                    }
                    Err(m) => bad = Some(Diagnostic::error(e.span, m)),
                }
            }
            ExprKind::Format { fmt, .. } if !formats.contains_key(fmt) => {
                let pieces =
                    parse_format(fmt).unwrap_or_else(|_| vec![FormatPiece::Text(fmt.clone())]);
                formats.insert(fmt.clone(), pieces);
            }
            _ => {}
        };
        for s in prog
            .functions
            .iter()
            .flat_map(|f| &f.body)
            .chain(prog.probes.iter().flat_map(|p| &p.body))
        {
            print::walk_stmt(s, &mut visit);
        }
        if let Some(d) = bad {
            return Err(d);
        }
        Ok(Interp {
            prog,
            globals,
            out,
            limits,
            host,
            regexes,
            formats,
            actions: 0,
            tokens: (Vec::new(), 0),
            depth: 0,
            exit_requested: false,
            pp: String::new(),
            probe: 0,
            skip_badvars: false,
            verbose: 0,
            skipped_reads: 0,
            sregs: 0,
        })
    }

    /// Run probe handler `probe` once, as point `pp`.
    pub fn run_probe(&mut self, probe: usize, pp: &str) -> Result<(), RtError> {
        let prog = self.prog;
        let Some(p) = prog.probes.get(probe) else {
            return Ok(());
        };
        self.pp = pp.to_string();
        self.probe = probe;
        self.actions = 0;
        self.depth = 0;
        self.sregs = 0;
        let mut frame = Frame::new(&p.locals);
        match self.block(&p.body, &mut frame)? {
            Flow::Normal | Flow::Next | Flow::Return(_) | Flow::Break | Flow::Continue => Ok(()),
        }
    }

    fn clip(&self, v: Value) -> Value {
        match v {
            Value::Str(s) => Value::Str(truncate(s, self.limits.maxstringlen)),
            v => v,
        }
    }

    fn tick(&mut self, span: Span) -> R<()> {
        self.actions += 1;
        if self.actions > self.limits.maxaction {
            return Err(RtError {
                msg: b"MAXACTION exceeded".to_vec(),
                near: Some(Near::At(span)),
                catchable: false,
            });
        }
        Ok(())
    }

    // ------------------------------------------------------------ statements

    fn block(&mut self, stmts: &[Stmt], fr: &mut Frame) -> R<Flow> {
        for s in stmts {
            match self.stmt(s, fr)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn stmt(&mut self, s: &Stmt, fr: &mut Frame) -> R<Flow> {
        self.tick(s.span)?;
        match &s.kind {
            StmtKind::Expr(e) => {
                self.eval(e, fr)?;
                Ok(Flow::Normal)
            }
            StmtKind::Block(b) => self.block(b, fr),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                if self.long(cond, fr)? != 0 {
                    self.block(then, fr)
                } else {
                    self.block(otherwise, fr)
                }
            }
            StmtKind::Loop { cond, body, step } => {
                loop {
                    if let Some(c) = cond {
                        if self.long(c, fr)? == 0 {
                            break;
                        }
                    }
                    // Each iteration counts 1, as in the kernel probes
                    // (codegen/actions.rs).
                    self.tick(s.span)?;
                    match self.block(body, fr)? {
                        Flow::Break => break,
                        Flow::Normal | Flow::Continue => {}
                        other => return Ok(other),
                    }
                    if let Some(st) = step {
                        self.eval(st, fr)?;
                    }
                }
                Ok(Flow::Normal)
            }
            StmtKind::Foreach(f) => self.foreach(f, s.span, fr),
            StmtKind::Delete(place) => {
                match self.loc(place, fr)? {
                    Loc::Local(l) => {
                        let ty = self.local_ty(fr, l);
                        if let Some(v) = fr.locals.get_mut(l) {
                            *v = Value::zero(ty);
                        }
                    }
                    Loc::Global(g) => {
                        let spec = self.globals.specs.get(g).cloned().unwrap_or_default();
                        let ty = self.prog.globals.get(g).map(|v| v.ty).unwrap_or(Ty::Long);
                        match self.globals.stores.get_mut(g) {
                            Some(Store::Scalar(v)) => *v = Value::zero(ty),
                            Some(Store::Stat(st)) => *st = Stat::new(&spec),
                            Some(Store::Array(a)) => a.clear(),
                            Some(Store::StatArray(a)) => a.clear(),
                            None => {}
                        }
                    }
                    Loc::Elem(g, key) => match self.globals.stores.get_mut(g) {
                        Some(Store::Array(a)) => a.remove(&key),
                        Some(Store::StatArray(a)) => a.remove(&key),
                        _ => {}
                    },
                }
                Ok(Flow::Normal)
            }
            StmtKind::DeleteArray(g) => {
                match self.globals.stores.get_mut(g.0 as usize) {
                    Some(Store::Array(a)) => a.clear(),
                    Some(Store::StatArray(a)) => a.clear(),
                    _ => {}
                }
                Ok(Flow::Normal)
            }
            StmtKind::Next => Ok(Flow::Next),
            StmtKind::Break => Ok(Flow::Break),
            StmtKind::Continue => Ok(Flow::Continue),
            StmtKind::Return(e) => {
                let v = match e {
                    Some(e) => Some(self.eval(e, fr)?),
                    None => None,
                };
                Ok(Flow::Return(v))
            }
            StmtKind::Try { body, var, handler } => match self.block(body, fr) {
                Ok(flow) => Ok(flow),
                Err(e) if e.catchable => {
                    if let Some(v) = var {
                        let msg = self.clip(Value::Str(e.msg));
                        if let Some(slot) = fr.locals.get_mut(v.0 as usize) {
                            *slot = msg;
                        }
                    }
                    self.block(handler, fr)
                }
                Err(e) => Err(e),
            },
        }
    }

    fn local_ty(&self, fr: &Frame, l: usize) -> Ty {
        match fr.locals.get(l) {
            Some(Value::Str(_)) => Ty::Str,
            _ => Ty::Long,
        }
    }

    fn foreach(&mut self, f: &Foreach, span: Span, fr: &mut Frame) -> R<Flow> {
        let g = f.array.0 as usize;
        let spec = self.globals.specs.get(g).cloned().unwrap_or_default();
        // A snapshot: (key, value, sort value).
        let mut rows: Vec<(Key, Value, Value)> = match self.globals.stores.get(g) {
            Some(Store::Array(a)) => a
                .iter()
                .map(|(k, v)| (k.clone(), v.clone(), v.clone()))
                .collect(),
            Some(Store::StatArray(a)) => a
                .iter()
                .map(|(k, s)| {
                    let agg = s.aggregate(&spec);
                    let by = match f.sort_agg {
                        SortAgg::Count => agg.count,
                        SortAgg::Sum => agg.sum,
                        SortAgg::Min => agg.min,
                        SortAgg::Max => agg.max,
                        SortAgg::Avg if agg.count > 0 => agg.sum / agg.count,
                        SortAgg::Avg => 0,
                    };
                    (k.clone(), Value::Long(agg.count), Value::Long(by))
                })
                .collect(),
            _ => Vec::new(),
        };
        if let Some((col, dir)) = f.sort {
            let key_of = |r: &(Key, Value, Value)| -> Value {
                if col == usize::MAX {
                    r.2.clone()
                } else {
                    r.0.get(col).cloned().unwrap_or(Value::Long(0))
                }
            };
            rows.sort_by(|a, b| {
                let o = compare(&key_of(a), &key_of(b));
                match dir {
                    SortDir::Asc => o,
                    SortDir::Desc => o.reverse(),
                }
            });
        }
        let limit = match &f.limit {
            Some(l) => self.long(l, fr)?.max(0) as u64,
            None => u64::MAX,
        };
        for (i, (key, val, _)) in rows.into_iter().enumerate() {
            if i as u64 >= limit {
                break;
            }
            self.tick(span)?;
            for (local, k) in f.keys.iter().zip(key) {
                if let Some(slot) = fr.locals.get_mut(local.0 as usize) {
                    *slot = k;
                }
            }
            if let Some(v) = f.value {
                if let Some(slot) = fr.locals.get_mut(v.0 as usize) {
                    *slot = val;
                }
            }
            match self.block(&f.body, fr)? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    // ------------------------------------------------------------ places

    fn keys(&mut self, ks: &[Expr], fr: &mut Frame) -> R<Key> {
        let mut key = Vec::with_capacity(ks.len());
        for k in ks {
            let v = self.eval(k, fr)?;
            key.push(self.clip(v));
        }
        Ok(key)
    }

    fn loc(&mut self, p: &Place, fr: &mut Frame) -> R<Loc> {
        Ok(match p {
            Place::Local(l) => Loc::Local(l.0 as usize),
            Place::Global(g) => Loc::Global(g.0 as usize),
            Place::Elem(g, ks) => Loc::Elem(g.0 as usize, self.keys(ks, fr)?),
        })
    }

    fn load(&self, l: &Loc, fr: &Frame) -> Value {
        match l {
            Loc::Local(i) => fr.locals.get(*i).cloned().unwrap_or(Value::Long(0)),
            Loc::Global(g) => match self.globals.stores.get(*g) {
                Some(Store::Scalar(v)) => v.clone(),
                _ => Value::Long(0),
            },
            Loc::Elem(g, key) => match self.globals.stores.get(*g) {
                Some(Store::Array(a)) => match a.get(key) {
                    Some(v) => v.clone(),
                    None => {
                        Value::zero(self.prog.globals.get(*g).map(|v| v.ty).unwrap_or(Ty::Long))
                    }
                },
                _ => Value::Long(0),
            },
        }
    }

    fn store(&mut self, l: Loc, v: Value, fr: &mut Frame, span: Span) -> R<Value> {
        let v = self.clip(v);
        match l {
            Loc::Local(i) => {
                if let Some(slot) = fr.locals.get_mut(i) {
                    *slot = v.clone();
                }
            }
            Loc::Global(g) => {
                if let Some(Store::Scalar(slot)) = self.globals.stores.get_mut(g) {
                    *slot = v.clone();
                }
            }
            Loc::Elem(g, key) => {
                let msg = self.globals.overflow_message(GlobalId(g as u32));
                if let Some(Store::Array(a)) = self.globals.stores.get_mut(g) {
                    if a.set(key, v.clone()).is_err() {
                        return Err(RtError::new(msg, Some(Near::At(span))));
                    }
                }
            }
        }
        Ok(v)
    }

    /// The statistic a place names (created for an array element if
    /// `create`; `None` for a missing element otherwise).
    fn stat(&mut self, l: &Loc, create: bool, span: Span) -> R<Option<&mut Stat>> {
        let g = match l {
            Loc::Global(g) | Loc::Elem(g, _) => *g,
            Loc::Local(_) => return Ok(None),
        };
        let spec = self.globals.specs.get(g).cloned().unwrap_or_default();
        let msg = self.globals.overflow_message(GlobalId(g as u32));
        match (self.globals.stores.get_mut(g), l) {
            (Some(Store::Stat(s)), _) => Ok(Some(s)),
            (Some(Store::StatArray(a)), Loc::Elem(_, key)) => {
                if create {
                    match a.entry(key.clone(), || Stat::new(&spec)) {
                        Ok(s) => Ok(Some(s)),
                        Err(_) => Err(RtError::new(msg, Some(Near::At(span)))),
                    }
                } else if a.contains(key) {
                    Ok(a.entry(key.clone(), || Stat::new(&spec)).ok())
                } else {
                    Ok(None)
                }
            }
            _ => Ok(None),
        }
    }

    // ------------------------------------------------------------ expressions

    fn long(&mut self, e: &Expr, fr: &mut Frame) -> R<i64> {
        Ok(self.eval(e, fr)?.as_long())
    }

    fn bytes(&mut self, e: &Expr, fr: &mut Frame) -> R<Vec<u8>> {
        Ok(match self.eval(e, fr)? {
            Value::Str(s) => s,
            Value::Long(n) => n.to_string().into_bytes(),
        })
    }

    fn eval(&mut self, e: &Expr, fr: &mut Frame) -> R<Value> {
        Ok(match &e.kind {
            ExprKind::Long(n) => Value::Long(*n),
            ExprKind::Str(s) => Value::Str(grammar::bytes::literal_bytes(s)),
            ExprKind::Read(p) => {
                let l = self.loc(p, fr)?;
                self.load(&l, fr)
            }
            ExprKind::Exists(g, ks) => {
                let key = self.keys(ks, fr)?;
                let found = match self.globals.stores.get(g.0 as usize) {
                    Some(Store::Array(a)) => a.contains(&key),
                    Some(Store::StatArray(a)) => a.contains(&key),
                    _ => false,
                };
                Value::Long(found as i64)
            }
            ExprKind::Call(f, args) => self.call(*f, args, fr, e.span)?,
            ExprKind::Builtin(b, args) => self.builtin(*b, args, fr, e.span)?,
            ExprKind::Neg(a) => Value::Long(self.long(a, fr)?.wrapping_neg()),
            ExprKind::BitNot(a) => Value::Long(!self.long(a, fr)?),
            ExprKind::Not(a) => Value::Long((self.long(a, fr)? == 0) as i64),
            ExprKind::Arith(op, a, b) => {
                let x = self.long(a, fr)?;
                let y = self.long(b, fr)?;
                Value::Long(arith(*op, x, y).map_err(|m| {
                    RtError::new(
                        m,
                        Some(Near::Operator {
                            after: a.span,
                            op: op_text(*op),
                        }),
                    )
                })?)
            }
            ExprKind::Cmp(op, a, b) => {
                let ord = if a.ty == Ty::Str {
                    let x = self.bytes(a, fr)?;
                    let y = self.bytes(b, fr)?;
                    c_str(&x).cmp(c_str(&y))
                } else {
                    let x = self.long(a, fr)?;
                    let y = self.long(b, fr)?;
                    x.cmp(&y)
                };
                let r = match op {
                    CmpOp::Eq => ord == Ordering::Equal,
                    CmpOp::Ne => ord != Ordering::Equal,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                };
                Value::Long(r as i64)
            }
            ExprKind::Regex {
                subject,
                pattern,
                negate,
            } => {
                let s = self.bytes(subject, fr)?;
                let m = match self.regexes.get(pattern) {
                    Some(r) => r.is_match(c_str(&s)),
                    None => false,
                };
                Value::Long((m != *negate) as i64)
            }
            ExprKind::Concat(a, b) => {
                let mut x = self.bytes(a, fr)?;
                let y = self.bytes(b, fr)?;
                x.truncate(c_str(&x).len());
                x.extend_from_slice(&y);
                self.clip(Value::Str(x))
            }
            ExprKind::And(a, b) => {
                let r = self.long(a, fr)? != 0 && self.long(b, fr)? != 0;
                Value::Long(r as i64)
            }
            ExprKind::Or(a, b) => {
                let r = self.long(a, fr)? != 0 || self.long(b, fr)? != 0;
                Value::Long(r as i64)
            }
            ExprKind::Cond(c, a, b) => {
                if self.long(c, fr)? != 0 {
                    self.eval(a, fr)?
                } else {
                    self.eval(b, fr)?
                }
            }
            ExprKind::Assign(p, v) => {
                let l = self.loc(p, fr)?;
                let v = self.eval(v, fr)?;
                self.store(l, v, fr, e.span)?
            }
            ExprKind::AssignOp(p, op, v) => {
                let l = self.loc(p, fr)?;
                let y = self.long(v, fr)?;
                let x = self.load(&l, fr).as_long();
                let r = arith(*op, x, y).map_err(|m| {
                    RtError::new(
                        m,
                        Some(Near::Operator {
                            after: place_span(p).unwrap_or(Span {
                                end: e.span.start,
                                ..e.span
                            }),
                            op: assign_op_text(*op),
                        }),
                    )
                })?;
                self.store(l, Value::Long(r), fr, e.span)?
            }
            ExprKind::AppendStr(p, v) => {
                let l = self.loc(p, fr)?;
                let y = self.bytes(v, fr)?;
                let mut x = self.load(&l, fr).into_bytes();
                x.extend_from_slice(&y);
                self.store(l, Value::Str(x), fr, e.span)?
            }
            ExprKind::Crement { place, delta, post } => {
                let l = self.loc(place, fr)?;
                let old = self.load(&l, fr).as_long();
                let new = old.wrapping_add(*delta);
                self.store(l, Value::Long(new), fr, e.span)?;
                Value::Long(if *post { old } else { new })
            }
            ExprKind::StatAdd(p, v) => {
                let l = self.loc(p, fr)?;
                let val = self.long(v, fr)?;
                let g = match &l {
                    Loc::Global(g) | Loc::Elem(g, _) => *g,
                    Loc::Local(_) => 0,
                };
                let spec = self.globals.specs.get(g).cloned().unwrap_or_default();
                if let Some(s) = self.stat(&l, true, e.span)? {
                    s.add(&spec, val);
                }
                Value::Long(val)
            }
            ExprKind::StatGet { op, place, args } => self.stat_get(*op, place, args, fr, e.span)?,
            ExprKind::Format { fmt, args } => {
                let out = self.format(fmt, args, fr)?;
                self.clip(Value::Str(out))
            }
        })
    }

    fn stat_get(
        &mut self,
        op: StatOp,
        place: &Place,
        args: &[i64],
        fr: &mut Frame,
        span: Span,
    ) -> R<Value> {
        let l = self.loc(place, fr)?;
        let g = match &l {
            Loc::Global(g) | Loc::Elem(g, _) => *g,
            Loc::Local(_) => 0,
        };
        let spec = self.globals.specs.get(g).cloned().unwrap_or_default();
        let empty = || RtError::new("empty aggregate", Some(Near::At(span)));
        if let StatOp::HistLog | StatOp::HistLinear = op {
            let linear = match (op, args) {
                (StatOp::HistLinear, [a, b, c]) => {
                    let lin = Linear::new(*a, *b, *c)
                        .map_err(|m| RtError::new(m, Some(Near::At(span))))?;
                    let idx = spec.linear.iter().position(|x| *x == lin).unwrap_or(0);
                    Some((idx, lin))
                }
                _ => None,
            };
            let agg = match self.stat(&l, false, span)? {
                Some(s) => s.aggregate(&spec),
                None => return Err(empty()),
            };
            return match format::histogram_of(&agg, linear) {
                Some(text) if agg.count > 0 => Ok(Value::Str(text.into_bytes())),
                _ => Err(empty()),
            };
        }
        let v = match self.stat(&l, false, span)? {
            Some(s) => s.get(&spec, op),
            None => Stat::new(&spec).get(&spec, op),
        };
        v.map(Value::Long).ok_or_else(empty)
    }

    fn format(&mut self, fmt: &str, args: &[Expr], fr: &mut Frame) -> R<Vec<u8>> {
        let mut vals = Vec::with_capacity(args.len());
        for a in args {
            vals.push(self.eval(a, fr)?);
        }
        let argv: Vec<Arg> = vals
            .iter()
            .map(|v| match v {
                Value::Long(n) => Arg::Long(*n),
                Value::Str(s) => Arg::Str(s),
            })
            .collect();
        Ok(match self.formats.get(fmt) {
            Some(p) => format::format(p, &argv),
            None => match parse_format(fmt) {
                Ok(p) => format::format(&p, &argv),
                Err(_) => fmt.as_bytes().to_vec(),
            },
        })
    }

    fn call(&mut self, f: FuncId, args: &[Expr], fr: &mut Frame, span: Span) -> R<Value> {
        let prog = self.prog;
        let Some(func) = prog.functions.get(f.0 as usize) else {
            return Ok(Value::Long(0));
        };
        let mut frame = Frame::new(&func.locals);
        for (i, a) in args.iter().enumerate() {
            let v = self.eval(a, fr)?;
            let v = self.clip(v);
            if let Some(slot) = frame.locals.get_mut(i) {
                *slot = v;
            }
        }
        if self.depth >= self.limits.maxnesting {
            return Err(RtError::new("MAXNESTING exceeded", Some(Near::At(span))));
        }
        self.depth += 1;
        let r = self.block(&func.body, &mut frame);
        self.depth -= 1;
        let zero = Value::zero(func.ret.unwrap_or(Ty::Long));
        match r? {
            Flow::Return(Some(v)) => Ok(self.clip(v)),
            Flow::Next => Err(RtError::new(
                "all functions exhausted",
                Some(Near::At(span)),
            )),
            _ => Ok(zero),
        }
    }

    /// Print one value as `print` does.
    fn print_value(&mut self, e: &Expr, fr: &mut Frame) -> R<()> {
        // printf's text is not cut at MAXSTRINGLEN (and may hold NUL bytes).
        let bytes = match &e.kind {
            ExprKind::Format { fmt, args } => self.format(fmt, args, fr)?,
            _ => match self.eval(e, fr)? {
                Value::Long(n) => n.to_string().into_bytes(),
                Value::Str(s) => s,
            },
        };
        self.out.print(&bytes);
        Ok(())
    }

    fn builtin(&mut self, b: Builtin, args: &[Expr], fr: &mut Frame, span: Span) -> R<Value> {
        use Builtin as B;
        let near = Some(Near::At(span));
        let s = |v: Vec<u8>| Ok(Value::Str(v));
        let n = |v: i64| Ok(Value::Long(v));
        match b {
            B::Print | B::Println => {
                for a in args {
                    self.print_value(a, fr)?;
                }
                if b == B::Println {
                    self.out.print(b"\n");
                }
                n(0)
            }
            B::Printd | B::Printdln => {
                let delim = match args.first() {
                    Some(d) => self.bytes(d, fr)?,
                    None => Vec::new(),
                };
                for (i, a) in args.iter().skip(1).enumerate() {
                    if i > 0 {
                        self.out.print(&delim);
                    }
                    self.print_value(a, fr)?;
                }
                if b == B::Printdln {
                    self.out.print(b"\n");
                }
                n(0)
            }
            B::Warn => {
                let m = self.arg_bytes(args, 0, fr)?;
                self.out.warn(c_str(&m));
                n(0)
            }
            B::System => {
                let m = self.arg_bytes(args, 0, fr)?;
                self.out.system(&String::from_utf8_lossy(c_str(&m)));
                n(0)
            }
            B::Error => {
                let m = self.arg_bytes(args, 0, fr)?;
                let m = truncate(m, self.limits.maxstringlen);
                let m = if m.is_empty() {
                    b"Unknown error.".to_vec()
                } else {
                    m
                };
                Err(RtError::new(m, None))
            }
            B::Exit => {
                self.exit_requested = true;
                n(0)
            }
            B::Pid => n(i64::from(std::process::id())),
            B::Tid => n(host::tid()),
            B::Ppid => n(host::ppid()),
            B::Uid => n(host::uid()),
            B::Gid => n(host::id(1)),
            B::Cpu => n(host::cpu()),
            B::Execname => s(self.host.execname()),
            B::Target => n(self.host.target.map(i64::from).unwrap_or(0)),
            B::UserMode | B::Addr | B::Uaddr => n(0),
            B::Probefunc => s(Vec::new()),
            B::Pp => s(self.pp.clone().into_bytes()),
            B::Ppfunc => s(crate::ir::builtins::ppfunc_of(&self.pp).as_bytes().to_vec()),
            B::Pn => s(self
                .prog
                .probes
                .get(self.probe)
                .map(|p| p.pn())
                .unwrap_or_default()
                .into_bytes()),
            B::GettimeofdayS => n(host::realtime_ns() / 1_000_000_000),
            B::GettimeofdayMs => n(host::realtime_ns() / 1_000_000),
            B::GettimeofdayUs => n(host::realtime_ns() / 1_000),
            B::GettimeofdayNs => n(host::realtime_ns()),
            B::LocalClockNs => n(host::monotonic_ns()),
            B::LocalClockUs => n(host::monotonic_ns() / 1_000),
            B::LocalClockMs => n(host::monotonic_ns() / 1_000_000),
            B::LocalClockS => n(host::monotonic_ns() / 1_000_000_000),
            B::Jiffies => n(host::monotonic_ns() / (1_000_000_000 / host::hz().max(1))),
            B::Usymname => {
                let a = self.arg_long(args, 0, fr)?;
                s(self.host.usymname(a))
            }
            // A begin/end/timer probe interrupted no user code: no stack.
            B::Ubacktrace | B::UbacktraceFrom | B::Ucallers | B::SprintUbacktrace => {
                s(Vec::new())
            }
            B::PrintUbacktrace(_) => n(0),
            B::PrintUstack => {
                let stack = c_str(&self.arg_bytes(args, 0, fr)?).to_vec();
                let text = super::ustack::format(
                    &mut self.host,
                    super::ustack::Style::Usyms,
                    &String::from_utf8_lossy(&stack),
                );
                self.out.print(text.as_bytes());
                n(0)
            }
            B::SprintUstack => {
                let stack = c_str(&self.arg_bytes(args, 0, fr)?).to_vec();
                let max = self.limits.maxstringlen;
                s(super::ustack::sprint(&mut self.host, &String::from_utf8_lossy(&stack), max).into_bytes())
            }
            B::Usymdata => {
                let a = self.arg_long(args, 0, fr)? as u64;
                let info = self.host.addr_info(a);
                s(super::ustack::symdata(a, &info).into_bytes())
            }
            B::Umodname => {
                let a = self.arg_long(args, 0, fr)?;
                s(self.host.umodname(a))
            }
            B::Symname => {
                let a = self.arg_long(args, 0, fr)?;
                s(crate::ksyms::symname(a as u64).into_bytes())
            }
            // A begin/end/timer probe interrupted no user code.
            B::URegister | B::Returnval => Err(RtError::new(
                "registers are only available in uprobe and perf probes",
                near,
            )),
            // stapxx-rs itself cannot read kernel memory: only its eBPF
            // programs can.
            B::KernelRead(..)
            | B::KernelString
            | B::KernelStringN
            | B::KernelStringQuoted => Err(RtError::new(
                "kernel memory can only be read in kernel probes (not in begin, end or timer.s/ms)",
                near,
            )),
            B::TaskCurrent => Err(RtError::new(
                "task_current() is the address of a kernel task: only kernel probes have one",
                near,
            )),
            B::Context => Err(RtError::new(
                "a probe context exists only in kernel probes",
                near,
            )),
            B::SetSyscallRegs
            | B::SyscallNr
            | B::SyscallArg
            | B::IsCompatTask
            | B::Probing32bitApp
            | B::IntCast(..) => {
                let mut v = Vec::new();
                for a in args {
                    v.push(self.long(a, fr)?);
                }
                super::sregs::host(b, &v, &mut self.sregs).map_err(|m| RtError::new(m, near))
            }
            B::ModuleBias => {
                let path = self.arg_bytes(args, 0, fr)?;
                let path = String::from_utf8_lossy(c_str(&path)).into_owned();
                match self.host.module_bias(&path) {
                    Ok(b) => n(b),
                    Err(m) => Err(RtError::new(m, near)),
                }
            }
            B::UserString | B::UserStringN | B::UserStringWarn | B::UserStringNWarn => {
                let addr = self.arg_long(args, 0, fr)?;
                let with_n = matches!(b, B::UserStringN | B::UserStringNWarn);
                let max = self.limits.maxstringlen.saturating_sub(1);
                let max = if with_n {
                    (self.arg_long(args, 1, fr)?.max(0) as u64).min(max as u64) as usize
                } else {
                    max
                };
                let err_idx = if with_n { 2 } else { 1 };
                let err_msg = match args.get(err_idx) {
                    Some(e) => Some(self.bytes(e, fr)?),
                    None => None,
                };
                let warn = matches!(b, B::UserStringWarn | B::UserStringNWarn);
                match self.host.read_string(addr as u64, max) {
                    Ok(Some(v)) => s(v),
                    Ok(None) => {
                        let msg = format!(
                            "user string copy fault -14 at {:#x} [man error::fault]",
                            addr as u64
                        );
                        if warn {
                            self.out.warn(msg.as_bytes());
                            s(err_msg.unwrap_or_else(|| b"<unknown>".to_vec()))
                        } else if let Some(m) = err_msg {
                            s(m)
                        } else {
                            self.bad_read(msg, Value::Str(Vec::new()), near)
                        }
                    }
                    Err(m) => self.bad_read(m, Value::Str(Vec::new()), near),
                }
            }
            B::StringQuoted => {
                let v = self.arg_bytes(args, 0, fr)?;
                let q = textstr::text_str(c_str(&v), PastEnd::Nul, 0, 0, self.limits.maxstringlen, false);
                s(q.unwrap_or_default())
            }
            B::SprintLoadavg => {
                let avgs = host::loadavg().map_err(|m| RtError::new(m.into_bytes(), None))?;
                s(format!("{} {} {}\n", avgs[0], avgs[1], avgs[2]).into_bytes())
            }
            B::GetLoadavgIndex => {
                let i = self.arg_long(args, 0, fr)?;
                if !(0..=2).contains(&i) {
                    return Err(RtError::new(
                        format!("Invalid loadavg index {i} specified.").into_bytes(),
                        None,
                    ));
                }
                let avgs = host::loadavg().map_err(|m| RtError::new(m.into_bytes(), None))?;
                let whole = avgs[i as usize].split('.').next().unwrap_or("0");
                n(whole.parse().unwrap_or(0))
            }
            B::TextStr => {
                let v = self.arg_bytes(args, 0, fr)?;
                s(textstr::escaped(c_str(&v), 0, false, self.limits.maxstringlen))
            }
            B::TextStrn => {
                let v = self.arg_bytes(args, 0, fr)?;
                let max = self.limits.maxstringlen;
                // The length as stap clamps it, to [0, MAXSTRINGLEN].
                let len = self.arg_long(args, 1, fr)?.clamp(0, max as i64) as i32;
                let quoted = self.arg_long(args, 2, fr)? != 0;
                s(textstr::escaped(c_str(&v), len, quoted, max))
            }
            B::UserStringQuoted => {
                // The tree's `string_quoted(user_string(addr))`, or the
                // address in hex when the read faults.
                let addr = self.arg_long(args, 0, fr)?;
                let max = self.limits.maxstringlen;
                match self.host.read_string(addr as u64, max.saturating_sub(1)) {
                    Ok(Some(v)) => {
                        let q = textstr::text_str(&v, PastEnd::Nul, 0, 0, max, false);
                        s(q.unwrap_or_default())
                    }
                    Ok(None) => s(format!("0x{:x}", addr as u64).into_bytes()),
                    Err(m) => self.bad_read(m, Value::Str(Vec::new()), near),
                }
            }
            B::UserBufferQuoted(error) => {
                let addr = self.arg_long(args, 0, fr)?;
                let inlen = self.arg_long(args, 1, fr)?;
                let max = self.limits.maxstringlen;
                let outlen = textstr::buffer_outlen(self.arg_long(args, 2, fr)?, max);
                let quoted = if outlen == 0 {
                    None
                } else {
                    let want = textstr::buffer_read_len(inlen, outlen, max);
                    let bytes = match self.host.read_bytes(addr as u64, want) {
                        Ok(v) => v,
                        Err(m) => return self.bad_read(m, Value::Str(Vec::new()), near),
                    };
                    textstr::text_str(&bytes, PastEnd::Fault, inlen as i32, outlen, max, true)
                };
                match quoted {
                    Some(q) => s(q),
                    None if !error && outlen == 0 => s(Vec::new()),
                    None if !error => s(textstr::fault_text(addr, outlen)),
                    None => {
                        let msg = format!(
                            "Unable to access user space data at {:#x}",
                            addr as u64
                        );
                        self.bad_read(msg, Value::Str(Vec::new()), near)
                    }
                }
            }
            B::UserInt8(fault)
            | B::UserUint8(fault)
            | B::UserInt16(fault)
            | B::UserUint16(fault)
            | B::UserInt32(fault)
            | B::UserUint32(fault)
            | B::UserInt64(fault)
            | B::UserUint64(fault) => {
                let addr = self.arg_long(args, 0, fr)?;
                let (size, signed, name) = match b {
                    B::UserInt8(_) => (1, true, "char"),
                    B::UserUint8(_) => (1, false, "uint8"),
                    B::UserInt16(_) => (2, true, "short"),
                    B::UserUint16(_) => (2, false, "ushort"),
                    B::UserInt32(_) => (4, true, "int"),
                    B::UserUint32(_) => (4, false, "uint32"),
                    B::UserInt64(_) => (8, true, "long"),
                    _ => (8, false, "uint64"),
                };
                let mut buf = [0u8; 8];
                match self.host.read(addr as u64, &mut buf[..size]) {
                    Ok(true) => {
                        let raw = u64::from_le_bytes(buf);
                        let v = match (size, signed) {
                            (1, true) => raw as u8 as i8 as i64,
                            (1, false) => raw as u8 as i64,
                            (2, true) => raw as u16 as i16 as i64,
                            (2, false) => raw as u16 as i64,
                            (4, true) => raw as u32 as i32 as i64,
                            (4, false) => raw as u32 as i64,
                            _ => raw as i64,
                        };
                        n(v)
                    }
                    // user_long and friends give 0; _warn warns; _error
                    // (and target-variable reads) is a probe error.
                    Ok(false) => {
                        let m = format!(
                            "user {name} copy fault {:#x} [man error::fault]",
                            addr as u64
                        );
                        match fault {
                            Fault::Error => self.bad_read(m, Value::Long(0), near),
                            Fault::Warn => {
                                self.out.warn(m.as_bytes());
                                n(0)
                            }
                            Fault::Zero => n(0),
                        }
                    }
                    Err(m) if fault == Fault::Error => self.bad_read(m, Value::Long(0), near),
                    Err(_) => n(0),
                }
            }
            // A host probe interrupted no kernel code either.
            B::Backtrace | B::SprintBacktrace => s(Vec::new()),
            B::PrintBacktrace => n(0),
            B::PrintStack => {
                let stack = c_str(&self.arg_bytes(args, 0, fr)?).to_vec();
                let text = super::ustack::format_kernel(
                    super::ustack::Style::Usyms,
                    &String::from_utf8_lossy(&stack),
                );
                self.out.print(text.as_bytes());
                n(0)
            }
            B::SprintStack => {
                let stack = c_str(&self.arg_bytes(args, 0, fr)?).to_vec();
                let max = self.limits.maxstringlen;
                s(super::ustack::sprint_kernel(&String::from_utf8_lossy(&stack), max).into_bytes())
            }
            B::Symdata => {
                let a = self.arg_long(args, 0, fr)? as u64;
                s(super::ustack::symdata(a, &super::ustack::kernel_info(a)).into_bytes())
            }
            B::Tokenize => {
                let input = c_str(&self.arg_bytes(args, 0, fr)?).to_vec();
                let delim = c_str(&self.arg_bytes(args, 1, fr)?).to_vec();
                if !input.is_empty() {
                    self.tokens = (input, 0);
                }
                s(next_token(&mut self.tokens, &delim))
            }
            B::Strlen => {
                let v = self.arg_bytes(args, 0, fr)?;
                n(c_str(&v).len() as i64)
            }
            B::Substr => {
                let v = self.arg_bytes(args, 0, fr)?;
                let start = self.arg_long(args, 1, fr)?;
                let len = self.arg_long(args, 2, fr)?;
                let v = c_str(&v);
                let max = (self.limits.maxstringlen.saturating_sub(1)) as i64;
                let len = len.clamp(0, max) as usize;
                if start < 0 || start as usize >= v.len() {
                    return s(Vec::new());
                }
                let rest = &v[start as usize..];
                s(rest[..len.min(rest.len())].to_vec())
            }
            B::Isinstr => {
                let hay = self.arg_bytes(args, 0, fr)?;
                let needle = self.arg_bytes(args, 1, fr)?;
                let (hay, needle) = (c_str(&hay), c_str(&needle));
                let found = needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle);
                n(found as i64)
            }
            B::Strtol => {
                let v = self.arg_bytes(args, 0, fr)?;
                let base = self.arg_long(args, 1, fr)?;
                n(strtol(c_str(&v), base))
            }
            B::StringOf => {
                let v = self.arg_long(args, 0, fr)?;
                s(v.to_string().into_bytes())
            }
            B::StrReplace => {
                let text = self.arg_bytes(args, 0, fr)?;
                let old = self.arg_bytes(args, 1, fr)?;
                let new = self.arg_bytes(args, 2, fr)?;
                s(replace_all(c_str(&text), c_str(&old), c_str(&new)))
            }
            B::MemPageSize => n(crate::system::page_size() as i64),
            B::OnHost => n(1),
            B::Verbose => n(self.verbose as i64),
            B::PidnsInum => n(crate::task_info::pid_ns_inum()),
            B::HostId => n(host::id(self.arg_long(args, 0, fr)?)),
            B::TzGmtoff => n(host::timezone().0),
            B::TzName => s(host::timezone().1.clone().into_bytes()),
            B::RandomU32 => n(host::random_u32()),
            B::ProcComm => {
                let pid = self.arg_long(args, 0, fr)?;
                s(crate::task_info::proc_comm(pid))
            }
            B::Abs => n(self.arg_long(args, 0, fr)?.wrapping_abs()),
            B::Min => {
                let a = self.arg_long(args, 0, fr)?;
                let c = self.arg_long(args, 1, fr)?;
                n(a.min(c))
            }
            B::Max => {
                let a = self.arg_long(args, 0, fr)?;
                let c = self.arg_long(args, 1, fr)?;
                n(a.max(c))
            }
            B::ErrnoStr | B::ErrnoP | B::LookupStr | B::LookupOrStr => {
                let v = self.arg_long(args, 0, fr)?;
                let base = self.arg_long(args, 1, fr)?;
                let table = self.arg_bytes(args, 2, fr)?;
                super::lookup::call(b, v, base, c_str(&table), near)
            }
        }
    }

    /// A failed read: an error, or (with --skip-badvars) `fallback`.
    fn bad_read(&mut self, msg: String, fallback: Value, near: Option<Near>) -> R<Value> {
        if self.skip_badvars {
            self.skipped_reads += 1;
            Ok(fallback)
        } else {
            Err(RtError::new(msg, near))
        }
    }

    fn arg_long(&mut self, args: &[Expr], i: usize, fr: &mut Frame) -> R<i64> {
        match args.get(i) {
            Some(e) => self.long(e, fr),
            None => Ok(0),
        }
    }

    fn arg_bytes(&mut self, args: &[Expr], i: usize, fr: &mut Frame) -> R<Vec<u8>> {
        match args.get(i) {
            Some(e) => self.bytes(e, fr),
            None => Ok(Vec::new()),
        }
    }
}

/// The bytes of a C string: up to the first NUL.
/// The next non-empty token of `t` (its text, where to go on from), as
/// stap's `tokenize()` takes them with `strsep`; "" once none is left.
fn next_token(t: &mut (Vec<u8>, usize), delim: &[u8]) -> Vec<u8> {
    let (text, at) = t;
    while *at < text.len() {
        let start = *at;
        let end = text[start..]
            .iter()
            .position(|b| delim.contains(b))
            .map_or(text.len(), |i| start + i);
        *at = (end + 1).min(text.len() + 1);
        if end > start {
            return text[start..end].to_vec();
        }
    }
    Vec::new()
}

fn c_str(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// A binary operator on longs, as stap's C does it.
pub fn arith(op: LongOp, x: i64, y: i64) -> Result<i64, &'static str> {
    Ok(match op {
        LongOp::Add => x.wrapping_add(y),
        LongOp::Sub => x.wrapping_sub(y),
        LongOp::Mul => x.wrapping_mul(y),
        LongOp::Div => {
            if y == 0 {
                return Err("division by 0");
            }
            x.wrapping_div(y)
        }
        LongOp::Mod => {
            if y == 0 {
                return Err("division by 0");
            }
            x.wrapping_rem(y)
        }
        LongOp::Shl => x << (y.clamp(0, 64) as u32 & 63),
        LongOp::Shr => x >> (y.clamp(0, 64) as u32 & 63),
        LongOp::And => x & y,
        LongOp::Or => x | y,
        LongOp::Xor => x ^ y,
    })
}

fn op_text(op: LongOp) -> &'static str {
    match op {
        LongOp::Add => "+",
        LongOp::Sub => "-",
        LongOp::Mul => "*",
        LongOp::Div => "/",
        LongOp::Mod => "%",
        LongOp::Shl => "<<",
        LongOp::Shr => ">>",
        LongOp::And => "&",
        LongOp::Or => "|",
        LongOp::Xor => "^",
    }
}

fn assign_op_text(op: LongOp) -> &'static str {
    match op {
        LongOp::Div => "/=",
        LongOp::Mod => "%=",
        _ => "=",
    }
}

fn place_span(p: &Place) -> Option<Span> {
    match p {
        Place::Elem(_, ks) => ks.last().map(|k| k.span),
        _ => None,
    }
}

/// The kernel's `simple_strtol`: an optional `-`, then digits of `base`
/// (0: `0x` means 16, a leading `0` means 8, else 10; base 16 skips a `0x`);
/// parsing stops at the first character that is not a digit of the base.
pub fn strtol(s: &[u8], base: i64) -> i64 {
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let mut base = base as u32 as u64;
    let has_hex_prefix = s.len() >= 2 && s[0] == b'0' && (s[1] | 0x20) == b'x';
    if base == 0 {
        base = if s.first() == Some(&b'0') {
            if has_hex_prefix && s.get(2).is_some_and(|c| c.is_ascii_hexdigit()) {
                16
            } else {
                8
            }
        } else {
            10
        };
    }
    let digits = if base == 16 && has_hex_prefix {
        &s[2..]
    } else {
        s
    };
    let mut v: u64 = 0;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => u64::from(c - b'0'),
            b'a'..=b'z' => u64::from(c - b'a') + 10,
            b'A'..=b'Z' => u64::from(c - b'A') + 10,
            _ => break,
        };
        if d >= base {
            break;
        }
        v = v.wrapping_mul(base).wrapping_add(d);
    }
    let v = v as i64;
    if neg {
        v.wrapping_neg()
    } else {
        v
    }
}

/// Compile a script's regular expression. stap uses POSIX extended regular
/// expressions matched anywhere in the string; the `regex` crate's syntax
/// is a superset for the common cases (classes, `[[:alpha:]]`, anchors,
/// `+ ? * {m,n}`, groups, alternation). Differences: Perl escapes such as
/// `\d`, `\w`, `\b` are understood here (POSIX takes them as the letter),
/// and `.` and `[^...]` match any byte including a newline, as in POSIX.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    regex::bytes::RegexBuilder::new(&byte_pattern(pattern))
        .unicode(false)
        .dot_matches_new_line(true)
        .build()
        .map_err(|e| {
            // The crate's message spans lines (pattern, caret, reason).
            let text = e.to_string();
            let why = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .trim_start_matches("error: ")
                .to_string();
            format!("bad regular expression \"{pattern}\": {why}")
        })
}

/// A pattern for the byte-oriented engines: each byte a literal escapes
/// above 0x7f (see `grammar::bytes`) as `\xHH`, which matches that byte.
pub fn byte_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match grammar::bytes::char_byte(c) {
            Some(b) => out.push_str(&format!("\\x{b:02x}")),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_like_c() {
        assert_eq!(arith(LongOp::Div, -7, 2), Ok(-3));
        assert_eq!(arith(LongOp::Mod, -7, 2), Ok(-1));
        assert_eq!(arith(LongOp::Mod, 7, -2), Ok(1));
        assert_eq!(arith(LongOp::Div, i64::MIN, -1), Ok(i64::MIN));
        assert_eq!(arith(LongOp::Mod, i64::MIN, -1), Ok(0));
        assert_eq!(arith(LongOp::Div, 1, 0), Err("division by 0"));
        assert_eq!(arith(LongOp::Add, i64::MAX, 1), Ok(i64::MIN));
        assert_eq!(arith(LongOp::Shl, 1, 63), Ok(i64::MIN));
        assert_eq!(arith(LongOp::Shl, 1, 64), Ok(1));
        assert_eq!(arith(LongOp::Shl, 3, 1000), Ok(3));
        assert_eq!(arith(LongOp::Shl, 1, -5), Ok(1));
        assert_eq!(arith(LongOp::Shr, -8, 1), Ok(-4));
        assert_eq!(arith(LongOp::Shr, -8, 63), Ok(-1));
    }

    #[test]
    fn strtol_like_the_kernel() {
        assert_eq!(strtol(b"123", 10), 123);
        assert_eq!(strtol(b"-123abc", 10), -123);
        assert_eq!(strtol(b"ff", 16), 255);
        assert_eq!(strtol(b"0xff", 16), 255);
        assert_eq!(strtol(b"0x1f", 0), 31);
        assert_eq!(strtol(b"017", 0), 15);
        assert_eq!(strtol(b"101", 2), 5);
        assert_eq!(strtol(b"  12", 10), 0);
        assert_eq!(strtol(b"", 10), 0);
        assert_eq!(strtol(b"zz", 36), 35 * 36 + 35);
    }

    #[test]
    fn regexes_are_posix_like() {
        let r = compile_regex("^[[:alpha:]]+[0-9]{2}$").unwrap();
        assert!(r.is_match(b"abc12"));
        assert!(!r.is_match(b"abc123"));
        assert!(compile_regex("(").is_err());
        assert!(compile_regex("a.b").unwrap().is_match(b"a\nb"));
    }
}

/// `text` with every `old` replaced by `new`, left to right without
/// overlaps (an empty `old` changes nothing, as stap's `str_replace`).
fn replace_all(text: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    if old.is_empty() {
        return text.to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(old) {
            out.extend_from_slice(new);
            i += old.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod replace_tests {
    use super::replace_all;

    #[test]
    fn replaces_left_to_right_without_overlaps() {
        assert_eq!(replace_all(b"a-b-c--d", b"-", b"+"), b"a+b+c++d");
        assert_eq!(replace_all(b"aaa", b"aa", b"b"), b"ba");
        assert_eq!(replace_all(b"abab", b"ab", b""), b"");
        assert_eq!(replace_all(b"abc", b"", b"x"), b"abc");
    }
}
