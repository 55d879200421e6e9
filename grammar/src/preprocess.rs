//! The stap preprocessor: `%( COND %? A %: B %)` conditionals and
//! `@define NAME(params) %( body %)` macros.
//!
//! It works on tokens (so `%(` inside a string, a comment or `%{ %}` is left
//! alone), following stap's two layers: the inner one reads tokens from the
//! file or from the macro bodies being expanded, handles `@define` and
//! replaces macro invocations by their bodies; the outer one evaluates the
//! conditionals on that stream. Conditions may therefore come from macros
//! (`%( @_IS_SREG_KERNEL %? ...`), and macro bodies may hold conditionals,
//! which are evaluated where the macro is used.
//!
//! The result is text again:
//! - a token that survives is copied where it was, and so is plain
//!   whitespace between two such tokens;
//! - everything else (conditional syntax, conditions, untaken branches,
//!   definitions, comments) becomes spaces, newlines kept, so offsets
//!   outside macro expansions stay those of the input;
//! - an invocation at the top level (`@name(args)`, from `@` to `)`) is
//!   replaced by the tokens its expansion kept, joined with single spaces
//!   where the source had whitespace or where the tokens would otherwise
//!   fuse, and followed by as many newlines as the invocation spanned (so the
//!   lines after it keep their numbers, unless the expansion itself holds
//!   multi-line `%{ %}` code). [`Preprocessed::span`] maps any offset inside
//!   such an expansion to the whole invocation, and offsets after it back to
//!   where they came from.
//!
//! Command-line arguments are substituted here, as stap's lexer does, so
//! they work wherever a token may start, conditions included: `$N` stands
//! for the tokens of argument N (unquoted: `5`, `-5`, `syscall.open`), `@N`
//! for a string literal holding it, `$#` and `@#` for their count (a number,
//! a string). The substitution is an expansion like a macro's, so errors in
//! it point at the `$N` and [`Preprocessed::note_at`] names the argument.
//! `$N` past the last argument is an error (ignored in untaken branches).
//!
//! What stap does that is kept here: macros are visible after their
//! definition, only in their file (library macros from `.stpm` files in every
//! file, file macros shadow them, a library macro's body sees only library
//! macros); a parameterless macro leaves a following `( ... )` alone;
//! arguments are split at commas outside `( )` and `[ ]` and are expanded
//! where the parameter is used, in the caller's context; `@define` inside an
//! untaken branch defines nothing; untaken branches are only scanned for
//! nested `%( %)` (macros are still expanded there, as stap does), and
//! errors in them are ignored; an unknown `@word` is left alone by the macro
//! layer (it may be `@cast`, `@var`, ...) and is an error only if it is not
//! one of stap's built-in operators and reaches the output ("unknown
//! operator", which stap's parser reports).
//!
//! Not from stap: there is a nesting limit and a size limit on expansions
//! (stap loops forever on a recursive macro), and unterminated `/* */`
//! comments are errors (stap ignores them silently).

mod cond;
pub(crate) mod lexer;

use crate::diag::Diagnostic;
use crate::source::{FileId, Span};
use cond::{glob_match, parse_c_int, version_cmp};
use lexer::{string_value, Junk, Kind, Lexer, Tok, KEYWORDS};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::rc::Rc;

/// What `%( ... %)` conditions test against.
#[derive(Debug, Clone)]
pub struct PpConfig {
    /// `kernel_v`: the release without its local suffix, e.g. `6.1.0`.
    pub kernel_v: String,
    /// `kernel_vr`: the full release, e.g. `6.1.0-13-amd64`.
    pub kernel_vr: String,
    pub arch: String,
    pub runtime: String,
    pub systemtap_v: String,
    pub systemtap_privilege: String,
    pub guru_mode: bool,
    /// `CONFIG_*` values from the kernel config (`y`, `m`, numbers, strings).
    pub kconfig: HashMap<String, String>,
    /// The script's command-line arguments, for `$1`, `@1`, `$#` and `@#`
    /// (in every file, tapsets too, as stap does: argv.stp reads them).
    pub args: Vec<String>,
}

impl Default for PpConfig {
    fn default() -> PpConfig {
        PpConfig {
            kernel_v: "6.1.0".into(),
            kernel_vr: "6.1.0".into(),
            arch: "x86_64".into(),
            runtime: "kernel".into(),
            systemtap_v: "5.0".into(),
            systemtap_privilege: "stapdev".into(),
            guru_mode: false,
            kconfig: HashMap::new(),
            args: Vec::new(),
        }
    }
}

/// The `@` words stap itself understands; they are never macro invocations
/// unless a macro of the same name exists (stap warns about such macros).
pub const BUILTIN_ATWORDS: &[&str] = &[
    "cast",
    "defined",
    "probewrite",
    "entry",
    "perf",
    "var",
    "avg",
    "count",
    "sum",
    "min",
    "max",
    "hist_linear",
    "hist_log",
    "const",
    "variance",
    "kregister",
    "uregister",
    "kderef",
    "uderef",
];

fn is_builtin_atword(name: &str) -> bool {
    BUILTIN_ATWORDS.contains(&name)
}

/// Library macros: the `@define`s of the `.stpm` files, visible in every
/// file (after the file's own macros of the same name).
#[derive(Debug, Clone, Default)]
pub struct MacroTable {
    macros: Vec<Macro>,
    by_name: HashMap<String, usize>,
}

/// One library macro.
#[derive(Debug, Clone)]
pub struct Macro {
    pub name: String,
    pub params: Vec<String>,
    /// The text between `%(` and `%)`.
    pub body: String,
    /// The whole definition, `@define` to `%)`.
    pub span: Span,
    /// Where `body` starts in its file.
    body_offset: u32,
    /// The body's tokens, offsets relative to `body`.
    toks: Vec<Tok>,
}

impl MacroTable {
    pub fn new() -> MacroTable {
        MacroTable::default()
    }

    pub fn get(&self, name: &str) -> Option<&Macro> {
        self.by_name.get(name).map(|&i| &self.macros[i])
    }

    pub fn len(&self) -> usize {
        self.macros.len()
    }

    pub fn is_empty(&self) -> bool {
        self.macros.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Macro> {
        self.macros.iter()
    }

    /// Collect the `@define`s of one `.stpm` file. Its conditionals are
    /// evaluated with `config`; anything else that survives preprocessing is
    /// an error, and so is a macro some earlier library file already defined
    /// (then nothing of this file is added, as in stap).
    pub fn add_library_file(
        &mut self,
        file: FileId,
        text: &str,
        config: &PpConfig,
    ) -> Result<(), Diagnostic> {
        check_size(text)?;
        let args = ArgTexts::new(&config.args);
        let mut engine = Engine::new(file, text, config, self, &args);
        if let Some(t) = engine.scan_pp().map_err(|d| *d)? {
            return Err(*engine.error(
                &t,
                "unexpected token in a library macro file: only '@define' and '%( %)' \
                 conditionals may appear at its top level",
            ));
        }
        let locals = std::mem::take(&mut engine.locals);
        drop(engine);
        for m in &locals {
            if let Some(old) = self.get(&m.name) {
                return Err(Diagnostic::error(
                    Span::new(file, m.name_tok.start as usize, m.name_tok.end as usize),
                    format!("duplicate definition of library macro '@{}'", m.name),
                )
                .with_note(format!(
                    "macro '@{}' was first defined in another library file (file #{}, byte {})",
                    m.name, old.span.file.0, old.span.start
                )));
            }
        }
        for m in locals {
            let (lo, hi) = (m.body_start as usize, m.body_end as usize);
            let toks = m
                .body
                .iter()
                .map(|t| Tok {
                    start: t.start - m.body_start,
                    end: t.end - m.body_start,
                    ..*t
                })
                .collect();
            self.by_name.insert(m.name.clone(), self.macros.len());
            self.macros.push(Macro {
                name: m.name,
                params: m.params,
                body: text.get(lo..hi).unwrap_or("").to_string(),
                span: Span::new(file, m.def_start as usize, m.def_end as usize),
                body_offset: m.body_start,
                toks,
            });
        }
        Ok(())
    }
}

/// Preprocessed text plus the map back to the original offsets.
#[derive(Debug, Clone)]
pub struct Preprocessed {
    pub file: FileId,
    pub text: String,
    /// Warnings (a macro named like a built-in operator, ...).
    pub warnings: Vec<Diagnostic>,
    /// Sorted by `out_start`, covering the whole output; empty when the
    /// output maps one to one onto the input.
    segments: Vec<Segment>,
    /// Length of the input.
    input_len: u32,
    /// What some expansions were (a command-line argument's value), for
    /// errors found in them later.
    notes: Vec<String>,
}

/// `note` of a segment that has none.
const NO_NOTE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Segment {
    out_start: u32,
    in_start: u32,
    /// For an expansion: the end of the invocation it replaces.
    in_end: u32,
    expansion: bool,
    /// Index in `notes`, or `NO_NOTE`.
    note: u32,
}

impl Preprocessed {
    /// The original span of output bytes `[start, end)`. Offsets inside a
    /// macro expansion map to the whole invocation; offsets past the end map
    /// to the end of the input.
    pub fn span(&self, start: usize, end: usize) -> Span {
        let s = self.map(start, false);
        let e = if end <= start {
            s
        } else {
            self.map(end, true).max(s)
        };
        Span::new(self.file, s as usize, e as usize)
    }

    /// The original offset of output offset `offset`.
    pub fn original_offset(&self, offset: usize) -> usize {
        self.map(offset, false) as usize
    }

    /// Whether output offset `offset` lies inside a macro expansion, and if
    /// so the invocation's span.
    pub fn expansion_at(&self, offset: usize) -> Option<Span> {
        let seg = self.segment(offset)?;
        seg.expansion
            .then(|| Span::new(self.file, seg.in_start as usize, seg.in_end as usize))
    }

