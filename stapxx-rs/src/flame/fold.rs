//! Folded stacks, the input of every flame graph tool: one line per
//! distinct stack, root frame first, frames joined by `;`, a space and the
//! sample count; lines sorted, as `stackcollapse-stap.pl` writes them.

use super::collect::Backtraces;
use super::lua::{FrameKind, Namer};
use std::collections::{BTreeMap, HashMap};

/// Stacks with their frames named and merged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Folded {
    /// `root;...;leaf` -> count.
    pub stacks: BTreeMap<String, u64>,
    /// The kind of every frame name, for the colours.
    pub kinds: HashMap<String, FrameKind>,
}

impl Folded {
    /// Name the frames of `bt` (innermost first) and fold them root first.
    /// Stacks that end up with the same names are merged.
    pub fn new(bt: &Backtraces, namer: &mut Namer) -> Folded {
        let mut names: HashMap<&str, String> = HashMap::new();
        let mut folded = Folded::default();
        for (frames, count) in &bt.stacks {
            let mut line = String::new();
            for frame in frames.iter().rev() {
                if !names.contains_key(frame.as_str()) {
                    let name = namer.name(frame);
                    folded
                        .kinds
                        .entry(name.clone())
                        .or_insert_with(|| FrameKind::of(frame));
                    names.insert(frame, name);
                }
                if !line.is_empty() {
                    line.push(';');
                }
                line.push_str(&names[frame.as_str()]);
            }
            let slot = folded.stacks.entry(line).or_insert(0);
            *slot = slot.saturating_add(*count);
        }
        folded
    }

    /// The sum of all counts.
    pub fn total(&self) -> u64 {
        self.stacks
            .values()
            .fold(0u64, |acc, n| acc.saturating_add(*n))
    }

    /// The folded text, one `stack count` line each.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (stack, n) in &self.stacks {
            out.push_str(stack);
            out.push(' ');
            out.push_str(&n.to_string());
            out.push('\n');
        }
        out
    }

    /// The frame kinds present.
    pub fn kinds_present(&self) -> Vec<FrameKind> {
        let mut k: Vec<FrameKind> = self.kinds.values().copied().collect();
        k.sort();
        k.dedup();
        k
    }
}

#[cfg(test)]
mod tests {
    use super::super::collect;
    use super::super::lua::SourceRoot;
    use super::*;

    #[test]
    fn folds_root_first_and_merges() {
        let bt = collect::parse(b"leaf\nmid\nroot\n\t3\nother\nroot\n\t2\nleaf\nmid\nroot\n\t1\n");
        let f = Folded::new(&bt, &mut Namer::new(SourceRoot::Host));
        assert_eq!(f.text(), "root;mid;leaf 4\nroot;other 2\n");
        assert_eq!(f.total(), 6);
    }
}
