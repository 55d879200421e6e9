//! The SVG, drawn by inferno (FlameGraph's Rust port: the same layout,
//! mouse-over details, click to zoom, Ctrl-F search).
//!
//! Colours say what a frame is: every frame's colour is chosen here and
//! handed to inferno through its palette map (`Options::palette_map`, the
//! map inferno consults before picking a colour itself), so the picture is
//! the same on every run for the same input:
//!
//! | frames | colour |
//! |---|---|
//! | Lua functions (`mod:func`, `@file:line`, `=chunk:line`) | red to yellow ("hot") |
//! | C functions (`C:sym`, and stap's symbolic native frames) | blue |
//! | LuaJIT fast functions (`builtin#N`) | purple |
//! | JIT trace starts (`T:...`) | green |
//! | anything else (frames in other scripts' own formats) | orange to yellow |
//!
//! Within a colour, the shade comes from a hash of the name, so one
//! function keeps its shade across graphs.

use super::fold::Folded;
use super::lua::FrameKind;
use inferno::flamegraph::{self, color::Color, color::PaletteMap};
use std::io::Write;

/// Drawing settings.
#[derive(Debug, Clone)]
pub struct SvgOptions {
    pub title: String,
}

impl Default for SvgOptions {
    fn default() -> Self {
        SvgOptions {
            title: "Flame Graph".to_string(),
        }
    }
}

/// Write the flame graph of `folded` as SVG. An empty `folded` gives
/// inferno's "no valid input" picture and an error.
pub fn write_svg<W: Write>(folded: &Folded, opts: &SvgOptions, out: W) -> std::io::Result<()> {
    let mut palette = PaletteMap::default();
    // inferno's root frame ("all"), whose name is empty.
    palette.insert(
        "",
        Color {
            r: 190,
            g: 190,
            b: 190,
        },
    );
    for (name, kind) in &folded.kinds {
        palette.insert(name, colour(*kind, name));
    }
    let mut o = flamegraph::Options::default();
    o.title = opts.title.clone();
    o.count_name = "samples".to_string();
    o.subtitle = legend(&folded.kinds_present());
    o.palette_map = Some(&mut palette);
    let lines: Vec<String> = folded
        .stacks
        .iter()
        .map(|(stack, n)| format!("{stack} {n}"))
        .collect();
    flamegraph::from_lines(&mut o, lines.iter().map(String::as_str), out)
}

/// What the colours mean, for the kinds present (none for plain stacks).
fn legend(kinds: &[FrameKind]) -> Option<String> {
    if !kinds
        .iter()
        .any(|k| matches!(k, FrameKind::C | FrameKind::Builtin | FrameKind::Trace))
    {
        return None;
    }
    let parts: Vec<&str> = kinds
        .iter()
        .filter_map(|k| match k {
            FrameKind::Lua => Some("red-yellow: Lua"),
            FrameKind::C => Some("blue: C functions"),
            FrameKind::Builtin => Some("purple: built-ins"),
            FrameKind::Trace => Some("green: JIT trace starts"),
            FrameKind::Other => None,
        })
        .collect();
    Some(parts.join(", "))
}

/// The colour of one frame.
pub fn colour(kind: FrameKind, name: &str) -> Color {
    let h = fnv(name);
    // Three independent shades in [0, 1).
    let v = |shift: u32| ((h >> shift) & 0xffff) as f64 / 65536.0;
    let (a, b, c) = (v(0), v(16), v(32));
    let c8 = |base: f64, span: f64, x: f64| (base + span * x).round().clamp(0.0, 255.0) as u8;
    match kind {
        FrameKind::Lua => Color {
            r: c8(205.0, 50.0, a),
            g: c8(0.0, 230.0, b),
            b: c8(0.0, 55.0, c),
        },
        FrameKind::C => Color {
            r: c8(70.0, 60.0, a),
            g: c8(110.0, 70.0, a),
            b: c8(200.0, 55.0, b),
        },
        FrameKind::Builtin => Color {
            r: c8(150.0, 60.0, a),
            g: c8(80.0, 50.0, b),
            b: c8(200.0, 55.0, a),
        },
        FrameKind::Trace => Color {
            r: c8(40.0, 70.0, a),
            g: c8(170.0, 70.0, b),
            b: c8(40.0, 70.0, a),
        },
        FrameKind::Other => Color {
            r: c8(225.0, 30.0, a),
            g: c8(110.0, 120.0, b),
            b: c8(20.0, 40.0, c),
        },
    }
}

/// FNV-1a, 64 bits.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_by_kind() {
        for name in ["a", "pmain", "something:long", ""] {
            let c = colour(FrameKind::C, name);
            assert!(c.b > c.r && c.b > c.g, "{c:?}");
            let t = colour(FrameKind::Trace, name);
            assert!(t.g > t.r && t.g > t.b, "{t:?}");
            let p = colour(FrameKind::Builtin, name);
            assert!(p.r > p.g && p.b > p.g, "{p:?}");
            let l = colour(FrameKind::Lua, name);
            assert!(l.r >= 205 && l.b <= 55, "{l:?}");
        }
        assert_eq!(colour(FrameKind::Lua, "x"), colour(FrameKind::Lua, "x"));
    }
}
