//! String keys by length: which key classes each global array gets.
//!
//! The kernel hashes a hash map's whole key on every lookup and update,
//! and compares it whole on a hit. A string key field padded to
//! MAXSTRINGLEN (4 KiB by default) makes every map operation cost 4 KiB of
//! hashing, however short the string. So an array keyed by strings gets
//! several kernel maps, one per *key class*: in class `k` every string
//! field takes `width[k]` bytes (zero-padded); a key goes to the narrowest
//! class its longest string fits in (with its NUL). The class is a
//! function of the key, so equal keys always meet in the same map, and a
//! key is in at most one map; only the hashing shrinks.
//!
//! What keeps an array in one class (the layout it had before):
//! * a `foreach` over it that runs in the kernel (in a kernel probe or a
//!   function one calls): the loop body would be needed once per class;
//! * `global a%` (wrap): each class would evict on its own;
//! * no string key field, or MAXSTRINGLEN too short for a second class;
//! * the map budget: a BPF program may use at most 64 maps, so the
//!   classes give way (fewer, then none) before a script could reach it;
//! * the code budget: each access to an element is emitted once per class
//!   (`classkey.rs`), so the arrays with the fewest access sites in kernel
//!   code get classes first (7, else 4), until [`SITE_BUDGET`] copies; a
//!   profiler's one `bts[bt] <<< 1` always does.
//!
//! This module decides the widths; `maps.rs` makes the maps, `classkey.rs`
//! picks the class at run time.

use std::collections::HashSet;

use crate::ir::print::walk_stmt;
use crate::ir::{Exec, ExprKind, GlobalId, Program, Stmt, StmtKind, Ty};

/// The narrowest class: shorter strings are not worth a map of their own
/// (the hashing of 64 bytes is a few nanoseconds).
pub const MIN_WIDTH: u32 = 64;

/// At most this many classes per array.
const MAX_CLASSES: usize = 8;

/// Element accesses in kernel code, times their classes, that the classes
/// may add: about 40 instructions each, a few thousand at most.
const SITE_BUDGET: usize = 96;

/// Maps a script may have in all before classes give way: below the
/// kernel's 64 maps per program, with room for the fixed ones.
const MAP_BUDGET: usize = 60;

/// The string widths of each global's key classes, narrowest first (the
/// last is `maxstr`), indexed like `p.globals`; one width for arrays that
/// keep one class, none for scalars.
pub fn widths(p: &Program, maxstr: u32, interval: bool, fixed_maps: usize) -> Vec<Vec<u32>> {
    let iterated = kernel_iterated(p);
    let sites = kernel_sites(p);
    let classed: Vec<bool> = p
        .globals
        .iter()
        .enumerate()
        .map(|(i, g)| {
            (g.is_array() || g.ty == Ty::Stats)
                && g.keys.contains(&Ty::Str)
                && !g.wrap
                && !iterated.contains(&GlobalId(i as u32))
        })
        .collect();
    let maps_of = |w: &[Vec<u32>]| -> usize {
        let per_gen = |g: usize| {
            if interval && p.globals[g].ty == Ty::Stats {
                2
            } else {
                1
            }
        };
        fixed_maps
            + w.iter()
                .enumerate()
                .map(|(g, ws)| ws.len() * per_gen(g))
                .sum::<usize>()
    };
    // Arrays with the fewest kernel access sites first.
    let mut order: Vec<usize> = (0..p.globals.len()).filter(|&g| classed[g]).collect();
    order.sort_by_key(|&g| (sites.get(&GlobalId(g as u32)).copied().unwrap_or(0), g));
    for step in [2u32, 4] {
        let mut w = one_class(p, maxstr);
        let mut budget = SITE_BUDGET;
        for &g in &order {
            let n = sites.get(&GlobalId(g as u32)).copied().unwrap_or(0);
            for ws in [ladder(maxstr, step), ladder(maxstr, 4)] {
                if ws.len() > MAX_CLASSES || n * ws.len() > budget {
                    continue;
                }
                budget -= n * ws.len();
                w[g] = ws;
                break;
            }
        }
        if maps_of(&w) <= MAP_BUDGET {
            return w;
        }
    }
    one_class(p, maxstr)
}

/// One class (of width `maxstr`) for every array, none for scalars.
fn one_class(p: &Program, maxstr: u32) -> Vec<Vec<u32>> {
    p.globals
        .iter()
        .map(|g| {
            if g.is_array() || g.ty == Ty::Stats {
                vec![maxstr]
            } else {
                vec![]
            }
        })
        .collect()
}

