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
    /// Stacks that end up with the same names are merged. Native frames
    /// ([`Backtraces::native`]) are C frames; the others are named by
    /// `namer` and given the kind their text says.
    pub fn new(bt: &Backtraces, namer: &mut Namer) -> Folded {
        let mut names: HashMap<&str, String> = HashMap::new();
        let mut folded = Folded::default();
        for (frames, count) in &bt.stacks {
            let mut line = String::new();
            for frame in frames.iter().rev() {
                if !names.contains_key(frame.as_str()) {
                    // Native frames are named already, and not Lua's to
                    // rename (`T::f` is a C++ name, not a trace).
                    let (name, kind) = if bt.native.contains(frame) {
                        (frame.clone(), FrameKind::C)
                    } else {
                        (namer.name(frame), FrameKind::of(frame))
                    };
                    folded.kinds.entry(name.clone()).or_insert(kind);
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

    /// sample-bt's output: `print_ustack()` of each distinct backtrace.
    #[test]
    fn folds_native_backtraces() {
        let bt = collect::parse(
            b" 0x7f3a1c0e1b2d : __GI___poll+0x4d/0xb0 [/usr/lib/x86_64-linux-gnu/libc.so.6]
 0x55d0c0a1e2f3 : ngx_epoll_process_events+0x2e1/0x6a0 [/usr/sbin/nginx]
 0x55d0c0a0f001 : ngx_process_events_and_timers+0x71/0x1a0 [/usr/sbin/nginx]
 0x55d0c0a00100 : main+0x5d0/0x8e0 [/usr/sbin/nginx]
\t7
 0x7f3a1c0aa000 [/usr/lib/x86_64-linux-gnu/libc.so.6+0x29d90/0x0]
 0x55d0c0a1e2a0 : ngx_epoll_process_events+0x290/0x6a0 [/usr/sbin/nginx]
 0x55d0c0a0f001 : ngx_process_events_and_timers+0x71/0x1a0 [/usr/sbin/nginx]
 0x55d0c0a00100 : main+0x5d0/0x8e0 [/usr/sbin/nginx]
\t3
",
        );
        let f = Folded::new(&bt, &mut Namer::new(SourceRoot::Host));
        assert_eq!(
            f.text(),
            "main;ngx_process_events_and_timers;ngx_epoll_process_events;[libc.so.6] 3\n\
             main;ngx_process_events_and_timers;ngx_epoll_process_events;__GI___poll 7\n"
        );
        assert_eq!(f.kinds_present(), vec![FrameKind::C]);
    }

    /// Lua frames above the C frames of the VM and the program.
    #[test]
    fn mixed_lua_and_native_frames() {
        let bt = collect::parse(
            b"@/no/such/dir/app.lua:3
builtin#21
=stdin:0
C:pmain
 0x4005d4 : lj_BC_FUNCC+0x34/0x50 [/usr/local/bin/luajit]
 0x400100 : main+0x10/0x40 [/usr/local/bin/luajit]
 0x7f00 [/usr/lib/libc.so.6+0x29d90/0x0]
 0x12345
\t5
",
        );
        let mut namer = Namer::new(SourceRoot::Host);
        let f = Folded::new(&bt, &mut namer);
        assert_eq!(
            f.text(),
            "0x12345;[libc.so.6];main;lj_BC_FUNCC;C:pmain;=stdin:0;builtin#21;\
             @/no/such/dir/app.lua:3 5\n"
        );
        let kind = |n: &str| f.kinds[n];
        assert_eq!(kind("0x12345"), FrameKind::C);
        assert_eq!(kind("[libc.so.6]"), FrameKind::C);
        assert_eq!(kind("main"), FrameKind::C);
        assert_eq!(kind("lj_BC_FUNCC"), FrameKind::C);
        assert_eq!(kind("C:pmain"), FrameKind::C);
        assert_eq!(kind("=stdin:0"), FrameKind::Lua);
        assert_eq!(kind("builtin#21"), FrameKind::Builtin);
        assert_eq!(kind("@/no/such/dir/app.lua:3"), FrameKind::Lua);
        // The unreadable Lua source is still warned about.
        assert!(namer.warning().is_some());
    }

    /// A C++ name that looks like a trace start stays a C frame.
    #[test]
    fn native_names_are_not_renamed() {
        let bt = collect::parse(b"0x10 : T::run()+0x1/0x2 [/opt/a.out]\nT:@x.lua:1\n\t1\n");
        let f = Folded::new(&bt, &mut Namer::new(SourceRoot::Host));
        assert_eq!(f.text(), "T:@x.lua:1;T::run() 1\n");
        assert_eq!(f.kinds["T::run()"], FrameKind::C);
        assert_eq!(f.kinds["T:@x.lua:1"], FrameKind::Trace);
    }
}