    /// A note for errors at output offset `offset` when it lies in the
    /// substitution of a command-line argument: which one, and its value
    /// (the parser only sees the value, the user wrote `$1`).
    pub fn note_at(&self, offset: usize) -> Option<&str> {
        let seg = self.segment(offset)?;
        self.notes.get(seg.note as usize).map(String::as_str)
    }

    fn segment(&self, offset: usize) -> Option<&Segment> {
        if offset >= self.text.len() {
            return None;
        }
        let i = self
            .segments
            .partition_point(|s| s.out_start as usize <= offset);
        self.segments.get(i.checked_sub(1)?)
    }

    /// `as_end`: `offset` is an exclusive end, so the byte before it decides.
    fn map(&self, offset: usize, as_end: bool) -> u32 {
        if offset >= self.text.len() {
            return self.input_len;
        }
        if self.segments.is_empty() {
            return (offset as u32).min(self.input_len);
        }
        let probe = if as_end {
            offset.saturating_sub(1)
        } else {
            offset
        };
        let Some(seg) = self.segment(probe) else {
            return self.input_len;
        };
        let r = if seg.expansion {
            if as_end {
                seg.in_end
            } else {
                seg.in_start
            }
        } else {
            seg.in_start + (offset as u32 - seg.out_start)
        };
        r.min(self.input_len)
    }
}

/// Preprocess one file.
pub fn preprocess(
    file: FileId,
    text: &str,
    config: &PpConfig,
    library: &MacroTable,
) -> Result<Preprocessed, Diagnostic> {
    check_size(text)?;
    let args = ArgTexts::new(&config.args);
    let mut engine = Engine::new(file, text, config, library, &args);
    while let Some(t) = engine.scan_pp().map_err(|d| *d)? {
        engine.keep(t).map_err(|d| *d)?;
    }
    Ok(engine.finish())
}

fn check_size(text: &str) -> Result<(), Diagnostic> {
    // Offsets are u32; leave room for expansions.
    if text.len() >= (u32::MAX / 2) as usize {
        return Err(Diagnostic::bare("source file too large (2 GiB or more)"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The engine

/// Nesting limit for macro expansion (stap has none and never stops).
const MAX_DEPTH: usize = 256;
/// Limit on the tokens read from macro bodies in one file, against
/// exponential expansions.
const MAX_WORK: usize = 4_000_000;
/// Errors are boxed inside the engine to keep the per-token results small.
type Res<T> = Result<T, Box<Diagnostic>>;

/// `inv` of a token read straight from the file, outside any expansion.
const NO_INV: u32 = u32::MAX;

/// Which text a token's offsets refer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    /// The file being preprocessed.
    Main,
    /// The body of library macro number `n`.
    Lib(u32),
    /// Text number `n` of [`Engine::arg_texts`].
    Arg(u32),
}

/// A token in the stream, with its text and the top-level invocation whose
/// expansion produced it (`NO_INV` if none).
#[derive(Clone, Copy, Debug)]
struct STok {
    tok: Tok,
    src: Src,
    inv: u32,
}

/// A macro defined in the file being preprocessed.
struct LocalMacro {
    name: String,
    name_tok: Tok,
    params: Vec<String>,
    body: Vec<Tok>,
    def_start: u32,
    def_end: u32,
    body_start: u32,
    body_end: u32,
}

/// An argument of an invocation: its tokens and the parameters in force
/// where the invocation was (an argument may mention the caller's `@param`).
struct ParamDecl {
    toks: Vec<(Tok, Src)>,
    env: Rc<Params>,
}

type Params = Vec<(String, Rc<ParamDecl>)>;

enum Body {
    Local(u32),
    Lib(u32),
    Param(Rc<ParamDecl>),
    /// A command-line argument: text number `n` of [`Engine::arg_texts`].
    Arg(u32),
}

/// A macro (or argument) being expanded.
struct Activation {
    body: Body,
    cursor: usize,
    params: Rc<Params>,
    /// Whether the invocation had whitespace before it; its first token
    /// takes this over.
    ws: bool,
    /// A library macro: file macros are invisible inside.
    library: bool,
    name: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CondState {
    KeepThen,
    SkipThen,
    KeepElse,
    SkipElse,
}

/// The output of one top-level invocation.
struct Expansion {
    start: u32,
    end: u32,
    text: String,
    /// For a command-line argument: the note for errors in its text.
    note: Option<String>,
}

enum Edit {
    /// Copy this input range.
    Keep(u32, u32),
    /// Replace the invocation by expansion number `n`.
    Expand(u32),
}

struct Engine<'a> {
    file: FileId,
    text: &'a str,
    lexer: Lexer<'a>,
    /// End of the last token read from the file.
    last_main_end: u32,
    config: &'a PpConfig,
    library: &'a MacroTable,
    locals: Vec<LocalMacro>,
    local_index: HashMap<String, u32>,
    stack: Vec<Activation>,
    no_params: Rc<Params>,
    conds: Vec<(STok, CondState)>,
    /// The top-level invocation the current stack belongs to.
    cur_inv: u32,
    work: usize,
    /// Set by errors that must not be skipped over in untaken branches.
    fatal: bool,
    edits: Vec<Edit>,
    expansions: Vec<Expansion>,
    warnings: Vec<Diagnostic>,
    args: &'a ArgTexts,
}

/// What the command-line arguments stand for, lexed once per file.
struct ArgTexts {
    /// For argument `i` (from 0), `2i` is its text and `2i + 1` that text
    /// quoted; then the count, unquoted and quoted.
    texts: Vec<String>,
    /// The tokens of each text, offsets into that text.
    toks: Vec<Vec<Tok>>,
}

impl ArgTexts {
    fn new(args: &[String]) -> ArgTexts {
        let mut texts = Vec::with_capacity(2 * args.len() + 2);
        for a in args {
            texts.push(a.clone());
            texts.push(crate::printer::quote(a));
        }
        texts.push(args.len().to_string());
        texts.push(format!("\"{}\"", args.len()));
        let toks = texts
            .iter()
            .map(|t| {
                let mut lx = Lexer::new(t);
                std::iter::from_fn(|| lx.next_tok()).collect()
            })
            .collect();
        ArgTexts { texts, toks }
    }

    /// How many arguments there are.
    fn count(&self) -> u32 {
        (self.texts.len() / 2 - 1) as u32
    }

    /// The note for errors in the substitution of `name` (text `i`).
    fn note(&self, name: &str, i: u32) -> String {
        let n = self.count();
        if i / 2 == n {
            format!("{name} is the number of command-line arguments, {n}")
        } else {
            let raw = &self.texts[(i & !1) as usize];
            format!(
                "{name} is command-line argument {}, {}",
                i / 2 + 1,
                crate::printer::quote(raw)
            )
        }
    }
}

fn is_op(text: &str, t: &STok, op: &str) -> bool {
    t.tok.kind == Kind::Op && text == op
}

/// Whether two tokens written next to each other, the first ending in `a`
/// and the second starting with `b`, could scan differently.
fn would_fuse(a: u8, b: u8) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'@');
    if word(a) && word(b) {
        return true;
    }
    b"=!<>+-*/%&^|.~".contains(&a) && b.is_ascii_punctuation() && b != b'"'
}

impl<'a> Engine<'a> {
    fn new(
        file: FileId,
        text: &'a str,
        config: &'a PpConfig,
        library: &'a MacroTable,
        args: &'a ArgTexts,
    ) -> Engine<'a> {
        Engine {
            file,
            text,
            lexer: Lexer::new(text),
            last_main_end: 0,
            config,
            library,
            locals: Vec::new(),
            local_index: HashMap::new(),
            stack: Vec::new(),
            no_params: Rc::new(Vec::new()),
            conds: Vec::new(),
            cur_inv: NO_INV,
            work: 0,
            fatal: false,
            edits: Vec::new(),
            expansions: Vec::new(),
            warnings: Vec::new(),
            args,
        }
    }

    // --- token access ------------------------------------------------------

    fn src_text(&self, src: Src) -> &'a str {
        match src {
            Src::Main => self.text,
            Src::Lib(i) => self
                .library
                .macros
                .get(i as usize)
                .map(|m| m.body.as_str())
                .unwrap_or(""),
            Src::Arg(i) => self
                .args
                .texts
                .get(i as usize)
                .map(String::as_str)
                .unwrap_or(""),
        }
    }