/// `maxstr`, `maxstr / step`, ... down to [`MIN_WIDTH`], narrowest first.
fn ladder(maxstr: u32, step: u32) -> Vec<u32> {
    let mut w = vec![maxstr];
    while w.last().is_some_and(|&x| x / step >= MIN_WIDTH) {
        w.push(w.last().copied().unwrap_or(maxstr) / step);
    }
    w.reverse();
    w
}

/// How many times the kernel programs access each array's elements (a
/// function's accesses count at each call, as it is inlined there).
fn kernel_sites(p: &Program) -> std::collections::HashMap<GlobalId, usize> {
    use std::collections::HashMap;
    fn of_body(
        p: &Program,
        body: &[Stmt],
        memo: &mut HashMap<usize, HashMap<GlobalId, usize>>,
        out: &mut HashMap<GlobalId, usize>,
    ) {
        let mut calls = Vec::new();
        for s in body {
            if let StmtKind::Delete(crate::ir::Place::Elem(g, _)) = &s.kind {
                *out.entry(*g).or_default() += 1;
            }
            walk_stmt(s, &mut |e| {
                use crate::ir::Place::Elem;
                let g = match &e.kind {
                    ExprKind::Read(Elem(g, _))
                    | ExprKind::Exists(g, _)
                    | ExprKind::Assign(Elem(g, _), _)
                    | ExprKind::AssignOp(Elem(g, _), ..)
                    | ExprKind::AppendStr(Elem(g, _), _)
                    | ExprKind::StatAdd(Elem(g, _), _)
                    | ExprKind::StatGet {
                        place: Elem(g, _), ..
                    }
                    | ExprKind::Crement {
                        place: Elem(g, _), ..
                    } => *g,
                    ExprKind::Call(f, _) => {
                        calls.push(f.0 as usize);
                        return;
                    }
                    _ => return,
                };
                *out.entry(g).or_default() += 1;
            });
        }
        for f in calls {
            if !memo.contains_key(&f) {
                // Recursion was refused before code generation; the empty
                // entry also stops a cycle here.
                memo.insert(f, HashMap::new());
                let mut inner = HashMap::new();
                if let Some(func) = p.functions.get(f) {
                    of_body(p, &func.body, memo, &mut inner);
                }
                memo.insert(f, inner);
            }
            for (g, n) in memo.get(&f).cloned().unwrap_or_default() {
                *out.entry(g).or_default() += n;
            }
        }
    }
    let mut memo = HashMap::new();
    let mut out = HashMap::new();
    for h in p.probes.iter().filter(|h| h.exec == Exec::Kernel) {
        of_body(p, &h.body, &mut memo, &mut out);
    }
    out
}

/// Arrays a `foreach` walks in kernel code: in a kernel probe's handler or
/// in any function such a handler calls (directly or not).
fn kernel_iterated(p: &Program) -> HashSet<GlobalId> {
    let mut out = HashSet::new();
    let mut seen = HashSet::new();
    let mut todo: Vec<&[Stmt]> = p
        .probes
        .iter()
        .filter(|h| h.exec == Exec::Kernel)
        .map(|h| h.body.as_slice())
        .collect();
    while let Some(stmts) = todo.pop() {
        let mut calls = Vec::new();
        for s in stmts {
            foreach_arrays(s, &mut out);
            walk_stmt(s, &mut |e| {
                if let ExprKind::Call(f, _) = &e.kind {
                    calls.push(f.0 as usize);
                }
            });
        }
        for f in calls {
            if seen.insert(f) {
                if let Some(func) = p.functions.get(f) {
                    todo.push(&func.body);
                }
            }
        }
    }
    out
}

fn foreach_arrays(s: &Stmt, out: &mut HashSet<GlobalId>) {
    let mut rec = |b: &[Stmt]| b.iter().for_each(|s| foreach_arrays(s, out));
    match &s.kind {
        StmtKind::Foreach(fe) => {
            out.insert(fe.array);
            fe.body.iter().for_each(|s| foreach_arrays(s, out));
        }
        StmtKind::Block(b) => rec(b),
        StmtKind::If {
            then, otherwise, ..
        } => {
            rec(then);
            rec(otherwise);
        }
        StmtKind::Loop { body, .. } => rec(body),
        StmtKind::Try { body, handler, .. } => {
            rec(body);
            rec(handler);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladders() {
        assert_eq!(ladder(4096, 2), [64, 128, 256, 512, 1024, 2048, 4096]);
        assert_eq!(ladder(4096, 4), [64, 256, 1024, 4096]);
        assert_eq!(ladder(512, 2), [64, 128, 256, 512]);
        assert_eq!(ladder(64, 2), [64]);
        assert_eq!(ladder(32, 2), [32]);
        assert_eq!(ladder(1 << 20, 2).len(), 15);
        assert_eq!(
            ladder(1 << 20, 4),
            [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576]
        );
    }
}
