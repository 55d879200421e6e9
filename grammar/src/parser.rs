//! Pest parse tree -> [`ast`].
//!
//! The grammar lives in `stap.pest`. Binary operators come out of it as a flat
//! list and get stap's precedence here (see [`binary_precedence`]).

use crate::ast::*;
use crate::diag::Diagnostic;
use crate::preprocess::Preprocessed;
use crate::source::{FileId, Span};
use pest::iterators::Pair;
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "stap.pest"]
struct StapParser;

type P<'a> = Pair<'a, Rule>;

/// Longest run of prefix or binary operators in one expression: every later
/// pass recurses over expressions, so depth is bounded here.
const MAX_CHAIN: usize = 1000;

/// Parse one preprocessed file.
pub fn parse(file: FileId, pre: &Preprocessed) -> Result<File, Diagnostic> {
    check_nesting(pre)?;
    let pairs = StapParser::parse(Rule::file, &pre.text).map_err(|e| syntax_error(pre, e))?;
    let b = Builder { pre };
    let mut items = Vec::new();
    for pair in pairs
        .into_iter()
        .next()
        .into_iter()
        .flat_map(|p| p.into_inner())
    {
        match pair.as_rule() {
            Rule::EOI => {}
            _ => items.extend(b.item(pair)?),
        }
    }
    Ok(File { id: file, items })
}

/// Most probe points one written point may expand to (`{a,b}.{a,b}...`
/// doubles with each group).
const MAX_EXPANSION: usize = 10_000;

/// Deepest bracket nesting accepted. pest runs without its stack guard
/// (it costs a sixth of the parse time), so depth is bounded here, before
/// the recursive descent starts.
const MAX_NESTING: usize = 100;

/// Refuse brackets nested deeper than [`MAX_NESTING`] (strings and
/// embedded C are skipped; comments are already blanks), and statements
/// nested as deep without brackets: a run of more than [`MAX_NESTING`]
/// `if`/`else`/`while`/`for`/`foreach` with no `;`, `{` or `}` between
/// them (`if (a) if (b) ...`) would recurse as deep in the parser.
fn check_nesting(pre: &Preprocessed) -> Result<(), Diagnostic> {
    let b = pre.text.as_bytes();
    let mut depth = 0usize;
    let mut chain = 0usize;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() || b[i] == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            if matches!(
                &b[start..i],
                b"if" | b"else" | b"while" | b"for" | b"foreach"
            ) {
                chain += 1;
                if chain > MAX_NESTING {
                    return Err(Diagnostic::error(
                        pre.span(start, i),
                        format!("statements nested more than {MAX_NESTING} deep"),
                    ));
                }
            }
            continue;
        }
        match b[i] {
            b';' => chain = 0,
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'%' if b.get(i + 1) == Some(&b'{') => {
                while i + 1 < b.len() && !(b[i] == b'%' && b[i + 1] == b'}') {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                if b[i] == b'{' {
                    chain = 0;
                }
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Diagnostic::error(
                        pre.span(i, i + 1),
                        format!("brackets nested more than {MAX_NESTING} deep"),
                    ));
                }
            }
            b')' | b']' | b'}' => {
                if b[i] == b'}' {
                    chain = 0;
                }
                depth = depth.saturating_sub(1)
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Turn pest's error into ours: the position plus a readable expectation.
fn syntax_error(pre: &Preprocessed, e: pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let found = describe_found(&pre.text[pos.min(pre.text.len())..]);
    let message = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut expected: Vec<&str> = positives.iter().filter_map(|r| rule_name(*r)).collect();
            expected.sort();
            expected.dedup();
            if expected.contains(&"end of input") && found == "'}'" {
                "parse error: unexpected '}' (no block is open here)".to_string()
            } else if expected.is_empty() {
                format!("parse error: unexpected {found}")
            } else {
                format!(
                    "parse error: expected {}, found {found}",
                    join_or(&expected)
                )
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    let mut message = message;
    if let Some(hint) = unterminated_hint(&pre.text[pos.min(pre.text.len())..]) {
        message = hint.to_string();
    }
    with_arg_note(pre, pos, Diagnostic::error(pre.span(pos, pos + 1), message))
}

/// Name the command-line argument an error at output offset `pos` came
/// from: the caret is under `$1`, the offending text is its value.
fn with_arg_note(pre: &Preprocessed, pos: usize, d: Diagnostic) -> Diagnostic {
    match pre.note_at(pos) {
        Some(note) => d.with_note(note),
        None => d,
    }
}

fn unterminated_hint(rest: &str) -> Option<&'static str> {
    if rest.starts_with('"') {
        Some("unterminated string literal")
    } else if rest.starts_with("/*") {
        Some("unterminated comment")
    } else if rest.starts_with("%{") {
        Some("unterminated embedded code block: missing '%}'")
    } else {
        None
    }
}

fn describe_found(rest: &str) -> String {
    let rest = rest.trim_start_matches([' ', '\t', '\r']);
    if rest.is_empty() {
        return "end of input".into();
    }
    if rest.starts_with('\n') {
        return "end of line".into();
    }
    let tok: String = if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect()
    } else {
        rest.chars().take(1).collect()
    };
    format!("'{tok}'")
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

fn rule_name(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::probe_decl | Rule::kw_probe => "'probe'",
        Rule::function_decl | Rule::kw_function => "'function'",
        Rule::global_decl | Rule::kw_global => "'global'",
        Rule::embedded => "'%{'",
        Rule::block => "'{'",
        Rule::statement | Rule::expr_stmt => "a statement",
        Rule::expr | Rule::ternary | Rule::binary | Rule::unary | Rule::primary | Rule::postfix => {
            "an expression"
        }
        Rule::bin_op => "an operator",
        Rule::assign_op => "an assignment operator",
        Rule::ident => "an identifier",
        Rule::component | Rule::probe_point | Rule::component_name | Rule::pp_group => {
            "a probe point"
        }
        Rule::string_lit | Rule::strings => "a string",
        Rule::number => "a number",
        Rule::pp_literal => "a literal",
        Rule::EOI => "end of input",
        Rule::type_name => "'long' or 'string'",
        Rule::foreach_key | Rule::foreach_keys => "a foreach key",
        Rule::kw_in => "'in'",
        Rule::open_paren => "'('",
        _ => return None,
    })
}