    fn tok_text(&self, t: &STok) -> &'a str {
        self.src_text(t.src).get(t.tok.range()).unwrap_or("")
    }

    fn span_of(&self, t: &STok) -> Span {
        match t.src {
            Src::Main => Span::new(self.file, t.tok.start as usize, t.tok.end as usize),
            Src::Lib(i) => match self.library.macros.get(i as usize) {
                Some(m) => Span::new(
                    m.span.file,
                    (m.body_offset + t.tok.start) as usize,
                    (m.body_offset + t.tok.end) as usize,
                ),
                None => Span::new(self.file, 0, 0),
            },
            // The `$N` the text replaces (or the macro invocation that
            // brought it in).
            Src::Arg(_) => match self.expansions.get(t.inv as usize) {
                Some(e) => Span::new(self.file, e.start as usize, e.end as usize),
                None => Span::new(self.file, 0, 0),
            },
        }
    }

    fn line_col(&self, offset: u32) -> (usize, usize) {
        let before = self.text.get(..offset as usize).unwrap_or(self.text);
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// An error at token `t`, with notes naming the expansions in progress.
    fn error(&self, t: &STok, msg: impl Into<String>) -> Box<Diagnostic> {
        let mut d = Diagnostic::error(self.span_of(t), msg);
        for act in self.stack.iter().rev() {
            d = d.with_note(match act.body {
                Body::Arg(i) => self.args.note(&act.name, i),
                _ => format!("in expansion of macro '@{}'", act.name),
            });
        }
        if let Some(e) = self.expansions.get(self.cur_inv as usize) {
            if (!self.stack.is_empty() || t.inv != NO_INV) && e.note.is_none() {
                let (line, col) = self.line_col(e.start);
                d = d.with_note(format!(
                    "expanded from the macro invocation at line {line}, column {col}"
                ));
            }
        }
        Box::new(d)
    }

    fn eof_error(&self, msg: impl Into<String>) -> Box<Diagnostic> {
        let n = self.text.len();
        Box::new(Diagnostic::error(Span::new(self.file, n, n), msg))
    }

    // --- the macro layer ---------------------------------------------------

    /// The next raw token: from the innermost expansion, or from the file.
    /// `None` at the end of either.
    #[inline]
    fn next_pp1(&mut self) -> Res<Option<STok>> {
        let Some(act) = self.stack.last_mut() else {
            let Some(tok) = self.lexer.next_tok() else {
                return Ok(None);
            };
            self.last_main_end = tok.end;
            return Ok(Some(STok {
                tok,
                src: Src::Main,
                inv: NO_INV,
            }));
        };
        let first = act.cursor == 0;
        let (tok, src) = match &act.body {
            Body::Local(i) => match self.locals[*i as usize].body.get(act.cursor) {
                Some(&t) => (t, Src::Main),
                None => return Ok(None),
            },
            Body::Lib(i) => match self.library.macros[*i as usize].toks.get(act.cursor) {
                Some(&t) => (t, Src::Lib(*i)),
                None => return Ok(None),
            },
            Body::Param(p) => match p.toks.get(act.cursor) {
                Some(&(t, s)) => (t, s),
                None => return Ok(None),
            },
            Body::Arg(i) => match self.args.toks[*i as usize].get(act.cursor) {
                Some(&t) => (t, Src::Arg(*i)),
                None => return Ok(None),
            },
        };
        let ws = if first { act.ws } else { tok.ws };
        act.cursor += 1;
        self.work += 1;
        if self.work > MAX_WORK {
            self.fatal = true;
            let t = STok {
                tok,
                src,
                inv: self.cur_inv,
            };
            return Err(self.error(
                &t,
                "macro expansion too large (a macro that expands itself more than once?)",
            ));
        }
        Ok(Some(STok {
            tok: Tok { ws, ..tok },
            src,
            inv: self.cur_inv,
        }))
    }

    /// The next token after macro definitions and invocations are handled.
    /// `in_skip`: inside an untaken branch, where `@define` is not special.
    fn scan_pp1(&mut self, in_skip: bool) -> Res<Option<STok>> {
        loop {
            let Some(t) = self.next_pp1()? else {
                if self.stack.pop().is_none() {
                    return Ok(None);
                }
                continue;
            };
            if t.tok.kind == Kind::Arg {
                self.substitute_arg(t)?;
                continue;
            }
            if t.tok.kind != Kind::AtWord {
                return Ok(Some(t));
            }
            let word = self.tok_text(&t);
            if word == "@define" && !in_skip {
                if !self.stack.is_empty() {
                    return Err(self.error(&t, "'@define' is not allowed inside a macro body"));
                }
                self.define(t)?;
                continue;
            }
            let name = word.get(1..).unwrap_or("");
            let Some(body) = self.lookup(name) else {
                return Ok(Some(t));
            };
            self.invoke(t, name, body)?;
        }
    }

    /// What `@name` refers to here, if it is a macro or a parameter.
    fn lookup(&self, name: &str) -> Option<Body> {
        let act = self.stack.last();
        if let Some(act) = act {
            if let Some((_, p)) = act.params.iter().find(|(n, _)| n == name) {
                return Some(Body::Param(p.clone()));
            }
        }
        if !act.is_some_and(|a| a.library) {
            if let Some(&i) = self.local_index.get(name) {
                return Some(Body::Local(i));
            }
        }
        self.library.by_name.get(name).map(|&i| Body::Lib(i as u32))
    }

    /// Start expanding invocation `t` (`@name`), reading its arguments.
    fn invoke(&mut self, t: STok, name: &str, body: Body) -> Res<()> {
        if self.stack.len() >= MAX_DEPTH {
            self.fatal = true;
            return Err(self.error(
                &t,
                format!("macro expansion nested too deeply at '@{name}' (recursive macro?)"),
            ));
        }
        let top_level = self.stack.is_empty();
        let caller_params = self
            .stack
            .last()
            .map(|a| a.params.clone())
            .unwrap_or_else(|| self.no_params.clone());
        let (formals, library): (&[String], bool) = match &body {
            Body::Local(i) => (&self.locals[*i as usize].params, false),
            Body::Lib(i) => (&self.library.macros[*i as usize].params, true),
            Body::Param(_) | Body::Arg(_) => (&[], false),
        };
        let formals = formals.to_vec();
        let params = match &body {
            // An argument is expanded where the invocation was.
            Body::Param(p) => p.env.clone(),
            // A command-line argument sees no macro parameters.
            Body::Arg(_) => self.no_params.clone(),
            _ if formals.is_empty() => self.no_params.clone(),
            _ => Rc::new(self.read_args(&t, name, &formals, caller_params)?),
        };
        if top_level {
            self.cur_inv = self.expansions.len() as u32;
            let note = match &body {
                Body::Arg(i) => Some(self.args.note(name, *i)),
                _ => None,
            };
            self.expansions.push(Expansion {
                start: t.tok.start,
                end: self.last_main_end.max(t.tok.end),
                text: String::new(),
                note,
            });
            self.edits.push(Edit::Expand(self.cur_inv));
        }
        self.work += 1;
        self.stack.push(Activation {
            body,
            cursor: 0,
            params,
            ws: t.tok.ws,
            library,
            name: name.to_string(),
        });
        Ok(())
    }

    /// `$N`, `@N`, `$#` or `@#` (token `t`): read the argument's tokens
    /// next, as stap's lexer does.
    fn substitute_arg(&mut self, t: STok) -> Res<()> {
        let name = self.tok_text(&t);
        let quoted = name.starts_with('@') as u32;
        let n = self.args.count();
        let index = match &name[1..] {
            "#" => n,
            digits => match digits.parse::<u32>() {
                Ok(i) if (1..=n).contains(&i) => i - 1,
                _ => {
                    return Err(self.error(
                        &t,
                        format!("command line argument index {digits} out of range [1-{n}]"),
                    ))
                }
            },
        };
        self.invoke(t, name, Body::Arg(2 * index + quoted))
    }

    /// Read `( arg, ... )` for a macro with parameters `formals`.
    fn read_args(
        &mut self,
        at: &STok,
        name: &str,
        formals: &[String],
        env: Rc<Params>,
    ) -> Res<Params> {
        let n = formals.len();
        let open = self.next_pp1()?;
        match open {
            Some(o) if is_op(self.tok_text(&o), &o, "(") => {}
            other => {
                let plural = if n == 1 { "" } else { "s" };
                let msg = format!(
                    "expected '(' in invocation of macro '@{name}' taking {n} parameter{plural}"
                );
                return Err(match other {
                    Some(o) => self.error(&o, msg),
                    None => self.error(at, msg),
                });
            }
        }
        let mut params = Vec::with_capacity(n);
        for (i, formal) in formals.iter().enumerate() {
            let mut toks = Vec::new();
            let mut depth = 0u32;
            let sep = loop {
                let Some(t) = self.next_pp1()? else {
                    break None;
                };
                let s = self.tok_text(&t);
                if t.tok.kind == Kind::Op {
                    match s {
                        "(" | "[" => depth += 1,
                        ")" | "]" if depth > 0 => depth -= 1,
                        ")" | "," if depth == 0 => break Some(t),
                        _ => {}
                    }
                }
                toks.push((t.tok, t.src));
            };
            let Some(sep) = sep else {
                return Err(self.error(
                    at,
                    format!("could not find the end of this invocation of macro '@{name}'"),
                ));
            };
            let last = i + 1 == n;
            match (self.tok_text(&sep), last) {
                (",", true) => {
                    return Err(self.error(
                        &sep,
                        format!("too many arguments for macro '@{name}' (expected {n})"),
                    ))
                }
                (")", false) => {
                    return Err(self.error(
                        &sep,
                        format!("too few arguments for macro '@{name}' (expected {n})"),
                    ))
                }
                _ => {}
            }
            params.push((
                formal.clone(),
                Rc::new(ParamDecl {
                    toks,
                    env: env.clone(),
                }),
            ));
        }
        Ok(params)
    }

    /// `@define NAME %( ... %)` or `@define NAME(a, b) %( ... %)`, read
    /// straight from the file (`at` is the `@define`).
    fn define(&mut self, at: STok) -> Res<()> {
        let main = |tok| STok {
            tok,
            src: Src::Main,
            inv: NO_INV,
        };
        let name_tok = self.lexer.next_tok();
        let name_tok = match name_tok {
            Some(n) if n.kind == Kind::Ident && !KEYWORDS.contains(&&self.text[n.range()]) => n,
            Some(n) => {
                return Err(self.error(&main(n), "expected a macro name after '@define'"));
            }
            None => return Err(self.error(&at, "expected a macro name after '@define'")),
        };
        let name = self.text[name_tok.range()].to_string();
        let name_s = main(name_tok);
        if let Some(&i) = self.local_index.get(&name) {
            let (line, col) = self.line_col(self.locals[i as usize].def_start);
            let d = self.error(
                &name_s,
                format!("attempt to redefine macro '@{name}' in the same file"),
            );
            return Err(Box::new(d.with_note(format!(
                "macro '@{name}' was first defined at line {line}, column {col}"
            ))));
        }
        if name == "define" {
            return Err(self.error(&name_s, "attempt to redefine '@define'"));
        }
        if is_builtin_atword(&name) {
            self.warnings.push(Diagnostic::warning(
                self.span_of(&name_s),
                format!("macro redefines built-in operator '@{name}'"),
            ));
        }

        let mut params = Vec::new();
        let mut t = self.lexer.next_tok();
        let saw_params = t.is_some_and(|t| t.kind == Kind::Op && &self.text[t.range()] == "(");
        if saw_params {
            loop {
                match self.lexer.next_tok() {
                    Some(p) if p.kind == Kind::Ident => {
                        params.push(self.text[p.range()].to_string())
                    }
                    Some(p) => {
                        return Err(self.error(&main(p), "expected a parameter name"));
                    }
                    None => return Err(self.eof_error("expected a parameter name")),
                }
                match self.lexer.next_tok() {
                    Some(p) if p.kind == Kind::Op && &self.text[p.range()] == "," => {}
                    Some(p) if p.kind == Kind::Op && &self.text[p.range()] == ")" => break,
                    Some(p) => return Err(self.error(&main(p), "expected ',' or ')'")),
                    None => return Err(self.eof_error("expected ',' or ')'")),
                }
            }
            t = self.lexer.next_tok();
        }
        let open = match t {
            Some(o) if o.kind == Kind::PpOpen => o,
            other => {
                let msg = if saw_params {
                    "expected '%(' to start the macro body"
                } else {
                    "expected '%(' or '(' after the macro name"
                };
                return Err(match other {
                    Some(o) => self.error(&main(o), msg),
                    None => self.eof_error(msg),
                });
            }
        };

        let mut body = Vec::new();
        let mut depth = 0u32;
        let close = loop {
            let Some(b) = self.lexer.next_tok() else {
                return Err(self.error(
                    &name_s,
                    format!("incomplete definition of macro '@{name}': missing '%)'"),
                ));
            };
            match b.kind {
                Kind::PpOpen => depth += 1,
                Kind::PpClose if depth > 0 => depth -= 1,
                Kind::PpClose => break b,
                _ => {}
            }
            body.push(b);
        };
        self.last_main_end = close.end;
        self.local_index
            .insert(name.clone(), self.locals.len() as u32);
        self.locals.push(LocalMacro {
            name,
            name_tok,
            params,
            body,
            def_start: at.tok.start,
            def_end: close.end,
            body_start: open.end,
            body_end: close.start,
        });
        Ok(())
    }

    // --- the conditional layer -------------------------------------------

    /// The next token that survives conditionals, or `None` at the end.
    fn scan_pp(&mut self) -> Res<Option<STok>> {
        loop {
            let state = self.conds.last().map(|c| c.1);
            let t = match state {
                Some(CondState::SkipThen | CondState::SkipElse) => self.skip_pp()?,
                _ => self.scan_pp1(false)?,
            };
            let Some(t) = t else {
                if let Some((open, _)) = self.conds.last() {
                    return Err(
                        self.error(open, "unterminated conditional: missing '%)' for this '%('")
                    );
                }
                return Ok(None);
            };
            match t.tok.kind {
                Kind::PpThen => {
                    return Err(self.error(
                        &t,
                        "misplaced '%?': it must follow the condition right after '%('",
                    ));
                }
                Kind::PpElse => match self.conds.last_mut() {
                    None => {
                        return Err(self.error(&t, "misplaced '%:': no '%(' conditional is open"))
                    }
                    Some((_, CondState::KeepElse | CondState::SkipElse)) => {
                        return Err(self.error(&t, "invalid conditional: duplicate '%:'"))
                    }
                    Some((_, s)) => {
                        *s = if *s == CondState::KeepThen {
                            CondState::SkipElse
                        } else {
                            CondState::KeepElse
                        };
                    }
                },
                Kind::PpClose => {
                    if self.conds.pop().is_none() {
                        return Err(self.error(&t, "misplaced '%)': no '%(' conditional is open"));
                    }
                }
                Kind::PpOpen => {
                    let result = self.condition(&t)?;
                    let state = if result {
                        CondState::KeepThen
                    } else {
                        CondState::SkipThen
                    };
                    self.conds.push((t, state));
                }
                _ => return Ok(Some(t)),
            }
        }
    }

    /// Skip an untaken branch: return the `%?`, `%:` or `%)` that ends it
    /// (or `None` at the end of input). Nested conditionals are skipped
    /// whole; errors are ignored, as in stap, unless they are fatal.
    fn skip_pp(&mut self) -> Res<Option<STok>> {
        let mut depth = 0u32;
        loop {
            let t = match self.scan_pp1(true) {
                Ok(Some(t)) => t,
                Ok(None) => return Ok(None),
                Err(e) if self.fatal => return Err(e),
                Err(_) => continue,
            };
            match t.tok.kind {
                Kind::PpOpen => depth += 1,
                Kind::PpClose if depth > 0 => depth -= 1,
                Kind::PpThen | Kind::PpElse | Kind::PpClose if depth == 0 => return Ok(Some(t)),
                _ => {}
            }
        }
    }

    /// Read and evaluate the condition after `open` (`%(`) up to its `%?`:
    /// comparisons joined by `&&` and `||` (`&&` binds tighter).
    fn condition(&mut self, open: &STok) -> Res<bool> {
        let mut any = false;
        let mut all = true;
        loop {
            let l = self.scan_pp1(false)?;
            let op = self.scan_pp1(false)?;
            let r = self.scan_pp1(false)?;
            let (Some(l), Some(op), Some(r)) = (l, op, r) else {
                return Err(self.error(open, "incomplete condition after '%('"));
            };
            // Every comparison is checked, even when the result is known.
            let v = self.compare(&l, &op, &r)?;
            all &= v;
            let n = self.scan_pp1(false)?;
            let text = n.as_ref().map(|n| self.tok_text(n));
            match (n, text) {
                (Some(n), Some("&&")) if n.tok.kind == Kind::Op => continue,
                (Some(n), Some("||")) if n.tok.kind == Kind::Op => {
                    any |= all;
                    all = true;
                }
                (Some(n), _) if n.tok.kind == Kind::PpThen => return Ok(any || all),
                (Some(n), _) => {
                    return Err(self.error(&n, "expected '&&', '||' or '%?' after a condition"))
                }
                (None, _) => {
                    return Err(self.error(open, "expected '%?' after the condition of this '%('"))
                }
            }
        }
    }

    /// One comparison `l op r`.
    fn compare(&self, l: &STok, op: &STok, r: &STok) -> Res<bool> {
        let lv = self.operand(l)?;
        let rv = self.operand(r)?;
        let op_text = if op.tok.kind == Kind::Op {
            self.tok_text(op)
        } else {
            ""
        };
        let cmp_op = match op_text {
            "==" => Some(CmpOp::Eq),
            "!=" => Some(CmpOp::Ne),
            "<" => Some(CmpOp::Lt),
            "<=" => Some(CmpOp::Le),
            ">" => Some(CmpOp::Gt),
            ">=" => Some(CmpOp::Ge),
            _ => None,
        };
        let any_op = || {
            cmp_op.ok_or_else(|| self.error(op, "expected a comparison operator (== != < <= > >=)"))
        };
        let eq_op = || match cmp_op {
            Some(CmpOp::Eq) => Ok(true),
            Some(CmpOp::Ne) => Ok(false),
            _ => Err(self.error(op, "expected '==' or '!='")),
        };
        let cfg = self.config;
        let expect_string = |v: &Operand| match v {
            Operand::Str(s) => Ok(s.clone()),
            _ => Err(self.error(r, "expected a string literal")),
        };
        match &lv {
            Operand::Ident(id @ ("kernel_v" | "kernel_vr" | "systemtap_v")) => {
                let query = expect_string(&rv)?;
                let target = match *id {
                    "kernel_v" => &cfg.kernel_v,
                    "kernel_vr" => &cfg.kernel_vr,
                    _ => &cfg.systemtap_v,
                };
                let cmp = any_op()?;
                if query.contains(['*', '?', '[']) {
                    let want = match cmp {
                        CmpOp::Eq => true,
                        CmpOp::Ne => false,
                        _ => {
                            return Err(
                                self.error(op, "wildcards are not allowed with order comparisons")
                            )
                        }
                    };
                    Ok(glob_match(&query, target) == want)
                } else {
                    Ok(cmp.holds(version_cmp(target, &query)))
                }
            }
            Operand::Ident("systemtap_privilege") => {
                let query = expect_string(&rv)?;
                Ok((cfg.systemtap_privilege == query) == eq_op()?)
            }
            Operand::Ident(id @ ("arch" | "runtime")) => {
                let query = expect_string(&rv)?;
                let target = if *id == "arch" {
                    &cfg.arch
                } else {
                    &cfg.runtime
                };
                Ok(glob_match(&query, target) == eq_op()?)
            }
            Operand::Ident("guru_mode") => {
                let Operand::Num(n) = rv else {
                    return Err(self.error(r, "expected a number"));
                };
                if n != 0 && n != 1 {
                    return Err(self.error(r, "expected 0 or 1"));
                }
                Ok(((cfg.guru_mode as i64) == n) == eq_op()?)
            }
            Operand::Ident(id) if id.starts_with("CONFIG_") => {
                let value = cfg.kconfig.get(*id).map(String::as_str).unwrap_or("");
                match &rv {
                    Operand::Str(s) => Ok(glob_match(s, value) == eq_op()?),
                    Operand::Num(n) => {
                        let Some(v) = parse_c_int(value) else {
                            return Err(self.error(l, format!("{id} is \"{value}\", not a number")));
                        };
                        Ok(any_op()?.holds(v.cmp(n)))
                    }
                    Operand::Ident(id2) if id2.starts_with("CONFIG_") => {
                        let value2 = cfg.kconfig.get(*id2).map(String::as_str).unwrap_or("");
                        let op = any_op()?;
                        match (parse_c_int(value), parse_c_int(value2)) {
                            (Some(a), Some(b)) => Ok(op.holds(a.cmp(&b))),
                            _ => Ok(op.holds(value.cmp(value2))),
                        }
                    }
                    _ => Err(self.error(
                        r,
                        "expected a string, a number or another CONFIG_... on the right",
                    )),
                }
            }
            Operand::Str(a) => match &rv {
                Operand::Str(b) => Ok(any_op()?.holds(a.as_str().cmp(b.as_str()))),
                Operand::Num(_) => Err(self.error(r, "expected a string literal on the right")),
                _ => Err(self.error(r, "expected a string literal")),
            },
            Operand::Num(a) => match &rv {
                Operand::Num(b) => Ok(any_op()?.holds(a.cmp(b))),
                Operand::Str(_) => Err(self.error(r, "expected a number on the right")),
                _ => Err(self.error(r, "expected a number")),
            },
            _ => Err(self.error(
                l,
                "expected 'arch', 'kernel_v', 'kernel_vr', 'systemtap_v', 'runtime', \
                 'systemtap_privilege', 'guru_mode', 'CONFIG_...', or a comparison \
                 between strings or integers",
            )),
        }
    }

    /// What a condition token stands for.
    fn operand(&self, t: &STok) -> Res<Operand<'a>> {
        let text = self.tok_text(t);
        Ok(match t.tok.kind {
            Kind::Ident => Operand::Ident(text),
            Kind::Str => Operand::Str(string_value(text)),
            Kind::Number => match parse_c_int(text) {
                Some(n) if text.starts_with(|c: char| c.is_ascii_digit()) => Operand::Num(n),
                _ => return Err(self.error(t, "invalid number")),
            },
            _ => Operand::Other,
        })
    }

    // --- output ------------------------------------------------------------

    /// `t` survives: copy it to the output.
    fn keep(&mut self, t: STok) -> Res<()> {
        match t.tok.kind {
            Kind::Junk(j) => {
                let msg = match j {
                    Junk::UnclosedString => "unterminated string literal: missing '\"'",
                    Junk::UnclosedEmbedded => "unterminated embedded code: missing '%}'",
                    Junk::UnclosedComment => "unterminated comment: missing '*/'",
                    Junk::BadChar => "unexpected character",
                };
                return Err(self.error(&t, msg));
            }
            Kind::AtWord => {
                let name = self.tok_text(&t).get(1..).unwrap_or("");
                if !is_builtin_atword(name) {
                    let msg = if name == "define" {
                        "'@define' is not allowed here".to_string()
                    } else {
                        format!(
                            "unknown operator '@{name}': not a built-in and no macro of that \
                             name is defined"
                        )
                    };
                    return Err(self.error(&t, msg));
                }
            }
            _ => {}
        }
        if t.inv == NO_INV {
            let (s, e) = (t.tok.start, t.tok.end);
            if let Some(Edit::Keep(_, pe)) = self.edits.last_mut() {
                let gap = self.text.as_bytes().get(*pe as usize..s as usize);
                if gap.is_some_and(|g| g.iter().all(|&c| c == b' ' || c == b'\t' || c == b'\n')) {
                    *pe = e;
                    return Ok(());
                }
            }
            self.edits.push(Edit::Keep(s, e));
            return Ok(());
        }
        let text = self.tok_text(&t);
        if let Some(exp) = self.expansions.get_mut(t.inv as usize) {
            // The first token's separation from what precedes the
            // invocation is settled when the output is assembled.
            if let (Some(&a), Some(&b)) = (exp.text.as_bytes().last(), text.as_bytes().first()) {
                if t.tok.ws || would_fuse(a, b) {
                    exp.text.push(' ');
                }
            }
            exp.text.push_str(text);
        }
        Ok(())
    }

    /// Build the output text and its segment map.
    fn finish(self) -> Preprocessed {
        let src = self.text.as_bytes();
        let mut out: Vec<u8> = Vec::with_capacity(src.len() + 64);
        let mut segments = Vec::new();
        let mut notes = Vec::new();
        let mut cursor = 0usize;
        // Start of the current stretch that maps one to one.
        let mut ident_out = 0usize;
        let mut ident_in = 0usize;
        let blank = |out: &mut Vec<u8>, range: &[u8]| {
            out.extend(range.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
        };
        for edit in &self.edits {
            match *edit {
                Edit::Keep(s, e) => {
                    let (s, e) = (s as usize, e as usize);
                    if s < cursor || e > src.len() {
                        continue;
                    }
                    blank(&mut out, &src[cursor..s]);
                    out.extend_from_slice(&src[s..e]);
                    cursor = e;
                }
                Edit::Expand(i) => {
                    let Some(exp) = self.expansions.get(i as usize) else {
                        continue;
                    };
                    let (s, e) = (exp.start as usize, exp.end as usize);
                    if exp.text.is_empty() || s < cursor || e > src.len() {
                        // Nothing kept: the invocation is blanked with the
                        // rest of what was dropped.
                        continue;
                    }
                    blank(&mut out, &src[cursor..s]);
                    if out.len() > ident_out {
                        segments.push(Segment {
                            out_start: ident_out as u32,
                            in_start: ident_in as u32,
                            in_end: s as u32,
                            expansion: false,
                            note: NO_NOTE,
                        });
                    }
                    let exp_start = out.len();
                    if let (Some(&a), Some(&b)) = (out.last(), exp.text.as_bytes().first()) {
                        if would_fuse(a, b) {
                            out.push(b' ');
                        }
                    }
                    out.extend_from_slice(exp.text.as_bytes());
                    if let (Some(&a), Some(&b)) = (exp.text.as_bytes().last(), src.get(e)) {
                        if would_fuse(a, b) {
                            out.push(b' ');
                        }
                    }
                    let lines_in = src[s..e].iter().filter(|&&c| c == b'\n').count();
                    let lines_out = exp.text.bytes().filter(|&c| c == b'\n').count();
                    out.extend(std::iter::repeat_n(
                        b'\n',
                        lines_in.saturating_sub(lines_out),
                    ));
                    let note = match &exp.note {
                        Some(n) => {
                            notes.push(n.clone());
                            notes.len() as u32 - 1
                        }
                        None => NO_NOTE,
                    };
                    segments.push(Segment {
                        out_start: exp_start as u32,
                        in_start: s as u32,
                        in_end: e as u32,
                        expansion: true,
                        note,
                    });
                    cursor = e;
                    ident_out = out.len();
                    ident_in = e;
                }
            }
        }
        blank(&mut out, &src[cursor.min(src.len())..]);
        if !segments.is_empty() && out.len() > ident_out {
            segments.push(Segment {
                out_start: ident_out as u32,
                in_start: ident_in as u32,
                in_end: src.len() as u32,
                expansion: false,
                note: NO_NOTE,
            });
        }
        // Only whole tokens and ASCII blanks were written, so this cannot
        // fail; fall back to a lossy copy rather than panic.
        let text = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Preprocessed {
            file: self.file,
            text,
            warnings: self.warnings,
            segments,
            input_len: src.len() as u32,
            notes,
        }
    }
}

