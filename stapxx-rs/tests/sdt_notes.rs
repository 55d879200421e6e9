//! SDT markers (`.note.stapsdt`) of `tests/fixtures/sdt.c` built with
//! `-O0` and `-O2`, and of Debian's python3.11, against `readelf` (package
//! binutils) as the oracle: the notes' fields and argument strings, the
//! file offsets through the section headers, symbols through `.symtab`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use stapxx::debuginfo::sdt::{Arg, Marker, Operand, Reg};
use stapxx::debuginfo::Module;

/// The fixture built with `cc -g FLAG`, kept under `target/fixtures` and
/// rebuilt when the source or the flags change.
fn fixture(opt: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let src = support::workspace_root().join("tests/fixtures/sdt.c");
    let text = std::fs::read_to_string(&src).unwrap();
    let out = support::fixtures_dir().join(format!("sdt{opt}"));
    let stamp = out.with_extension("stamp");
    let recipe = format!("cc -g {opt}\n{text}");
    if out.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&recipe) {
        return out;
    }
    // Built aside and renamed, so another test process never runs half a file.
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    support::must(
        Command::new("cc")
            .args(["-g", opt, "-o"])
            .arg(&tmp)
            .arg(&src),
    );
    std::fs::rename(&tmp, &out).unwrap();
    std::fs::write(&stamp, recipe).unwrap();
    out
}

fn have_readelf() -> bool {
    if support::have_tool("readelf") {
        return true;
    }
    support::missing("readelf (package binutils)");
    false
}

/// What `readelf -n` prints for one stapsdt note.
#[derive(Debug, Default, Clone)]
struct Oracle {
    provider: String,
    name: String,
    location: u64,
    base: u64,
    semaphore: u64,
    arguments: String,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("not hex: {s:?}"))
}

fn readelf_notes(path: &Path) -> Vec<Oracle> {
    let out = support::must(Command::new("readelf").arg("-n").arg(path));
    let mut notes: Vec<Oracle> = Vec::new();
    for line in out.lines() {
        let line = line.trim_start();
        if let Some(p) = line.strip_prefix("Provider: ") {
            notes.push(Oracle {
                provider: p.to_string(),
                ..Default::default()
            });
            continue;
        }
        let Some(n) = notes.last_mut() else { continue };
        if let Some(v) = line.strip_prefix("Name: ") {
            n.name = v.to_string();
        } else if let Some(v) = line.strip_prefix("Location: ") {
            let fields: BTreeMap<&str, &str> = v
                .split(", ")
                .map(|kv| kv.split_once(": ").unwrap_or((kv, "")))
                .collect();
            n.location = hex(v.split(',').next().unwrap());
            n.base = hex(fields["Base"]);
            n.semaphore = hex(fields["Semaphore"]);
        } else if let Some(v) = line.strip_prefix("Arguments:") {
            n.arguments = v.trim().to_string();
        }
    }
    notes
}

/// Section name -> (address, file offset, size), from `readelf -SW`.
fn sections(path: &Path) -> BTreeMap<String, (u64, u64, u64)> {
    let out = support::must(Command::new("readelf").arg("-SW").arg(path));
    let mut map = BTreeMap::new();
    for line in out.lines() {
        // "  [17] .stapsdt.base PROGBITS 00000000008cc5a0 4cc5a0 000001 ..."
        let Some(rest) = line.trim_start().strip_prefix('[') else {
            continue;
        };
        let Some((_, rest)) = rest.split_once(']') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() >= 5 && f[0].starts_with('.') {
            map.insert(f[0].to_string(), (hex(f[2]), hex(f[3]), hex(f[4])));
        }
    }
    map
}

/// The file offset of `addr` through the section `name` that holds it.
fn offset_in(secs: &BTreeMap<String, (u64, u64, u64)>, name: &str, addr: u64) -> u64 {
    let (a, o, _) = secs[name];
    addr - a + o
}

/// A symbol's value from `readelf -sW`.
fn symbol(path: &Path, name: &str) -> u64 {
    let out = support::must(Command::new("readelf").arg("-sW").arg(path));
    out.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && f[7] == name).then(|| hex(f[1]))
        })
        .unwrap_or_else(|| panic!("no symbol {name} in {}", path.display()))
}