struct Builder<'p> {
    pre: &'p Preprocessed,
}

type R<T> = Result<T, Diagnostic>;

impl<'p> Builder<'p> {
    fn span(&self, p: &P) -> Span {
        let s = p.as_span();
        self.pre.span(s.start(), s.end())
    }

    /// A name, which must not be a keyword.
    fn name(&self, p: &P) -> R<String> {
        let s = p.as_str();
        if is_keyword(s) {
            return Err(self.err(p, format!("unexpected keyword '{s}'")));
        }
        Ok(s.to_string())
    }

    fn err(&self, p: &P, msg: impl Into<String>) -> Diagnostic {
        let d = Diagnostic::error(self.span(p), msg);
        with_arg_note(self.pre, p.as_span().start(), d)
    }

    /// One top-level declaration; `global a, b` gives one item per variable.
    fn item(&self, p: P) -> R<Vec<Item>> {
        Ok(match p.as_rule() {
            Rule::embedded => vec![Item::Embedded(self.embedded(p))],
            Rule::probe_decl => vec![self.probe(p)?],
            Rule::function_decl => vec![Item::Function(self.function(p)?)],
            Rule::global_decl => self.globals(p)?.into_iter().map(Item::Global).collect(),
            _ => vec![],
        })
    }

    fn embedded(&self, p: P) -> Embedded {
        let span = self.span(&p);
        let code = p
            .into_inner()
            .next()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default();
        Embedded { code, span }
    }