/// A condition operand.
enum Operand<'a> {
    Ident(&'a str),
    Str(String),
    Num(i64),
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PpConfig {
        let mut c = PpConfig {
            kernel_v: "6.18.44".into(),
            kernel_vr: "6.18.44-fc-v669".into(),
            arch: "x86_64".into(),
            runtime: "kernel".into(),
            systemtap_v: "4.8".into(),
            systemtap_privilege: "stapdev".into(),
            guru_mode: true,
            kconfig: HashMap::new(),
            args: Vec::new(),
        };
        for (k, v) in [
            ("CONFIG_64BIT", "y"),
            ("CONFIG_NFS_FS", "m"),
            ("CONFIG_NR_CPUS", "64"),
            ("CONFIG_SPLIT_PTLOCK_CPUS", "4"),
            ("CONFIG_HZ", "0x3e8"),
        ] {
            c.kconfig.insert(k.into(), v.into());
        }
        c
    }

    fn lib(files: &[&str]) -> MacroTable {
        let mut t = MacroTable::new();
        for (i, f) in files.iter().enumerate() {
            t.add_library_file(FileId(100 + i as u32), f, &config())
                .unwrap_or_else(|d| panic!("library file {i}: {d:?}"));
        }
        t
    }

    fn run_with(text: &str, table: &MacroTable) -> Result<Preprocessed, Diagnostic> {
        preprocess(FileId(0), text, &config(), table)
    }

    fn run(text: &str) -> Result<Preprocessed, Diagnostic> {
        run_with(text, &MacroTable::new())
    }

    /// The output with runs of blanks squeezed, for content checks.
    fn squeeze(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn out(text: &str) -> String {
        squeeze(&run(text).unwrap_or_else(|d| panic!("{d:?}")).text)
    }

    fn out_lib(text: &str, table: &MacroTable) -> String {
        squeeze(
            &run_with(text, table)
                .unwrap_or_else(|d| panic!("{d:?}"))
                .text,
        )
    }

    /// The error and the text it points at.
    fn err(text: &str) -> (String, String) {
        err_with(text, &MacroTable::new())
    }

    fn err_with(text: &str, table: &MacroTable) -> (String, String) {
        match run_with(text, table) {
            Ok(p) => panic!("expected an error, got {:?}", p.text),
            Err(d) => {
                let span = d.span.expect("error has a span");
                let at = if span.file == FileId(0) {
                    text.get(span.start as usize..span.end as usize)
                        .unwrap_or("")
                        .to_string()
                } else {
                    format!("<file {}>", span.file.0)
                };
                (d.message, at)
            }
        }
    }

    fn cond(c: &str) -> bool {
        match out(&format!("%( {c} %? yes %: no %)")).as_str() {
            "yes" => true,
            "no" => false,
            other => panic!("unexpected output {other:?}"),
        }
    }

    // --- plain text and conditionals ---------------------------------------

    #[test]
    fn plain_text_is_unchanged() {
        let text = "probe begin {\n\tprintf(\"%d\\n\", 1 + $x->y)\n}\n";
        let p = run(text).unwrap();
        assert_eq!(p.text, text);
        assert_eq!(p.span(7, 12), Span::new(FileId(0), 7, 12));
        assert!(p.expansion_at(3).is_none());
    }

    #[test]
    fn comments_become_blanks() {
        let text = "a # one\nb // two\nc /* three\n */ d";
        let p = run(text).unwrap();
        assert_eq!(p.text.len(), text.len());
        assert_eq!(p.text.matches('\n').count(), 3);
        assert_eq!(squeeze(&p.text), "a b c d");
    }

    #[test]
    fn conditional_keeps_branch_in_place() {
        let text = "x %( arch == \"x86_64\" %?\n  then1 then2\n%:\n  else1\n%) y";
        let p = run(text).unwrap();
        assert_eq!(p.text.len(), text.len());
        assert_eq!(p.text.matches('\n').count(), text.matches('\n').count());
        assert_eq!(squeeze(&p.text), "x then1 then2 y");
        let at = p.text.find("then2").unwrap();
        assert_eq!(&text[at..at + 5], "then2");
        assert_eq!(p.span(at, at + 5), Span::new(FileId(0), at, at + 5));

        let p = run("%( arch == \"arm\" %? a %: b\n %)").unwrap();
        assert_eq!(squeeze(&p.text), "b");
        assert_eq!(p.text.find('b'), Some(25));
    }

    #[test]
    fn else_is_optional() {
        assert_eq!(out("a %( 1 == 1 %? b %) c"), "a b c");
        assert_eq!(out("a %( 1 == 0 %? b %) c"), "a c");
    }

    #[test]
    fn nested_conditionals() {
        let text =
            "%( 1 == 1 %? A %( 2 == 3 %? B %: C %( 1 < 2 %? D %) %) E %: F %( 1==1 %? G %) %)";
        assert_eq!(out(text), "A C D E");
        let text = "%( 1 == 0 %? A %( 2 == 2 %? B %: C %) %: F %( 1==1 %? G %: H %) %)";
        assert_eq!(out(text), "F G");
    }

    #[test]
    fn conditionals_anywhere() {
        let text = "probe kernel.function(\"a\") %( 1 == 1 %? , kernel.function(\"b\") %) { x = %( 1 == 0 %? 1 %: 2 %) + 3 }";
        assert_eq!(
            out(text),
            "probe kernel.function(\"a\") , kernel.function(\"b\") { x = 2 + 3 }"
        );
    }

    #[test]
    fn pp_tokens_in_strings_comments_and_embedded_code_are_left_alone() {
        let text = "x = \"%( %? %)\" # %( nope\n/* %) */ %{ %( %: %} // %?";
        let p = run(text).unwrap();
        assert_eq!(squeeze(&p.text), "x = \"%( %? %)\" %{ %( %: %}");
        assert_eq!(p.text.len(), text.len());
    }

    #[test]
    fn untaken_branch_is_only_scanned() {
        // An unterminated string ends at the end of its line; stap lets it be.
        assert_eq!(
            out("%( 1 == 0 %? \"unclosed\n @nosuch(,,) é ` %: ok %)"),
            "ok"
        );
        // Malformed macro uses are ignored there too.
        let t = lib(&["@define two(a, b) %( @a @b %)"]);
        assert_eq!(out_lib("%( 1 == 0 %? @two(1) x %: ok %)", &t), "ok");
    }

    #[test]
    fn condition_kinds() {
        assert!(cond("kernel_v >= \"6.18\""));
        assert!(!cond("kernel_v > \"6.18.44\""));
        assert!(cond("kernel_v == \"6.18.44\""));
        assert!(cond("kernel_v > \"6.2\""));
        assert!(cond("kernel_v >= \"2.6.32\""));
        assert!(!cond("kernel_v < \"6.2\""));
        assert!(cond("kernel_vr == \"6.18.44*\""));
        assert!(cond("kernel_vr != \"5.*\""));
        assert!(cond("kernel_vr > \"6.18.44\""));
        assert!(cond("arch == \"x86_*\""));
        assert!(cond("arch != \"i?86\""));
        assert!(!cond("arch == \"arm64\""));
        assert!(cond("runtime == \"kernel\""));
        assert!(cond("runtime != \"bpf\""));
        assert!(cond("systemtap_v >= \"4.8\""));
        assert!(cond("systemtap_v < \"5.0\""));
        assert!(cond("systemtap_privilege == \"stapdev\""));
        assert!(cond("systemtap_privilege != \"stapusr\""));
        assert!(cond("guru_mode == 1"));
        assert!(!cond("guru_mode != 1"));
        assert!(cond("CONFIG_64BIT == \"y\""));
        assert!(cond("CONFIG_NFS_FS == \"[ym]\""));
        assert!(!cond("CONFIG_NFS_FS == \"y\""));
        assert!(cond("CONFIG_UNDEFINED == \"\""));
        assert!(cond("CONFIG_UNDEFINED != \"y\""));
        assert!(cond("CONFIG_UNDEFINED == 0"));
        assert!(cond("CONFIG_NR_CPUS >= 64"));
        assert!(cond("CONFIG_HZ == 1000"));
        assert!(cond("CONFIG_NR_CPUS >= CONFIG_SPLIT_PTLOCK_CPUS"));
        assert!(cond("CONFIG_64BIT != CONFIG_NFS_FS"));
        assert!(cond("\"abc\" < \"abd\""));
        assert!(cond("\"b\" >= \"a\""));
        assert!(!cond("\"a\" == \"a*\""));
        assert!(cond("10 > 9"));
        assert!(cond("0x10 == 16"));
        assert!(cond("$# == 0"));
        assert!(cond("@# == \"0\""));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert!(cond("1 == 1 || 1 == 0 && 1 == 0"));
        assert!(!cond("1 == 0 && 1 == 1 || 1 == 0"));
        assert!(cond("1 == 0 && 1 == 1 || 1 == 1"));
        assert!(cond(
            "arch == \"x86_64\" && kernel_vr >= \"4.17.0\" || arch == \"arm64\" && kernel_vr >= \"4.19.0\""
        ));
    }

    // --- macros --------------------------------------------------------------

    #[test]
    fn simple_macro() {
        let text = "@define N %( 42 %)\nx = @N + 1";
        let p = run(text).unwrap();
        assert_eq!(squeeze(&p.text), "x = 42 + 1");
        assert!(p.text.starts_with("                  \n"));
        assert_eq!(p.text.matches('\n').count(), 1);
    }

    #[test]
    fn macro_with_arguments() {
        let text = "@define add(a, b) %( (@a + @b) %)\nx = @add(f(1, 2), y[3, 4])";
        assert_eq!(out(text), "x = (f(1, 2) + y[3, 4])");
    }

    #[test]
    fn nested_macros_and_conditionals_in_bodies() {
        let text = "@define one %( 1 %)\n@define two %( (@one + @one) %)\n\
                    @define pick(a, b) %( %( arch == \"x86_64\" %? @a %: @b %) %)\n\
                    x = @pick(@two, 0)";
        assert_eq!(out(text), "x = (1 + 1)");
    }

    #[test]
    fn arguments_see_the_callers_parameters() {
        let text = "@define inner(v) %( [@v] %)\n@define outer(v, w) %( @inner(@w + @v) %)\nx = @outer(1, 2)";
        assert_eq!(out(text), "x = [2 + 1]");
    }

    #[test]
    fn adjacency_is_kept_and_tokens_never_fuse() {
        assert_eq!(
            run("@define f(x) %( @x->y %)\n@f($p)").unwrap().text.trim(),
            "$p->y"
        );
        assert_eq!(run("@define p %( a %)\n@p@p").unwrap().text.trim(), "a a");
        assert_eq!(
            run("@define m %( - %)\nx = 1 -@m 2").unwrap().text.trim(),
            "x = 1 - - 2"
        );
        assert_eq!(run("@define n %( 5 %)\n@n()").unwrap().text.trim(), "5()");
    }

    #[test]
    fn parameterless_macro_leaves_parentheses() {
        assert_eq!(out("@define f %( g %)\n@f(1, 2)"), "g(1, 2)");
    }

    #[test]
    fn macros_are_visible_after_their_definition() {
        let (msg, at) = err("x = @late\n@define late %( 1 %)");
        assert!(msg.contains("unknown operator '@late'"), "{msg}");
        assert_eq!(at, "@late");
    }

    #[test]
    fn define_in_untaken_branch_defines_nothing() {
        let (msg, _) = err("%( 1 == 0 %? @define m %( 1 %) %)\nx = @m");
        assert!(msg.contains("unknown operator '@m'"), "{msg}");
        assert_eq!(out("%( 1 == 1 %? @define m %( 1 %) %)\nx = @m"), "x = 1");
    }

    #[test]
    fn builtin_atwords_pass_through() {
        let text = "x = @cast(p, \"t\")->a + @var(\"v\") + @defined($a) + @entry($b) + @count(s) + @hist_log(s) + @const(\"X\") + @kderef";
        assert_eq!(out(text), text);
    }

    #[test]
    fn macro_named_like_a_builtin_warns_and_wins() {
        let p = run("@define var(x) %( @x %)\ny = @var(3)").unwrap();
        assert_eq!(squeeze(&p.text), "y = 3");
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].message.contains("built-in operator '@var'"));
    }

    #[test]
    fn library_macros() {
        let t = lib(&[
            "// comment\n@define choose_defined(a, b) %(\n ( @defined(@a) ? (@a) : (@b) )\n%)\n",
            "%( arch == \"x86_64\" %? @define prefix %( \"__x64_\" %) %: @define prefix %( \"\" %) %)\n\
             @define uses_local %( @helper %)\n@define helper %( lib_helper %)",
        ]);
        assert_eq!(t.len(), 4);
        assert_eq!(t.get("prefix").unwrap().body.trim(), "\"__x64_\"");
        assert_eq!(t.get("choose_defined").unwrap().params, vec!["a", "b"]);
        assert_eq!(
            out_lib("x = @choose_defined($p, 0) . @prefix", &t),
            "x = ( @defined($p) ? ($p) : (0) ) . \"__x64_\""
        );
        // A file macro shadows a library one, but a library macro's body
        // only sees library macros.
        assert_eq!(
            out_lib("@define helper %( mine %)\n@helper @uses_local", &t),
            "mine lib_helper"
        );
    }

    #[test]
    fn library_macro_conditions_see_the_use_site() {
        let t = lib(&["@define _IS_SREG %( arch == \"x86_64\" && kernel_vr >= \"4.17.0\" %)"]);
        let text = "%( @_IS_SREG %? a %: b %)";
        let p = run_with(text, &t).unwrap();
        assert_eq!(squeeze(&p.text), "a");
        assert_eq!(p.text.len(), text.len());
    }

    #[test]
    fn expansion_offsets_map_back() {
        let text = "@define long_name(a) %( @a + @a + @a %)\nx = @long_name(\n  1\n)\ny";
        let p = run(text).unwrap();
        let inv_start = text.find("@long_name(").unwrap();
        let inv_end = text.find(")\ny").unwrap() + 1;
        let y_in = text.rfind('y').unwrap();
        // Lines are kept after the expansion.
        assert_eq!(p.text.matches('\n').count(), text.matches('\n').count());
        let y_out = p.text.rfind('y').unwrap();
        assert_eq!(
            p.text[..y_out].matches('\n').count(),
            text[..y_in].matches('\n').count()
        );
        let exp_start = p.text.find("1 + 1").unwrap();
        assert_eq!(exp_start, inv_start);
        let inv = Span::new(FileId(0), inv_start, inv_end);
        assert_eq!(p.span(exp_start, exp_start + 1), inv);
        assert_eq!(p.span(exp_start + 4, exp_start + 5), inv);
        assert_eq!(p.expansion_at(exp_start + 2), Some(inv));
        assert_eq!(
            p.span(y_out, y_out + 1),
            Span::new(FileId(0), y_in, y_in + 1)
        );
        assert_eq!(p.span(0, 3), Span::new(FileId(0), 0, 3));
        // A span starting before the expansion and ending inside it.
        let x = p.text.find('x').unwrap();
        assert_eq!(p.span(x, exp_start + 3), Span::new(FileId(0), x, inv_end));
        // Offsets past the end clamp to the end of the input.
        assert_eq!(
            p.span(p.text.len(), p.text.len() + 1),
            Span::new(FileId(0), text.len(), text.len())
        );
        assert_eq!(p.original_offset(y_out), y_in);
    }

    #[test]
    fn shorter_and_longer_expansions() {
        let text = "@define s %( 1 %)\n@define l %( aaaa + bbbb + cccc %)\nx = @s + @l; z";
        let p = run(text).unwrap();
        assert_eq!(squeeze(&p.text), "x = 1 + aaaa + bbbb + cccc; z");
        let z_out = p.text.rfind('z').unwrap();
        let z_in = text.rfind('z').unwrap();
        assert_eq!(
            p.span(z_out, z_out + 1),
            Span::new(FileId(0), z_in, z_in + 1)
        );
        let semi = p.text.find(';').unwrap();
        assert_eq!(p.original_offset(semi), text.find(';').unwrap());
        let b = p.text.find("bbbb").unwrap();
        let l_in = text.find("@l").unwrap();
        assert_eq!(p.span(b, b + 4), Span::new(FileId(0), l_in, l_in + 2));
    }

    // --- errors ------------------------------------------------------------

    #[test]
    fn conditional_errors() {
        let (m, at) = err("a %( 1 == 1 %? b");
        assert!(m.contains("unterminated conditional"), "{m}");
        assert_eq!(at, "%(");
        let (m, at) = err("a %( 1 == 0 %? b\n\n");
        assert!(m.contains("unterminated conditional"), "{m}");
        assert_eq!(at, "%(");
        let (m, at) = err("%( 1 == 1 b %)");
        assert!(m.contains("expected '&&', '||' or '%?'"), "{m}");
        assert_eq!(at, "b");
        let (m, at) = err("%( 1 == ");
        assert!(m.contains("incomplete condition"), "{m}");
        assert_eq!(at, "%(");
        let (m, at) = err("%( 1 == 1");
        assert!(m.contains("expected '%?'"), "{m}");
        assert_eq!(at, "%(");
        let (m, at) = err("a %) b");
        assert!(m.contains("misplaced '%)'"), "{m}");
        assert_eq!(at, "%)");
        let (m, at) = err("a %: b");
        assert!(m.contains("misplaced '%:'"), "{m}");
        assert_eq!(at, "%:");
        let (m, at) = err("a %? b");
        assert!(m.contains("misplaced '%?'"), "{m}");
        assert_eq!(at, "%?");
        let (m, at) = err("%( 1 == 1 %? a %? b %)");
        assert!(m.contains("misplaced '%?'"), "{m}");
        assert_eq!(at, "%?");
        let (m, at) = err("%( 1 == 1 %? a %: b %: c %)");
        assert!(m.contains("duplicate '%:'"), "{m}");
        assert_eq!(at, "%:");
    }

    #[test]
    fn condition_errors() {
        let (m, at) = err("%( foo == 1 %? a %)");
        assert!(m.contains("expected 'arch', 'kernel_v'"), "{m}");
        assert_eq!(at, "foo");
        let (m, at) = err("%( @defined($x) %? a %)");
        assert!(m.contains("expected 'arch'"), "{m}");
        assert_eq!(at, "@defined");
        let (m, at) = err("%( arch < \"x\" %? a %)");
        assert!(m.contains("expected '==' or '!='"), "{m}");
        assert_eq!(at, "<");
        let (m, at) = err("%( kernel_v < \"6.*\" %? a %)");
        assert!(m.contains("wildcards"), "{m}");
        assert_eq!(at, "<");
        let (m, at) = err("%( kernel_v = \"6\" %? a %)");
        assert!(m.contains("comparison operator"), "{m}");
        assert_eq!(at, "=");
        let (m, at) = err("%( kernel_v == 6 %? a %)");
        assert!(m.contains("expected a string literal"), "{m}");
        assert_eq!(at, "6");
        let (m, at) = err("%( CONFIG_64BIT == 1 %? a %)");
        assert!(m.contains("not a number"), "{m}");
        assert_eq!(at, "CONFIG_64BIT");
        let (m, _) = err("%( guru_mode == 2 %? a %)");
        assert!(m.contains("0 or 1"), "{m}");
        let (m, at) = err("%( \"a\" == 1 %? a %)");
        assert!(m.contains("string literal"), "{m}");
        assert_eq!(at, "1");
        let (m, at) = err("%( 1 == \"a\" %? a %)");
        assert!(m.contains("number"), "{m}");
        assert_eq!(at, "\"a\"");
        let (m, at) = err("%( $1 == 1 %? a %)");
        assert_eq!(m, "command line argument index 1 out of range [1-0]");
        assert_eq!(at, "$1");
    }

    // --- command-line arguments -----------------------------------------------

    fn with_args(text: &str, args: &[&str]) -> Result<Preprocessed, Diagnostic> {
        let config = PpConfig {
            args: args.iter().map(|a| a.to_string()).collect(),
            ..config()
        };
        preprocess(FileId(0), text, &config, &MacroTable::new())
    }

    fn out_args(text: &str, args: &[&str]) -> String {
        squeeze(
            &with_args(text, args)
                .unwrap_or_else(|d| panic!("{d:?}"))
                .text,
        )
    }

    #[test]
    fn arguments_are_substituted() {
        let args = ["5", "a \"q\" \\ b", "syscall.open", "-3"];
        assert_eq!(
            out_args("x = $1 + $4; s = @2 . @1; n = $# + @#", &args),
            r#"x = 5 + -3; s = "a \"q\" \\ b" . "5"; n = 4 + "4""#
        );
        // Unquoted means any tokens, a probe point as well.
        assert_eq!(out_args("probe $3 { }", &args), "probe syscall.open { }");
        // Next to other tokens, a separating blank keeps them apart.
        assert_eq!(out_args("x=$1$1", &args), "x=5 5");
        // Inside a macro body, the argument of the run, not of the macro.
        assert_eq!(
            out_args("@define m(a) %( @a + $1 %) y = @m($4)", &args),
            "y = -3 + 5"
        );
        // Strings and comments are left alone.
        assert_eq!(out_args("s = \"$1\" # $2", &args), "s = \"$1\"");
    }

    #[test]
    fn arguments_in_conditions() {
        assert_eq!(out_args("%( $# > 1 %? many %: few %)", &["a", "b"]), "many");
        assert_eq!(out_args("%( $# > 1 %? many %: few %)", &["a"]), "few");
        assert_eq!(out_args("%( $1 >= 10 %? big %: small %)", &["12"]), "big");
        assert_eq!(out_args("%( @1 == \"on\" %? y %: n %)", &["on"]), "y");
        // argv.stp's pattern: an index past the end in an untaken branch.
        assert_eq!(
            out_args("g = %( $# >= 2 %? @2 %: \"\" %)", &["a"]),
            "g = \"\""
        );
    }

    #[test]
    fn argument_errors_point_at_the_reference() {
        let text = "probe begin { x = $1 + $3 }";
        let d = with_args(text, &["1", "2"]).unwrap_err();
        assert_eq!(
            d.message,
            "command line argument index 3 out of range [1-2]"
        );
        let span = d.span.unwrap();
        assert_eq!(&text[span.start as usize..span.end as usize], "$3");
        assert!(with_args("x = @0", &["1"]).is_err());
        // A lexical error in the argument's text lands on the `$1` and
        // names the argument.
        let text = "x = $1";
        let d = with_args(text, &["\"open"]).unwrap_err();
        let span = d.span.unwrap();
        assert_eq!(&text[span.start as usize..span.end as usize], "$1");
        assert_eq!(d.notes, ["$1 is command-line argument 1, \"\\\"open\""]);
    }

    #[test]
    fn argument_expansions_map_back() {
        let text = "x = $1 +\n y";
        let p = with_args(text, &["abc"]).unwrap();
        let at = p.text.find("abc").unwrap();
        assert_eq!(p.span(at, at + 3), Span::new(FileId(0), 4, 6));
        assert_eq!(
            p.note_at(at),
            Some("$1 is command-line argument 1, \"abc\"")
        );
        let y = p.text.find('y').unwrap();
        assert_eq!(p.span(y, y + 1), Span::new(FileId(0), 10, 11));
        assert_eq!(p.note_at(y), None);
    }

    #[test]
    fn lexical_errors() {
        let (m, at) = err("x = \"abc\ny");
        assert!(m.contains("unterminated string"), "{m}");
        assert_eq!(at, "\"abc");
        let (m, at) = err("x /* abc");
        assert!(m.contains("unterminated comment"), "{m}");
        assert_eq!(at, "/* abc");
        let (m, at) = err("%{ abc");
        assert!(m.contains("unterminated embedded code"), "{m}");
        assert_eq!(at, "%{ abc");
        let (m, at) = err("x = 1 \u{7} 2");
        assert!(m.contains("unexpected character"), "{m}");
        assert_eq!(at, "\u{7}");
    }

    #[test]
    fn define_errors() {
        let (m, at) = err("@define %( 1 %)");
        assert!(m.contains("macro name"), "{m}");
        assert_eq!(at, "%(");
        let (m, at) = err("@define probe %( 1 %)");
        assert!(m.contains("macro name"), "{m}");
        assert_eq!(at, "probe");
        let (m, at) = err("@define m 1");
        assert!(m.contains("expected '%(' or '('"), "{m}");
        assert_eq!(at, "1");
        let (m, at) = err("@define m(a b) %( %)");
        assert!(m.contains("expected ',' or ')'"), "{m}");
        assert_eq!(at, "b");
        let (m, at) = err("@define m(a, 1) %( %)");
        assert!(m.contains("parameter name"), "{m}");
        assert_eq!(at, "1");
        let (m, at) = err("@define m(a) x");
        assert!(m.contains("expected '%('"), "{m}");
        assert_eq!(at, "x");
        let (m, at) = err("@define m %( 1 %( 2 %)");
        assert!(m.contains("missing '%)'"), "{m}");
        assert_eq!(at, "m");
        let (m, at) = err("@define m %( 1 %)\n@define m %( 2 %)");
        assert!(m.contains("redefine macro '@m'"), "{m}");
        assert_eq!(at, "m");
        let (m, at) = err("@define define %( 1 %)");
        assert!(m.contains("redefine '@define'"), "{m}");
        assert_eq!(at, "define");
        let (m, at) = err("@define");
        assert!(m.contains("macro name"), "{m}");
        assert_eq!(at, "@define");
        let (m, at) = err("@define m %( @define n %( 1 %) %)\n@m");
        assert!(m.contains("not allowed inside a macro body"), "{m}");
        assert_eq!(at, "@define");
    }

    #[test]
    fn invocation_errors() {
        let pre = "@define two(a, b) %( @a @b %)\n";
        let (m, at) = err(&format!("{pre}@two(1, 2, 3)"));
        assert!(
            m.contains("too many arguments for macro '@two' (expected 2)"),
            "{m}"
        );
        assert_eq!(at, ",");
        let (m, at) = err(&format!("{pre}@two(1)"));
        assert!(m.contains("too few arguments"), "{m}");
        assert_eq!(at, ")");
        let (m, at) = err(&format!("{pre}@two + 1"));
        assert!(
            m.contains("expected '(' in invocation of macro '@two' taking 2 parameters"),
            "{m}"
        );
        assert_eq!(at, "+");
        let (m, at) = err(&format!("{pre}@two(1, (2"));
        assert!(m.contains("end of this invocation"), "{m}");
        assert_eq!(at, "@two");
        let (m, at) = err("x = @nosuch(1)");
        assert!(m.contains("unknown operator '@nosuch'"), "{m}");
        assert_eq!(at, "@nosuch");
        let (m, at) = err("@define rec %( @rec %)\nx = @rec");
        assert!(m.contains("nested too deeply"), "{m}");
        assert_eq!(at, "@rec");
        let (m, _) = err(
            "@define a %( @b @b @b @b %)\n@define b %( @c @c @c @c %)\n@define c %( @d @d @d @d %)\n\
             @define d %( @e @e @e @e %)\n@define e %( @f @f @f @f %)\n@define f %( @g @g @g @g %)\n\
             @define g %( @h @h @h @h %)\n@define h %( @i @i @i @i %)\n@define i %( @j @j @j @j %)\n\
             @define j %( @k @k @k @k %)\n@define k %( @l @l @l @l %)\n@define l %( x x x x %)\n\
             %( 1 == 0 %? @a %)",
        );
        assert!(m.contains("too large"), "{m}");
    }

    #[test]
    fn errors_in_macro_bodies_name_the_expansion() {
        let d = run("@define m %( %( foo == 1 %? a %) %)\n\nx = @m").unwrap_err();
        assert!(d.message.contains("expected 'arch'"));
        assert!(d.notes.iter().any(|n| n.contains("'@m'")), "{:?}", d.notes);
        assert!(
            d.notes.iter().any(|n| n.contains("line 3, column 5")),
            "{:?}",
            d.notes
        );
        // Errors in library bodies point into the library file.
        let t = lib(&["@define bad %( %( foo == 1 %? a %) %)"]);
        let (m, at) = err_with("@bad", &t);
        assert!(m.contains("expected 'arch'"), "{m}");
        assert_eq!(at, "<file 100>");
        let d = run_with("@bad", &t).unwrap_err();
        let span = d.span.unwrap();
        assert_eq!(
            &"@define bad %( %( foo == 1 %? a %) %)"[span.start as usize..span.end as usize],
            "foo"
        );
    }

    #[test]
    fn library_file_errors() {
        let mut t = MacroTable::new();
        let d = t
            .add_library_file(FileId(7), "@define a %( 1 %)\nstray", &config())
            .unwrap_err();
        assert!(d
            .message
            .contains("unexpected token in a library macro file"));
        assert_eq!(d.span, Some(Span::new(FileId(7), 18, 23)));
        assert!(t.is_empty());
        t.add_library_file(FileId(8), "@define a %( 1 %)", &config())
            .unwrap();
        let d = t
            .add_library_file(FileId(9), "@define b %( 2 %)\n@define a %( 3 %)", &config())
            .unwrap_err();
        assert!(d
            .message
            .contains("duplicate definition of library macro '@a'"));
        // Nothing of the rejected file was added.
        assert!(t.get("b").is_none());
        assert_eq!(t.len(), 1);
    }

    /// Whatever the input, no panic, and every span stays inside the input.
    #[test]
    fn no_panics_on_fragments() {
        let table = lib(&["@define L(a) %( [@a] %)\n@define E %( %)"]);
        let corpus = "@define m(a, b) %( %( arch == \"x86_64\" %? @a %: @b %) %)\n\
                      probe begin { x = @m(1, (2, 3)) + @L(@m(4, 5)) @E; \"s\\\"t\" }\n\
                      %( kernel_v >= \"6\" && CONFIG_X == \"y\" || 1 < 2 %? a %: b %) # c\n\
                      /* c */ %{ e %} @cast(p, \"t\")->x é $1 @2 $# @#\n";
        let bytes = corpus.as_bytes();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let a = (next() as usize) % bytes.len();
            let b = a + (next() as usize) % (bytes.len() - a + 1);
            // Cut on character boundaries only.
            let (Some(piece), Some(piece2)) = (corpus.get(a..b), corpus.get(b..)) else {
                continue;
            };
            for text in [piece.to_string(), format!("{piece2}{piece}")] {
                match run_with(&text, &table) {
                    Ok(p) => {
                        for o in 0..=p.text.len() + 1 {
                            let s = p.span(o, o + 3);
                            assert!(s.start <= s.end && s.end as usize <= text.len());
                        }
                    }
                    Err(d) => {
                        if let Some(s) = d.span {
                            if s.file == FileId(0) {
                                assert!(s.start <= s.end && s.end as usize <= text.len());
                            }
                        }
                    }
                }
            }
        }
    }
}
