//! Probe aliases: `probe syscall.openat = dw_syscall.openat !,
//! nd_syscall.openat ? { prologue }` and the like, from the script or the
//! tapset library, expanded until every point is a probe kind's.
//!
//! Input: one probe's points and body. Output: the derived probes, each
//! with its sites and its body wrapped in the prologues and epilogues of
//! the aliases it went through (outermost alias outermost), as stap builds
//! them. `?` and `!` keep stap's meaning at every level: a point ending in
//! `?` that cannot be served (here: most `kernel.function`/`kprobe` ends)
//! gives nothing instead of an error, and one ending in `!` that gave
//! something ends its list, so an alias chain falls through to the variant
//! this kernel serves (the syscall aliases to their `tp_syscall.*` ends).
//!
//! A point matches an alias named by its first components (wildcards
//! allowed in the point); an alias as long as the point is preferred, and
//! otherwise the rest of the point is appended to each of the alias's
//! points (stap's alias suffixes: `foo.return` through `probe foo = bar`).
//! A `syscall.NAME` alias tags the system call tracepoints it reached with
//! the call, whose parameters its handlers then read (probes/syscall.rs).

use crate::library::alias_matches;
use crate::probes::{self, Cx, Site};
use grammar::ast::{BinOp, Block, Expr, ExprKind, ProbeAlias, ProbePoint, Stmt, StmtKind};
use grammar::Diagnostic;
use std::collections::{HashMap, HashSet};

/// Deeper than this, an alias is taken to expand into itself.
const MAX_DEPTH: usize = 32;

/// Every alias known: the script's first, then the library's, each in the
/// order defined (the first definition of a name is the one used).
pub struct Aliases<'a> {
    /// Every name of every alias, in definition order.
    names: Vec<Named<'a>>,
    /// The first definition of each dotted name, into `names`.
    first: HashMap<String, usize>,
    /// The names of every alias of the library, pulled in or not.
    known: &'a [String],
}

struct Named<'a> {
    alias: &'a ProbeAlias,
    comps: Vec<String>,
    key: String,
}

/// A probe after alias expansion: sites of probe kinds and the body.
pub struct Derived {
    pub sites: Vec<Site>,
    pub body: Block,
    /// Set when the script's point is a wildcard that matched several
    /// aliases: such a probe may be left out (with a warning) when its
    /// handler needs what we cannot run, rather than failing the script.
    pub via: Option<Via>,
}

/// The script's wildcard point and the alias it matched.
#[derive(Debug, Clone)]
pub struct Via {
    pub pattern: String,
    pub alias: String,
}