    fn probe(&self, p: P) -> R<Item> {
        let span = self.span(&p);
        let mut private = false;
        let mut lists = Vec::new();
        let mut alias_op = None;
        let mut blocks = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::private_kw => private = true,
                Rule::kw_probe => {}
                Rule::probe_point_list => lists.push(self.probe_points(c)?),
                Rule::alias_op => alias_op = Some(c.as_str() == "+="),
                Rule::block => blocks.push(self.block(c)?),
                _ => {}
            }
        }
        let mut blocks = blocks.into_iter();
        let body = blocks.next().unwrap_or(Block {
            stmts: vec![],
            span,
        });
        let second = blocks.next();
        let mut lists = lists.into_iter();
        let first = lists.next().unwrap_or_default();
        Ok(match alias_op {
            None if second.is_some() => {
                return Err(Diagnostic::error(
                    span,
                    "only a probe alias (`probe NAME = ...`) can have a second, epilogue block",
                ))
            }
            None => Item::Probe(Probe {
                points: first,
                body,
                private,
                span,
            }),
            Some(plus) => {
                let (prologue, epilogue) = match (plus, second) {
                    (false, second) => (Some(body), second),
                    (true, None) => (None, Some(body)),
                    (true, Some(_)) => {
                        return Err(Diagnostic::error(
                            span,
                            "an epilogue alias (`+=`) takes one block",
                        ))
                    }
                };
                Item::Alias(ProbeAlias {
                    names: first,
                    points: lists.next().unwrap_or_default(),
                    prologue,
                    epilogue,
                    private,
                    span,
                })
            }
        })
    }

    fn probe_points(&self, p: P) -> R<Vec<ProbePoint>> {
        let mut points = Vec::new();
        for pp in p.into_inner() {
            points.extend(self.probe_point(pp)?);
        }
        Ok(points)
    }

    /// The points one written point stands for: several when it has brace
    /// groups (`a.{b,c}` is `a.b`, `a.c`), in the order written, each
    /// spanning the whole written point. stap's rules: `?`, `!` and
    /// `if (...)` inside a group only when nothing follows the group, and
    /// never both inside and after it.
    fn probe_point(&self, p: P) -> R<Vec<ProbePoint>> {
        let span = self.span(&p);
        let mut points = vec![ProbePoint {
            components: Vec::new(),
            optional: false,
            sufficient: false,
            condition: None,
            span,
        }];
        // A group member with a flag or condition, which must end the point.
        let mut suffixed: Option<Span> = None;
        let mut own_flag = false;
        for c in p.into_inner() {
            let rule = c.as_rule();
            if let (Some(at), Rule::component | Rule::pp_group) = (suffixed, rule) {
                return Err(Diagnostic::error(
                    at,
                    "'?', '!' and 'if (...)' inside braces must end the probe point, \
                     but more components follow the braces",
                ));
            }
            match rule {
                Rule::component => {
                    let comp = self.component(c)?;
                    for pt in &mut points {
                        pt.components.push(comp.clone());
                    }
                }
                Rule::pp_group => {
                    let mut members = Vec::new();
                    for m in c.into_inner() {
                        for pt in self.probe_point(m)? {
                            let has_suffix = pt.optional || pt.sufficient || pt.condition.is_some();
                            if has_suffix && suffixed.is_none() {
                                suffixed = Some(pt.span);
                            }
                            members.push(pt);
                        }
                    }
                    if points.len() * members.len() > MAX_EXPANSION {
                        return Err(Diagnostic::error(
                            span,
                            format!("brace expansion makes more than {MAX_EXPANSION} probe points"),
                        ));
                    }
                    points = points
                        .iter()
                        .flat_map(|head| {
                            members.iter().map(move |m| {
                                let mut pt = head.clone();
                                pt.components.extend(m.components.iter().cloned());
                                pt.optional = m.optional;
                                pt.sufficient = m.sufficient;
                                pt.condition = m.condition.clone();
                                pt
                            })
                        })
                        .collect();
                }
                Rule::pp_flag => {
                    if !own_flag && points.iter().any(|pt| pt.optional || pt.sufficient) {
                        return Err(self.err(&c, "'?' or '!' given both inside and after braces"));
                    }
                    own_flag = true;
                    for pt in &mut points {
                        match c.as_str() {
                            "?" => pt.optional = true,
                            _ => pt.sufficient = true,
                        }
                    }
                }
                Rule::pp_condition => {
                    if points.iter().any(|pt| pt.condition.is_some()) {
                        return Err(self.err(&c, "'if (...)' given both inside and after braces"));
                    }
                    let e = c.into_inner().find(|x| x.as_rule() == Rule::expr);
                    if let Some(e) = e {
                        let cond = self.expr(e)?;
                        for pt in &mut points {
                            pt.condition = Some(cond.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(points)
    }

    fn component(&self, p: P) -> R<Component> {
        let span = self.span(&p);
        let mut name = String::new();
        let mut arg = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::component_name => name = c.as_str().to_string(),
                Rule::pp_literal => {
                    let lit = c
                        .into_inner()
                        .next()
                        .ok_or_else(|| self.err_at(span, "empty literal"))?;
                    arg = Some(self.literal(lit)?);
                }
                _ => {}
            }
        }
        Ok(Component { name, arg, span })
    }

    fn err_at(&self, span: Span, msg: &str) -> Diagnostic {
        Diagnostic::error(span, msg)
    }

    fn literal(&self, p: P) -> R<Literal> {
        Ok(match p.as_rule() {
            Rule::neg_number => {
                let raw = p.as_str()[1..].trim_start();
                Literal::Number(self.number_value(&p, raw)?.wrapping_neg())
            }
            Rule::number => Literal::Number(self.number_value(&p, p.as_str())?),
            Rule::string_lit => Literal::String(self.string_value(&p)?),
            Rule::strings => Literal::String(self.strings_value(p)?),
            _ => return Err(self.err(&p, "expected a literal")),
        })
    }

    /// Adjacent string literals are one string, as in C.
    fn strings_value(&self, p: P) -> R<String> {
        let mut s = String::new();
        for part in p.into_inner() {
            s.push_str(&self.string_value(&part)?);
        }
        Ok(s)
    }

    /// Decimal, `0x` hex and leading-zero octal, as stap reads them; values
    /// above i64::MAX wrap (stap accepts up to 2^64-1).
    fn number_value(&self, p: &P, s: &str) -> R<i64> {
        let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            u64::from_str_radix(hex, 16)
        } else if s.len() > 1 && s.starts_with('0') {
            u64::from_str_radix(&s[1..], 8)
        } else {
            s.parse::<u64>()
        };
        parsed
            .map(|v| v as i64)
            .map_err(|_| self.err(p, format!("number '{s}' out of range or malformed")))
    }

    fn string_value(&self, p: &P) -> R<String> {
        let s = p.as_str();
        let inner = &s[1..s.len() - 1];
        unescape(inner).map_err(|m| self.err(p, m))
    }

    fn function(&self, p: P) -> R<Function> {
        let span = self.span(&p);
        let mut f = Function {
            name: String::new(),
            ret: None,
            params: Vec::new(),
            body: FunctionBody::Script(Block {
                stmts: vec![],
                span,
            }),
            private: false,
            span,
        };
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::private_kw => f.private = true,
                Rule::ident => f.name = self.name(&c)?,
                Rule::type_annot => f.ret = Some(type_of(c)),
                Rule::param => {
                    let pspan = self.span(&c);
                    let mut it = c.into_inner();
                    let name = it
                        .next()
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_default();
                    let ty = it.next().map(type_of);
                    f.params.push(Param {
                        name,
                        ty,
                        span: pspan,
                    });
                }
                Rule::block => f.body = FunctionBody::Script(self.block(c)?),
                Rule::embedded => f.body = FunctionBody::Embedded(self.embedded(c)),
                _ => {}
            }
        }
        Ok(f)
    }

    fn globals(&self, p: P) -> R<Vec<Global>> {
        let mut private = false;
        let mut vars = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::private_kw => private = true,
                Rule::global_var => vars.push(self.global_var(c)?),
                _ => {}
            }
        }
        for v in &mut vars {
            v.private = private;
        }
        Ok(vars)
    }

    fn global_var(&self, p: P) -> R<Global> {
        let span = self.span(&p);
        let mut g = Global {
            name: String::new(),
            size: None,
            array: false,
            wrap: false,
            init: None,
            private: false,
            span,
        };
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => g.name = self.name(&c)?,
                Rule::wrap => g.wrap = true,
                Rule::array_size => {
                    g.array = true;
                    if let Some(n) = c.into_inner().next() {
                        g.size = Some(self.number_value(&n, n.as_str())?);
                    }
                }
                Rule::global_init => {
                    if let Some(lit) = c.into_inner().next() {
                        g.init = Some(self.literal(lit)?);
                    }
                }
                _ => {}
            }
        }
        Ok(g)
    }

    // ------------------------------------------------------------ statements

    fn block(&self, p: P) -> R<Block> {
        let span = self.span(&p);
        let stmts = p
            .into_inner()
            .map(|s| self.statement(s))
            .collect::<R<Vec<_>>>()?;
        Ok(Block { stmts, span })
    }

    fn statement(&self, p: P) -> R<Stmt> {
        let span = self.span(&p);
        let inner = match p.as_rule() {
            Rule::statement => p
                .into_inner()
                .next()
                .ok_or_else(|| self.err_at(span, "empty statement"))?,
            _ => p,
        };
        let kind = match inner.as_rule() {
            Rule::block => StmtKind::Block(self.block(inner)?),
            Rule::empty_stmt => StmtKind::Empty,
            Rule::embedded => StmtKind::Embedded(self.embedded(inner)),
            Rule::if_stmt => {
                let mut it = inner.into_inner().filter(|c| {
                    !matches!(c.as_rule(), Rule::kw_if | Rule::kw_else | Rule::open_paren)
                });
                let cond = self.expr(self.next(&mut it, span)?)?;
                let then = Box::new(self.statement(self.next(&mut it, span)?)?);
                let otherwise = match it.next() {
                    Some(s) => Some(Box::new(self.statement(s)?)),
                    None => None,
                };
                StmtKind::If {
                    cond,
                    then,
                    otherwise,
                }
            }
            Rule::while_stmt => {
                let mut it = inner
                    .into_inner()
                    .filter(|c| !matches!(c.as_rule(), Rule::kw_while | Rule::open_paren));
                let cond = self.expr(self.next(&mut it, span)?)?;
                let body = Box::new(self.statement(self.next(&mut it, span)?)?);
                StmtKind::While { cond, body }
            }
            Rule::for_stmt => {
                let mut it = inner
                    .into_inner()
                    .filter(|c| !matches!(c.as_rule(), Rule::kw_for | Rule::open_paren));
                let mut opt = || -> R<Option<Expr>> {
                    let o = self.next(&mut it, span)?;
                    match o.into_inner().next() {
                        Some(e) => Ok(Some(self.expr(e)?)),
                        None => Ok(None),
                    }
                };
                let init = opt()?;
                let cond = opt()?;
                let step = opt()?;
                let body = Box::new(self.statement(self.next(&mut it, span)?)?);
                StmtKind::For {
                    init,
                    cond,
                    step,
                    body,
                }
            }
            Rule::foreach_stmt => StmtKind::Foreach(Box::new(self.foreach(inner, span)?)),
            Rule::try_stmt => {
                let mut body = None;
                let mut var = None;
                let mut handler = None;
                for c in inner.into_inner() {
                    match c.as_rule() {
                        Rule::block if body.is_none() => body = Some(self.block(c)?),
                        Rule::block => handler = Some(self.block(c)?),
                        Rule::ident => var = Some(self.name(&c)?),
                        _ => {}
                    }
                }
                let empty = Block {
                    stmts: vec![],
                    span,
                };
                StmtKind::Try {
                    body: body.unwrap_or_else(|| empty.clone()),
                    var,
                    handler: handler.unwrap_or(empty),
                }
            }
            Rule::delete_stmt => {
                let e = inner
                    .into_inner()
                    .find(|c| c.as_rule() == Rule::expr)
                    .ok_or_else(|| self.err_at(span, "delete needs an operand"))?;
                StmtKind::Delete(self.expr(e)?)
            }
            Rule::next_stmt => StmtKind::Next,
            Rule::break_stmt => StmtKind::Break,
            Rule::continue_stmt => StmtKind::Continue,
            Rule::return_stmt => {
                let e = inner.into_inner().find(|c| c.as_rule() == Rule::expr);
                StmtKind::Return(match e {
                    Some(e) => Some(self.expr(e)?),
                    None => None,
                })
            }
            Rule::expr_stmt => {
                let e = inner
                    .into_inner()
                    .next()
                    .ok_or_else(|| self.err_at(span, "empty expression"))?;
                StmtKind::Expr(self.expr(e)?)
            }
            r => return Err(self.err_at(span, &format!("unexpected {r:?}"))),
        };
        Ok(Stmt { kind, span })
    }

    fn next<'a>(&self, it: &mut impl Iterator<Item = P<'a>>, span: Span) -> R<P<'a>> {
        it.next()
            .ok_or_else(|| self.err_at(span, "incomplete statement"))
    }

    fn foreach(&self, p: P, span: Span) -> R<Foreach> {
        let head = p
            .clone()
            .into_inner()
            .find(|c| c.as_rule() == Rule::foreach_head)
            .ok_or_else(|| self.err_at(span, "malformed foreach"))?;
        let body_pair = p
            .into_inner()
            .find(|c| c.as_rule() == Rule::statement)
            .ok_or_else(|| self.err_at(span, "foreach needs a body"))?;
        let mut f = Foreach {
            value: None,
            keys: Vec::new(),
            array: Expr {
                kind: ExprKind::Var(String::new()),
                span,
            },
            value_sort: None,
            value_agg: None,
            limit: None,
            body: self.statement(body_pair)?,
        };
        for c in head.into_inner() {
            match c.as_rule() {
                Rule::ident => f.value = Some(self.name(&c)?),
                Rule::foreach_keys => {
                    for k in c.into_inner() {
                        let kspan = self.span(&k);
                        let mut it = k.into_inner();
                        let name = it
                            .next()
                            .map(|n| n.as_str().to_string())
                            .unwrap_or_default();
                        let sort = it.next().map(|s| sort_dir(s.as_str()));
                        f.keys.push(ForeachKey {
                            name,
                            sort,
                            span: kspan,
                        });
                    }
                }
                Rule::foreach_array => f.array = self.foreach_array(c)?,
                Rule::sort_mark => f.value_sort = Some(sort_dir(c.as_str())),
                Rule::sort_agg => {
                    f.value_agg = c.into_inner().next().map(|n| n.as_str().to_string())
                }
                Rule::expr => f.limit = Some(self.expr(c)?),
                _ => {}
            }
        }
        Ok(f)
    }

    /// `arr`, `arr[*, k]` or `@hist_log(s)` after `in`.
    fn foreach_array(&self, p: P) -> R<Expr> {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let first = self.next(&mut it, span)?;
        let base = match first.as_rule() {
            Rule::stat_call => self.stat_call(first)?,
            _ => Expr {
                span: self.span(&first),
                kind: ExprKind::Var(first.as_str().to_string()),
            },
        };
        Ok(match it.next() {
            Some(keys) => Expr {
                span,
                kind: ExprKind::Index {
                    base: Box::new(base),
                    keys: self.index_keys(keys)?,
                },
            },
            None => base,
        })
    }

    // ------------------------------------------------------------ expressions

    fn expr(&self, p: P) -> R<Expr> {
        match p.as_rule() {
            Rule::expr => {
                let span = self.span(&p);
                let mut it = p.into_inner();
                let lhs = self.expr(self.next(&mut it, span)?)?;
                match it.next() {
                    None => Ok(lhs),
                    Some(op) => {
                        let op = assign_op(op.as_str());
                        let rhs = self.expr(self.next(&mut it, span)?)?;
                        Ok(Expr {
                            span,
                            kind: ExprKind::Assign {
                                op,
                                lhs: Box::new(lhs),
                                rhs: Box::new(rhs),
                            },
                        })
                    }
                }
            }
            Rule::ternary => {
                let span = self.span(&p);
                let mut it = p.into_inner();
                let cond = self.expr(self.next(&mut it, span)?)?;
                match it.next() {
                    None => Ok(cond),
                    Some(then) => {
                        let then = self.expr(then)?;
                        let otherwise = self.expr(self.next(&mut it, span)?)?;
                        Ok(Expr {
                            span,
                            kind: ExprKind::Ternary {
                                cond: Box::new(cond),
                                then: Box::new(then),
                                otherwise: Box::new(otherwise),
                            },
                        })
                    }
                }
            }
            Rule::binary => self.binary(p),
            Rule::unary => self.unary(p),
            Rule::postfix => self.postfix(p),
            Rule::primary => self.primary(p),
            Rule::index_key => {
                let inner = p
                    .into_inner()
                    .next()
                    .ok_or_else(|| Diagnostic::bare("empty key"))?;
                if inner.as_rule() == Rule::wildcard {
                    Ok(Expr {
                        span: self.span(&inner),
                        kind: ExprKind::Wildcard,
                    })
                } else {
                    self.expr(inner)
                }
            }
            r => Err(self.err(&p, format!("unexpected {r:?} in expression"))),
        }
    }

    /// Precedence climbing over `unary (op unary)*`.
    fn binary(&self, p: P) -> R<Expr> {
        let mut operands = Vec::new();
        let mut ops = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::bin_op => ops.push((c.as_str().to_string(), self.span(&c))),
                _ => operands.push(self.expr(c)?),
            }
        }
        if ops.len() > MAX_CHAIN {
            return Err(Diagnostic::error(
                ops[0].1,
                "expression has too many operators in a row",
            ));
        }
        let mut operands = operands.into_iter();
        let first = operands
            .next()
            .ok_or_else(|| Diagnostic::bare("empty expression"))?;
        let rest: Vec<((String, Span), Expr)> = ops.into_iter().zip(operands).collect();
        let mut pos = 0;
        self.climb(first, &rest, &mut pos, 0)
    }

    fn climb(
        &self,
        mut lhs: Expr,
        rest: &[((String, Span), Expr)],
        pos: &mut usize,
        min_prec: u8,
    ) -> R<Expr> {
        while let Some(((op, op_span), _)) = rest.get(*pos) {
            let prec = binary_precedence(op);
            if prec < min_prec {
                break;
            }
            let op = op.clone();
            let op_span = *op_span;
            let mut rhs = rest[*pos].1.clone();
            *pos += 1;
            // All of stap's binary operators are left-associative.
            while let Some(((next, _), _)) = rest.get(*pos) {
                if binary_precedence(next) > prec {
                    rhs = self.climb(rhs, rest, pos, prec + 1)?;
                } else {
                    break;
                }
            }
            let span = lhs.span.to(rhs.span);
            lhs = if op == "in" {
                self.in_expr(lhs, rhs, op_span)?
            } else {
                Expr {
                    span,
                    kind: ExprKind::Binary {
                        op: binop(&op),
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                }
            };
        }
        Ok(lhs)
    }

    fn in_expr(&self, key: Expr, array: Expr, op_span: Span) -> R<Expr> {
        match &array.kind {
            ExprKind::Var(_) | ExprKind::Index { .. } | ExprKind::Stat { .. } => {}
            _ => {
                return Err(Diagnostic::error(
                    op_span,
                    "the right side of 'in' must be an array",
                ))
            }
        }
        Ok(Expr {
            span: key.span.to(array.span),
            kind: ExprKind::In {
                keys: vec![key],
                array: Box::new(array),
            },
        })
    }

    fn unary(&self, p: P) -> R<Expr> {
        let mut prefixes = Vec::new();
        let mut operand = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::prefix_op => prefixes.push((c.as_str().to_string(), self.span(&c))),
                _ => operand = Some(self.expr(c)?),
            }
        }
        let mut e = operand.ok_or_else(|| Diagnostic::bare("missing operand"))?;
        if prefixes.len() > MAX_CHAIN {
            return Err(Diagnostic::error(
                prefixes[0].1,
                "expression nested too deeply",
            ));
        }
        for (op, span) in prefixes.into_iter().rev() {
            let span = span.to(e.span);
            let operand = Box::new(e);
            let kind = match op.as_str() {
                "!" => ExprKind::Unary {
                    op: UnOp::Not,
                    operand,
                },
                "~" => ExprKind::Unary {
                    op: UnOp::BitNot,
                    operand,
                },
                "-" => ExprKind::Unary {
                    op: UnOp::Neg,
                    operand,
                },
                "+" => ExprKind::Unary {
                    op: UnOp::Plus,
                    operand,
                },
                "++" | "--" => ExprKind::PreCrement {
                    increment: op == "++",
                    operand,
                },
                // Whether the operand has an address is pass 2's question.
                _ => ExprKind::AddrOf(operand),
            };
            e = Expr { span, kind };
        }
        Ok(e)
    }

    fn postfix(&self, p: P) -> R<Expr> {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let mut e = self.expr(self.next(&mut it, span)?)?;
        for c in it {
            let cspan = self.span(&c);
            match c.as_rule() {
                Rule::chain_step => {
                    let step = c
                        .into_inner()
                        .next()
                        .ok_or_else(|| self.err_at(cspan, "empty step"))?;
                    e = match step.as_rule() {
                        Rule::member_name => {
                            let raw = step.as_str();
                            let name = raw.trim_end_matches('$');
                            let pretty = (raw.len() - name.len()).min(2) as u8;
                            let mut e = self.deref(
                                e,
                                Deref::Member {
                                    name: name.to_string(),
                                    span: cspan,
                                },
                                cspan,
                            )?;
                            if let ExprKind::Dwarf(d) = &mut e.kind {
                                d.pretty = pretty;
                            }
                            e
                        }
                        _ => {
                            let keys = self.index_keys(step)?;
                            self.index(e, keys, cspan)?
                        }
                    };
                }
                Rule::pretty_suffix => match &mut e.kind {
                    ExprKind::Dwarf(d) => d.pretty = c.as_str().len() as u8,
                    _ => return Err(self.err_at(cspan, "'$' suffix needs a target variable")),
                },
                Rule::crement => {
                    e = Expr {
                        span: e.span.to(cspan),
                        kind: ExprKind::PostCrement {
                            increment: c.as_str() == "++",
                            operand: Box::new(e),
                        },
                    }
                }
                _ => {}
            }
        }
        Ok(e)
    }

    fn index_keys(&self, p: P) -> R<Vec<Expr>> {
        p.into_inner().map(|k| self.expr(k)).collect()
    }

    /// `[keys]` after an expression: a DWARF array index or an array lookup.
    fn index(&self, base: Expr, keys: Vec<Expr>, span: Span) -> R<Expr> {
        if matches!(base.kind, ExprKind::Dwarf(_)) {
            if keys.len() != 1 || matches!(keys[0].kind, ExprKind::Wildcard) {
                return Err(Diagnostic::error(
                    span,
                    "a target variable takes exactly one index",
                ));
            }
            let key = keys.into_iter().next().expect("one key");
            return self.deref(base, Deref::Index(key), span);
        }
        match base.kind {
            ExprKind::Var(_) | ExprKind::Stat { .. } => Ok(Expr {
                span: base.span.to(span),
                kind: ExprKind::Index {
                    base: Box::new(base),
                    keys,
                },
            }),
            // Autocast: `(expr)[i]` indexes whatever typed pointer expr holds.
            _ if keys.len() == 1 && !matches!(keys[0].kind, ExprKind::Wildcard) => {
                let key = keys.into_iter().next().expect("one key");
                self.deref(base, Deref::Index(key), span)
            }
            _ => Err(Diagnostic::error(
                span,
                "only arrays and target variables can be indexed",
            )),
        }
    }

    fn deref(&self, base: Expr, step: Deref, span: Span) -> R<Expr> {
        match base.kind {
            ExprKind::Dwarf(mut d) => {
                d.chain.push(step);
                Ok(Expr {
                    span: base.span.to(span),
                    kind: ExprKind::Dwarf(d),
                })
            }
            _ => {
                // Autocast: `p->m` where p holds a typed pointer.
                let full = base.span.to(span);
                Ok(Expr {
                    span: full,
                    kind: ExprKind::Dwarf(Box::new(DwarfValue {
                        base: DwarfBase::Autocast(Box::new(base)),
                        chain: vec![step],
                        pretty: 0,
                    })),
                })
            }
        }
    }

    fn primary(&self, p: P) -> R<Expr> {
        let span = self.span(&p);
        let inner = p
            .into_inner()
            .next()
            .ok_or_else(|| self.err_at(span, "empty"))?;
        let kind = match inner.as_rule() {
            Rule::expr => return self.expr(inner),
            Rule::number => ExprKind::Number(self.number_value(&inner, inner.as_str())?),
            Rule::strings => ExprKind::String(self.strings_value(inner)?),
            Rule::target_var => {
                let s = inner.as_str();
                let body = &s[1..];
                let trimmed = body.trim_end_matches('$');
                let pretty = (body.len() - trimmed.len()) as u8;
                // `$$vars` keeps its leading `$` in the name; a name like
                // `$$foo` that is not one of the context forms is still taken.
                let (name, pretty) = if trimmed.is_empty() {
                    (body.to_string(), 0)
                } else {
                    (trimmed.to_string(), pretty)
                };
                ExprKind::Dwarf(Box::new(DwarfValue {
                    base: DwarfBase::Target(name),
                    chain: vec![],
                    pretty,
                }))
            }
            Rule::at_call => return self.at_call(inner),
            Rule::embedded => ExprKind::Embedded(self.embedded(inner).code),
            Rule::tuple_in => {
                let mut keys = Vec::new();
                let mut array = None;
                for c in inner.into_inner() {
                    match c.as_rule() {
                        Rule::expr => keys.push(self.expr(c)?),
                        Rule::foreach_array => array = Some(self.foreach_array(c)?),
                        _ => {}
                    }
                }
                ExprKind::In {
                    keys,
                    array: Box::new(array.ok_or_else(|| self.err_at(span, "missing array"))?),
                }
            }
            Rule::call => {
                let mut it = inner.into_inner();
                let name = self.name(&self.next(&mut it, span)?)?;
                let args = it.map(|a| self.expr(a)).collect::<R<Vec<_>>>()?;
                ExprKind::Call { name, args }
            }
            Rule::ident => ExprKind::Var(self.name(&inner)?),
            r => return Err(self.err_at(span, &format!("unexpected {r:?}"))),
        };
        Ok(Expr { kind, span })
    }

    /// `@hist_log(s)` after `foreach (k in`.
    fn stat_call(&self, p: P) -> R<Expr> {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.next(&mut it, span)?;
        let op =
            StatOp::from_name(name.as_str()).ok_or_else(|| self.err(&name, "unknown statistic"))?;
        let args = it.map(|a| self.expr(a)).collect::<R<Vec<_>>>()?;
        Self::stat(span, op, args)
    }

    /// `@count(x)`, `@hist_linear(x, lo, hi, step)`, ...: the operand
    /// first, then the statistic's own arguments.
    fn stat(span: Span, op: StatOp, mut args: Vec<Expr>) -> R<Expr> {
        // `@variance(s, shift)`: an optional bit shift (stap 4.x).
        let (ok, want) = match op {
            StatOp::HistLinear => (args.len() == 4, "4 arguments"),
            StatOp::Variance => (matches!(args.len(), 1 | 2), "1 or 2 arguments"),
            _ => (args.len() == 1, "1 argument"),
        };
        if !ok {
            return Err(Diagnostic::error(
                span,
                format!("@{} takes {want}", op.name()),
            ));
        }
        let operand = args.remove(0);
        Ok(Expr {
            span,
            kind: ExprKind::Stat {
                op,
                operand: Box::new(operand),
                args,
            },
        })
    }

    /// `@defined`, `@entry`, `@perf`, `@const` and the other `@name(...)` words.
    fn at_call(&self, p: P) -> R<Expr> {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.next(&mut it, span)?.as_str()[1..].to_string();
        let mut args = it.map(|a| self.expr(a)).collect::<R<Vec<_>>>()?;
        let one = |args: &mut Vec<Expr>| -> R<Expr> {
            if args.len() != 1 {
                return Err(Diagnostic::error(
                    span,
                    format!("@{name} takes one argument"),
                ));
            }
            Ok(args.pop().expect("one"))
        };
        let string_arg = |e: Expr| -> R<String> {
            match e.kind {
                ExprKind::String(s) => Ok(s),
                _ => Err(Diagnostic::error(
                    e.span,
                    format!("@{name} takes a string literal"),
                )),
            }
        };
        // `@cast(addr, "type"[, "module"])` and `@var("name"[, "module"])`
        // with literal strings; any other shape stays a plain `@call`
        // (refused later, as stap refuses it).
        let literal = |e: &Expr| match &e.kind {
            ExprKind::String(s) => Some(s.clone()),
            _ => None,
        };
        let strings: Option<Vec<String>> = args.iter().skip(1).map(literal).collect();
        let dwarf = |base| {
            Ok(Expr {
                span,
                kind: ExprKind::Dwarf(Box::new(DwarfValue {
                    base,
                    chain: vec![],
                    pretty: 0,
                })),
            })
        };
        match (name.as_str(), args.len(), strings) {
            ("cast", 2 | 3, Some(mut s)) => {
                let module = (s.len() == 2).then(|| s.pop().expect("module"));
                let ty = s.pop().expect("type");
                let addr = Box::new(args.swap_remove(0));
                return dwarf(DwarfBase::Cast { addr, ty, module });
            }
            ("var", 1 | 2, Some(mut s)) => {
                if let Some(name) = literal(&args[0]) {
                    let module = s.pop();
                    return dwarf(DwarfBase::Var { name, module });
                }
            }
            (stat, _, _) => {
                if let Some(op) = StatOp::from_name(stat) {
                    return Self::stat(span, op, args);
                }
            }
        }
        let kind = match name.as_str() {
            "defined" => ExprKind::Defined(Box::new(one(&mut args)?)),
            "entry" => ExprKind::Entry(Box::new(one(&mut args)?)),
            "perf" => ExprKind::Perf(string_arg(one(&mut args)?)?),
            "const" => ExprKind::Const(string_arg(one(&mut args)?)?),
            _ => ExprKind::AtCall { name, args },
        };
        Ok(Expr { span, kind })
    }
}