/// Every marker equals its note as readelf shows it, in the same order.
fn assert_matches_readelf(path: &Path, markers: &[Marker]) {
    let notes = readelf_notes(path);
    assert_eq!(markers.len(), notes.len(), "{}", path.display());
    let secs = sections(path);
    let base = secs.get(".stapsdt.base").map(|s| s.0);
    for (m, n) in markers.iter().zip(&notes) {
        let what = format!("{}:{} in {}", n.provider, n.name, path.display());
        assert_eq!((&m.provider, &m.name), (&n.provider, &n.name), "{what}");
        // Not prelinked: the base section is where the note says.
        assert_eq!(base, Some(n.base), "{what}");
        assert_eq!(m.pc, n.location, "{what}");
        assert_eq!(
            m.file_offset,
            offset_in(&secs, ".text", n.location),
            "{what}"
        );
        assert_eq!(m.arg_text, n.arguments, "{what}");
        // Decoded and written back, each argument is readelf's spec.
        let ours: Vec<String> = m
            .args
            .iter()
            .map(|a| match a {
                Ok(a) => spec(a),
                Err(e) => panic!("{what}: {e}"),
            })
            .collect();
        let theirs: Vec<&str> = n.arguments.split_whitespace().collect();
        assert_eq!(ours, theirs, "{what}");
        match m.semaphore {
            None => assert_eq!(n.semaphore, 0, "{what}"),
            Some(s) => {
                assert_eq!(s.address, n.semaphore, "{what}");
                assert_eq!(
                    s.file_offset,
                    offset_in(&secs, ".probes", n.semaphore),
                    "{what}"
                );
            }
        }
    }
}

/// An argument in the AT&T spelling gcc gives it, from our decoding.
fn spec(a: &Arg) -> String {
    let mut s = format!("{}{}", if a.signed { "-" } else { "" }, a.size);
    if a.float {
        s.push('f');
    }
    s.push('@');
    match &a.operand {
        Operand::Register(r) => s.push_str(&reg_name(r)),
        Operand::Constant(c) => s.push_str(&format!("${c}")),
        Operand::Memory {
            base,
            index,
            disp,
            rip_symbol,
        } => {
            match rip_symbol {
                Some(sym) => s.push_str(sym),
                None if *disp != 0 || (base.is_none() && index.is_none()) => {
                    s.push_str(&disp.to_string())
                }
                None => {}
            }
            let b = base.map(|r| reg_name(&r));
            match (b, index) {
                (Some(b), None) => s.push_str(&format!("({b})")),
                (b, Some((i, k))) => {
                    let b = b.unwrap_or_default();
                    s.push_str(&format!("({b},{},{k})", reg_name(i)))
                }
                // A symbol with neither base nor index came with %rip.
                (None, None) if rip_symbol.is_some() => s.push_str("(%rip)"),
                (None, None) => {}
            }
        }
    }
    s
}

/// The AT&T name of the part of a register the spec named.
fn reg_name(r: &Reg) -> String {
    let legacy = ["ax", "bx", "cx", "dx", "si", "di", "bp", "sp"];
    let stem = r.name.trim_start_matches('r');
    let name = if !legacy.contains(&stem) {
        // r8 .. r15
        let suffix = match r.width {
            8 => "",
            4 => "d",
            2 => "w",
            _ => "b",
        };
        format!("{}{suffix}", r.name)
    } else {
        match (r.width, r.shift) {
            (8, _) => r.name.to_string(),
            (4, _) => format!("e{stem}"),
            (2, _) => stem.to_string(),
            (_, 8) => format!("{}h", &stem[..1]),
            // al, bl, cl, dl; sil, dil, bpl, spl
            _ if stem.ends_with('x') => format!("{}l", &stem[..1]),
            _ => format!("{stem}l"),
        }
    };
    format!("%{name}")
}

fn sizes(m: &Marker) -> Vec<(u8, bool)> {
    m.args
        .iter()
        .map(|a| {
            let a = a.as_ref().unwrap();
            (a.size, a.signed)
        })
        .collect()
}

fn check_fixture(opt: &str) {
    if !have_readelf() {
        return;
    }
    let bin = fixture(opt);
    let markers = Module::open(&bin).unwrap().sdt_markers().unwrap();
    assert_matches_readelf(&bin, &markers);

    let by_name: BTreeMap<&str, &Marker> = markers.iter().map(|m| (m.name.as_str(), m)).collect();
    assert_eq!(
        by_name.keys().copied().collect::<Vec<_>>(),
        [
            "constants",
            "global",
            "guarded",
            "ints_signed",
            "ints_unsigned",
            "many",
            "pointers",
            "tick"
        ]
    );
    assert!(markers.iter().all(|m| m.provider == "stx"));
    let (s, u) = (true, false);
    let want: [(&str, Vec<(u8, bool)>); 8] = [
        ("tick", vec![]),
        ("ints_signed", vec![(1, s), (2, s), (4, s), (8, s)]),
        ("ints_unsigned", vec![(1, u), (2, u), (4, u), (8, u)]),
        ("pointers", vec![(8, u), (8, u)]),
        (
            "many",
            vec![
                (1, s),
                (1, u),
                (2, s),
                (2, u),
                (4, s),
                (4, u),
                (8, s),
                (8, u),
            ],
        ),
        ("global", vec![(8, s)]),
        ("constants", vec![(4, s), (4, s)]),
        ("guarded", vec![(8, s)]),
    ];
    for (name, sz) in want {
        assert_eq!(sizes(by_name[name]), sz, "{name} {opt}");
    }
    let constants: Vec<&Operand> = by_name["constants"]
        .args
        .iter()
        .map(|a| &a.as_ref().unwrap().operand)
        .collect();
    assert_eq!(
        constants,
        [&Operand::Constant(42), &Operand::Constant(-7)],
        "{opt}"
    );

    // gcc names a register of the argument's own width on x86-64.
    for m in &markers {
        for a in m.args.iter().map(|a| a.as_ref().unwrap()) {
            if let Arg {
                size,
                operand: Operand::Register(r),
                ..
            } = a
            {
                assert_eq!((r.width, r.shift), (*size, 0), "{}: {a:?}", m.arg_text);
            }
        }
    }

    // Only stx:guarded has a semaphore: the fixture's .probes word.
    let sem_addr = symbol(&bin, "stx_guarded_semaphore");
    for m in &markers {
        let want = (m.name == "guarded").then_some(sem_addr);
        assert_eq!(m.semaphore.map(|s| s.address), want, "{}", m.name);
    }

    // stx:global reads stx_counter: through a register at -O0, straight
    // from memory (stx_counter(%rip)) when optimized.
    let global = by_name["global"].arg(0).unwrap();
    match &global.operand {
        Operand::Memory {
            base,
            index,
            disp,
            rip_symbol,
        } => {
            assert_eq!((base, index), (&None, &None));
            assert_eq!(*disp as u64, symbol(&bin, "stx_counter"));
            assert_eq!(rip_symbol.as_deref(), Some("stx_counter"));
        }
        other => assert!(
            opt == "-O0" && matches!(other, Operand::Register(_)),
            "{opt}: {other:?}"
        ),
    }
}