impl<'a> Aliases<'a> {
    pub fn new(defs: Vec<&'a ProbeAlias>, known: &'a [String]) -> Aliases<'a> {
        let mut names = Vec::new();
        let mut first = HashMap::new();
        for alias in defs {
            for n in &alias.names {
                let comps: Vec<String> = n.components.iter().map(|c| c.name.clone()).collect();
                let key = comps.join(".");
                first.entry(key.clone()).or_insert(names.len());
                names.push(Named { alias, comps, key });
            }
        }
        Aliases {
            names,
            first,
            known,
        }
    }

    /// The sites and bodies of a probe's point list.
    pub fn expand(
        &self,
        points: &[ProbePoint],
        body: &Block,
        cx: &mut Cx<'_>,
    ) -> Result<Vec<Derived>, Diagnostic> {
        // Points that reach the same body (no alias, or the same alias
        // path) share one handler, as they did before aliases.
        let mut out: Vec<Derived> = Vec::new();
        for d in self.list(points, body, cx, 0)? {
            if d.sites.is_empty() {
                continue;
            }
            match out.iter_mut().find(|o| o.body == d.body) {
                Some(o) => o.sites.extend(d.sites),
                None => out.push(d),
            }
        }
        Ok(out)
    }

    fn list(
        &self,
        points: &[ProbePoint],
        body: &Block,
        cx: &mut Cx<'_>,
        depth: usize,
    ) -> Result<Vec<Derived>, Diagnostic> {
        let mut out = Vec::new();
        for pt in points {
            let got = match self.point(pt, body, cx, depth) {
                Ok(got) => got,
                // `?`: whatever kept the point from resolving, it is skipped.
                Err(_) if pt.is_optional() => Vec::new(),
                Err(e) => return Err(e),
            };
            let placed = got.iter().any(|d| !d.sites.is_empty());
            out.extend(got);
            if placed && pt.sufficient {
                break;
            }
        }
        Ok(out)
    }

    /// The aliases `pt` goes through, with the components past each name.
    fn matching(&self, pt: &ProbePoint) -> Vec<(&'a ProbeAlias, usize)> {
        let plain = pt
            .components
            .iter()
            .all(|c| c.arg.is_none() && !c.name.contains(['*', '?', '[']));
        if plain {
            // No wildcard: the whole name, else its longest prefix.
            let comps: Vec<&str> = pt.components.iter().map(|c| c.name.as_str()).collect();
            for len in (1..=comps.len()).rev() {
                if let Some(&i) = self.first.get(&comps[..len].join(".")) {
                    return vec![(self.names[i].alias, len)];
                }
            }
            return Vec::new();
        }
        let mut exact = Vec::new();
        let mut prefix = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, n) in self.names.iter().enumerate() {
            let comps: Vec<&str> = n.comps.iter().map(String::as_str).collect();
            // The first definition of a name wins (script, then library
            // in precedence order).
            if self.first.get(&n.key) != Some(&i)
                || !alias_matches(&comps, pt)
                || !seen.insert(n.key.as_str())
            {
                continue;
            }
            if comps.len() == pt.components.len() {
                exact.push((n.alias, comps.len()));
            } else {
                prefix.push((n.alias, comps.len()));
            }
        }
        if exact.is_empty() {
            // The longest alias name serves the point.
            let longest = prefix.iter().map(|(_, n)| *n).max().unwrap_or(0);
            prefix.retain(|(_, n)| *n == longest);
            prefix
        } else {
            exact
        }
    }

    /// Neither a probe kind nor an alias: the nearest of both.
    fn unknown(&self, pt: &ProbePoint) -> Diagnostic {
        let text: Vec<&str> = pt.components.iter().map(|c| c.name.as_str()).collect();
        let text = text.join(".");
        let kinds = probes::kind_names();
        let names = kinds
            .iter()
            .map(String::as_str)
            .chain(self.first.keys().map(String::as_str))
            .chain(self.known.iter().map(String::as_str));
        let near = crate::debuginfo::layout::nearest(&text, names, 4);
        let mut m = format!("probe point '{text}': no probe kind or probe alias of that name");
        if !near.is_empty() {
            m.push_str(&format!(" (nearest: {})", near.join(", ")));
        }
        Diagnostic::error(pt.span, m)
    }

    fn point(
        &self,
        pt: &ProbePoint,
        body: &Block,
        cx: &mut Cx<'_>,
        depth: usize,
    ) -> Result<Vec<Derived>, Diagnostic> {
        let claimed = probes::claims(pt);
        let matches = if claimed {
            Vec::new()
        } else {
            self.matching(pt)
        };
        if matches.is_empty() && !claimed && !pt.is_optional() {
            return Err(self.unknown(pt));
        }
        if matches.is_empty() {
            let sites = probes::resolve_point(pt, cx)?;
            return Ok(vec![Derived {
                sites,
                body: body.clone(),
                via: None,
            }]);
        }
        let text = grammar::printer::point(&ProbePoint {
            condition: None,
            optional: false,
            sufficient: false,
            ..pt.clone()
        });
        if depth >= MAX_DEPTH {
            return Err(Diagnostic::error(
                pt.span,
                format!("probe alias '{text}' expands into itself"),
            ));
        }
        let mut out = Vec::new();
        let mut last_err = None;
        let several = matches.len() > 1;
        for (alias, used) in matches {
            let inner: Vec<ProbePoint> = alias
                .points
                .iter()
                .map(|p| derive_point(p, pt, used))
                .collect();
            let wrapped = wrap(alias, body);
            match self.list(&inner, &wrapped, cx, depth + 1) {
                Ok(mut got) => {
                    tag_syscall(&alias_name(alias, pt, used), &mut got);
                    // pn(): the outermost alias names the sites (set last).
                    if let Some(name) = script_name(alias, pt, used) {
                        for s in got.iter_mut().flat_map(|d| d.sites.iter_mut()) {
                            s.alias = Some(name.clone());
                        }
                    }
                    if several && depth == 0 {
                        let via = Via {
                            pattern: text.clone(),
                            alias: alias_name(alias, pt, used),
                        };
                        for d in &mut got {
                            d.via = Some(via.clone());
                        }
                    }
                    out.extend(got)
                }
                // One alias of a wildcard's many that cannot be served
                // here: the others still are.
                Err(e) if several => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        // An alias whose points are all optional and none served gives
        // nothing, quietly, as in stap (the `!` list above it goes on);
        // only the script's own point must give something.
        if depth == 0 && !pt.is_optional() && out.iter().all(|d| d.sites.is_empty()) {
            if let Some(e) = last_err {
                return Err(e);
            }
            return Err(Diagnostic::error(
                pt.span,
                format!(
                    "probe point '{text}' matched nothing: none of the points its alias{} expand{} to can be served on this system",
                    if several { "es" } else { "" },
                    if several { "" } else { "s" },
                ),
            ));
        }
        Ok(out)
    }
}

/// stap's script-level name of a point that went through `alias`: the
/// alias's first name with the components `pt` adds past it; `None` when
/// those hold a wildcard (a name further down then serves).
fn script_name(alias: &ProbeAlias, pt: &ProbePoint, used: usize) -> Option<String> {
    let mut components = alias.names.first()?.components.clone();
    let rest = &pt.components[used.min(pt.components.len())..];
    if rest.iter().any(|c| c.name.contains(['*', '?', '['])) {
        return None;
    }
    components.extend(rest.iter().cloned());
    Some(grammar::printer::point(&ProbePoint {
        components,
        condition: None,
        optional: false,
        sufficient: false,
        span: pt.span,
    }))
}

/// The alias's name as it matched `pt` (the first of its names that does),
/// with the suffix the point adds.
fn alias_name(alias: &ProbeAlias, pt: &ProbePoint, used: usize) -> String {
    let name = alias
        .names
        .iter()
        .map(|n| {
            n.components
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
        })
        .find(|c| c.len() == used && alias_matches(c, pt))
        .map(|c| c.join("."))
        .unwrap_or_default();
    let rest: Vec<&str> = pt
        .components
        .iter()
        .skip(used)
        .map(|c| c.name.as_str())
        .collect();
    if rest.is_empty() {
        name
    } else {
        format!("{name}.{}", rest.join("."))
    }
}

/// A `syscall.NAME` alias (any `*syscall.NAME[.return]`) tags the system
/// call tracepoint sites it reached with NAME, unless an alias nearer to
/// them already did (probes/syscall.rs).
fn tag_syscall(alias: &str, got: &mut [Derived]) {
    let untagged = |d: &Derived| {
        d.sites
            .iter()
            .any(|s| matches!(&s.kind, probes::SiteKind::Tracepoint(t) if t.syscall.is_none()))
    };
    if !got.iter().any(untagged) {
        return;
    }
    if let Some(sc) = probes::syscall::Syscall::of_alias(alias) {
        for d in got {
            sc.tag(&mut d.sites);
        }
    }
}

/// One of an alias's points as it serves `outer`: the components past the
/// alias name appended, the outer condition added to its own.
fn derive_point(p: &ProbePoint, outer: &ProbePoint, used: usize) -> ProbePoint {
    let mut p = p.clone();
    p.components
        .extend(outer.components.iter().skip(used).cloned());
    p.condition = match (p.condition.take(), outer.condition.clone()) {
        (None, c) | (c, None) => c,
        (Some(a), Some(b)) => Some(Expr {
            span: b.span,
            kind: ExprKind::Binary {
                op: BinOp::And,
                lhs: Box::new(a),
                rhs: Box::new(b),
            },
        }),
    };
    p
}

/// The body run through an alias: its prologue, the body, its epilogue,
/// in one scope (the prologue's variables are the body's locals).
fn wrap(alias: &ProbeAlias, body: &Block) -> Block {
    if alias.prologue.is_none() && alias.epilogue.is_none() {
        return body.clone();
    }
    let as_stmt = |b: &Block| Stmt {
        kind: StmtKind::Block(b.clone()),
        span: b.span,
    };
    let mut stmts = Vec::new();
    stmts.extend(alias.prologue.iter().map(as_stmt));
    stmts.push(as_stmt(body));
    stmts.extend(alias.epilogue.iter().map(as_stmt));
    Block {
        stmts,
        span: body.span,
    }
}