/// stap's reserved words.
pub fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "probe"
            | "global"
            | "function"
            | "if"
            | "else"
            | "foreach"
            | "for"
            | "in"
            | "limit"
            | "return"
            | "delete"
            | "while"
            | "break"
            | "continue"
            | "next"
            | "try"
            | "catch"
            | "private"
    )
}

fn type_of(p: P) -> TypeName {
    if p.as_str().contains("string") {
        TypeName::String
    } else {
        TypeName::Long
    }
}

fn sort_dir(s: &str) -> SortDir {
    if s == "-" {
        SortDir::Desc
    } else {
        SortDir::Asc
    }
}

fn assign_op(s: &str) -> AssignOp {
    match s {
        "=" => AssignOp::Assign,
        "<<<" => AssignOp::StatAdd,
        _ => AssignOp::Op(binop(&s[..s.len() - 1])),
    }
}

fn binop(s: &str) -> BinOp {
    use BinOp::*;
    match s {
        "||" => Or,
        "&&" => And,
        "|" => BitOr,
        "^" => BitXor,
        "&" => BitAnd,
        "==" => Eq,
        "!=" => Ne,
        "<" => Lt,
        "<=" => Le,
        ">" => Gt,
        ">=" => Ge,
        "=~" => RegexMatch,
        "!~" => RegexNoMatch,
        "<<" => Shl,
        ">>" => Shr,
        "." => Concat,
        "+" => Add,
        "-" => Sub,
        "*" => Mul,
        "/" => Div,
        _ => Mod,
    }
}