#[test]
fn fixture_o0_markers_match_readelf() {
    check_fixture("-O0");
}

#[test]
fn fixture_o2_markers_match_readelf() {
    check_fixture("-O2");
}

/// Debian's python3.11 has semaphore-guarded markers (`python:function__entry`
/// and friends); every one parses as readelf shows it.
#[test]
fn python311_markers_match_readelf() {
    let py = Path::new("/usr/bin/python3.11");
    if !py.is_file() {
        support::missing("/usr/bin/python3.11 (package python3.11)");
        return;
    }
    if !have_readelf() {
        return;
    }
    let markers = Module::open(py).unwrap().sdt_markers().unwrap();
    assert_matches_readelf(py, &markers);
    let names: Vec<&str> = markers.iter().map(|m| m.name.as_str()).collect();
    for want in ["function__entry", "function__return", "line", "gc__start"] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let len = std::fs::metadata(py).unwrap().len();
    for m in &markers {
        assert_eq!(m.provider, "python");
        assert!(m.file_offset < len);
        let s = m
            .semaphore
            .unwrap_or_else(|| panic!("{} has no semaphore", m.name));
        assert!(s.file_offset + 2 <= len, "{}: {s:?}", m.name);
    }
    let entry = markers
        .iter()
        .find(|m| m.name == "function__entry")
        .unwrap();
    assert_eq!(sizes(entry), [(8, false), (8, false), (4, true)]);
}

/// A file without SDT notes has no markers (not an error).
#[test]
fn no_notes_no_markers() {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    let bin = BIN.get_or_init(|| support::c_fixture("calls.c", "sdt-calls", &[]));
    assert!(Module::open(bin).unwrap().sdt_markers().unwrap().is_empty());
}

/// sys/sdt.h's prelink rule: when `.stapsdt.base` is not where a note says,
/// the difference moves the marker and its semaphore. A copy of the -O0
/// fixture whose notes claim a base 0x10 higher stands in for a file whose
/// sections moved down by 0x10 after the notes were written.
#[test]
fn prelink_difference_moves_pc_and_semaphore() {
    if !have_readelf() {
        return;
    }
    let bin = fixture("-O0");
    let secs = sections(&bin);
    let base = secs[".stapsdt.base"].0;
    let (_, note_off, note_size) = secs[".note.stapsdt"];
    let mut bytes = std::fs::read(&bin).unwrap();
    let (old, new) = (base.to_le_bytes(), (base + 0x10).to_le_bytes());
    let mut patched = 0;
    let mut i = note_off as usize;
    while i + 8 <= (note_off + note_size) as usize {
        if bytes[i..i + 8] == old {
            bytes[i..i + 8].copy_from_slice(&new);
            patched += 1;
            i += 8;
        } else {
            i += 4;
        }
    }
    let notes = readelf_notes(&bin);
    assert_eq!(patched, notes.len());
    let copy = support::scratch().join("sdt-prelinked");
    std::fs::write(&copy, &bytes).unwrap();
    let markers = Module::open(&copy).unwrap().sdt_markers().unwrap();
    assert_eq!(markers.len(), notes.len());
    for (m, n) in markers.iter().zip(&notes) {
        assert_eq!(m.pc, n.location - 0x10, "{}", m.name);
        assert_eq!(
            m.file_offset,
            offset_in(&secs, ".text", n.location - 0x10),
            "{}",
            m.name
        );
        if n.semaphore != 0 {
            let s = m.semaphore.unwrap();
            assert_eq!(s.address, n.semaphore - 0x10);
            // .data sits right below .probes, in the same segment.
            assert_eq!(
                s.file_offset,
                offset_in(&secs, ".probes", n.semaphore) - 0x10
            );
        }
    }
}