/// stap's binary precedence, loosest first: `||`, `&&`, `|`, `^`, `&`, `in`,
/// comparisons (incl. `=~`), shifts, `.` concatenation, `+ -`, `* / %`.
fn binary_precedence(op: &str) -> u8 {
    match op {
        "||" => 1,
        "&&" => 2,
        "|" => 3,
        "^" => 4,
        "&" => 5,
        "in" => 6,
        "==" | "!=" | "<" | "<=" | ">" | ">=" | "=~" | "!~" => 7,
        "<<" | ">>" => 8,
        "." => 9,
        "+" | "-" => 10,
        _ => 11,
    }
}

/// An escaped byte: ASCII as its character, a byte above 0x7f as the
/// character that stands for it (see [`crate::bytes`]).
fn byte_or_char(v: u32) -> char {
    match u8::try_from(v) {
        Ok(b) if b >= 0x80 => crate::bytes::byte_char(b),
        _ => char::from_u32(v).unwrap_or('\u{fffd}'),
    }
}

/// Decode stap's string escapes: `\n \t \r \a \b \f \v \\ \" \' \?`, octal
/// `\ooo` and hex `\xhh`. Unknown escapes keep the backslash, as stap's
/// translator passes them on to C.
pub fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("string ends in a backslash".into());
        };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '\\' | '"' | '\'' | '?' => out.push(e),
            '\n' => {}
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(byte_or_char(v & 0xff));
            }
            'x' => {
                let mut v = 0u32;
                let mut n = 0;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(16)) {
                    if n == 2 {
                        break;
                    }
                    v = v * 16 + d;
                    chars.next();
                    n += 1;
                }
                if n == 0 {
                    out.push_str("\\x");
                } else {
                    out.push(byte_or_char(v));
                }
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}
