//! Tests against real binaries: `tests/fixtures/layout.c` compiled with the
//! system C compiler, checked against `pahole` (package `dwarves`), split with
//! binutils into stripped + debug files, and run as a real process.

use super::error::LookedAt;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use super::*;

fn fixture_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/layout.c")
}

/// A per-process scratch directory (stale ones of dead processes are removed).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let parent = std::env::temp_dir().join("stapxx-debuginfo-tests");
        if let Ok(rd) = std::fs::read_dir(&parent) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Ok(pid) = name.parse::<u32>() {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = parent.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    })
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles the fixture once per flag set; returns the binary's path.
fn build(name: &str, flags: &[&str]) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let out = scratch().join(name);
    run(Command::new("cc")
        .args(["-g", "-O0"])
        .args(flags)
        .arg(fixture_source())
        .arg("-o")
        .arg(&out));
    built.insert(name.to_string(), out.clone());
    out
}

fn dwarf5() -> PathBuf {
    build("layout5", &["-gdwarf-5"])
}
fn dwarf4() -> PathBuf {
    build("layout4", &["-gdwarf-4"])
}

fn pahole_available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        if Command::new("pahole").arg("--version").output().is_ok() {
            return true;
        }
        // Another session may be installing it right now: wait a little.
        for _ in 0..60 {
            std::thread::sleep(std::time::Duration::from_secs(2));
            if Command::new("pahole").arg("--version").output().is_ok() {
                return true;
            }
        }
        false
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PaholeMember {
    path: String,
    offset: u64,
    size: u64,
    /// Bit offset inside the `size`-byte unit at `offset`, for bitfields.
    bit: Option<u64>,
}

#[derive(Debug, Default)]
struct PaholeType {
    members: Vec<PaholeMember>,
    size: Option<u64>,
}

/// Runs `pahole -C name` and parses its layout: members of anonymous
/// structs/unions appear under their own name, members of named inline
/// aggregates as `outer.inner` (pahole prints absolute offsets for both).
fn pahole(file: &Path, name: &str) -> PaholeType {
    let out = Command::new("pahole")
        .args(["-C", name])
        .arg(file)
        .output()
        .expect("run pahole");
    assert!(
        out.status.success(),
        "pahole failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.trim().is_empty(), "pahole printed nothing for {name}");
    let mut frames: Vec<Vec<PaholeMember>> = Vec::new();
    let mut result = PaholeType::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("/*") {
            if frames.len() == 1 {
                if let Some(rest) = line.strip_prefix("/* size: ") {
                    let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    result.size = n.parse().ok();
                }
            }
            continue;
        }
        if line.ends_with('{') {
            frames.push(Vec::new());
            continue;
        }
        let comment = line
            .split_once("/*")
            .map(|(_, c)| c.trim_end_matches("*/").trim().to_string());
        if let Some(rest) = line.strip_prefix('}') {
            let inner = frames.pop().expect("balanced braces");
            let decl = rest.split(';').next().unwrap_or("").trim();
            let Some(parent) = frames.last_mut() else {
                result.members = inner;
                break;
            };
            if decl.is_empty() {
                parent.extend(inner);
            } else {
                let (offset, size, bit) =
                    parse_comment(comment.as_deref().expect("offset comment"));
                parent.push(PaholeMember {
                    path: decl.to_string(),
                    offset,
                    size,
                    bit,
                });
                parent.extend(inner.into_iter().map(|m| PaholeMember {
                    path: format!("{decl}.{}", m.path),
                    ..m
                }));
            }
            continue;
        }
        let (Some(comment), Some((decl, _))) = (comment, line.split_once(';')) else {
            continue;
        };
        let name = if let Some(i) = decl.find("(*") {
            decl[i + 2..].split(')').next().unwrap_or("").to_string()
        } else {
            let last = decl.split_whitespace().last().unwrap_or("");
            let last = last.trim_start_matches('*');
            last.split(['[', ':']).next().unwrap_or("").to_string()
        };
        let (offset, size, bit) = parse_comment(&comment);
        frames
            .last_mut()
            .expect("member inside braces")
            .push(PaholeMember {
                path: name,
                offset,
                size,
                bit,
            });
    }
    result
}

fn parse_comment(c: &str) -> (u64, u64, Option<u64>) {
    // "off size" or "off:bit size" (pahole pads with spaces: "8:40  8").
    let (loc, size) = c.rsplit_once(char::is_whitespace).expect("two fields");
    let size = size.trim().parse().expect("size");
    let loc = loc.trim();
    match loc.split_once(':') {
        Some((o, b)) => (
            o.trim().parse().expect("offset"),
            size,
            Some(b.trim().parse().expect("bit")),
        ),
        None => (loc.parse().expect("offset"), size, None),
    }
}

fn steps(path: &str) -> Vec<Step> {
    path.split('.')
        .map(|m| Step::Member(m.to_string()))
        .collect()
}

const PAHOLE_TYPES: [(&str, &str); 7] = [
    ("ints", "struct ints"),
    ("bits", "struct bits"),
    ("inner", "struct inner"),
    ("node", "struct node"),
    ("value", "union value"),
    ("GCRef", "GCRef"),
    ("MRef", "struct MRef"),
];

/// Compares every member pahole prints with our resolution; returns the
/// number of members checked.
fn check_against_pahole(binary: &Path) -> usize {
    let module = Module::open(binary).expect("open fixture");
    let mut checked = 0;
    for (pname, cname) in PAHOLE_TYPES {
        let p = pahole(binary, pname);
        assert!(
            p.members.len() >= 2 || pname.ends_with("Ref"),
            "{pname}: {p:?}"
        );
        if let Some(size) = p.size {
            assert_eq!(module.size_of_type(cname).unwrap(), size, "sizeof {cname}");
            let one = module
                .resolve_cast(cname, &[Step::Index(Index::Const(1))], true)
                .unwrap();
            assert_eq!(
                one.constant_offset(),
                Some(size as i64),
                "&@cast(0, {cname})[1]"
            );
        }
        for m in &p.members {
            let what = format!("{cname} member {} in {}", m.path, binary.display());
            match m.bit {
                None => {
                    let r = module
                        .resolve_cast(cname, &steps(&m.path), true)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(r.constant_offset(), Some(m.offset as i64), "{what}: offset");
                    assert_eq!(r.value.size, m.size, "{what}: size");
                    assert_eq!(r.fetch, Fetch::Address);
                }
                Some(bit) => {
                    let r = module
                        .resolve_cast(cname, &steps(&m.path), false)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(r.constant_offset(), Some(m.offset as i64), "{what}: offset");
                    let Fetch::Load {
                        size,
                        bitfield: Some(bf),
                        ..
                    } = r.fetch
                    else {
                        panic!("{what}: not a bitfield load: {:?}", r.fetch)
                    };
                    assert_eq!(u64::from(size), m.size, "{what}: load size");
                    assert_eq!(u64::from(bf.shift), bit, "{what}: bit offset");
                }
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn layouts_match_pahole_dwarf5() {
    if !pahole_available() {
        panic!("pahole not installed: apt-get install -y dwarves");
    }
    let n = check_against_pahole(&dwarf5());
    assert!(n > 60, "only {n} members checked");
}

#[test]
fn layouts_match_pahole_dwarf4() {
    if !pahole_available() {
        panic!("pahole not installed: apt-get install -y dwarves");
    }
    let n = check_against_pahole(&dwarf4());
    assert!(n > 60, "only {n} members checked");
}

#[test]
fn layouts_match_pahole_strict_dwarf2() {
    if !pahole_available() {
        panic!("pahole not installed: apt-get install -y dwarves");
    }
    // DWARF 2: member locations are DW_OP_plus_uconst expressions.
    let n = check_against_pahole(&build("layout2", &["-gdwarf-2", "-gstrict-dwarf"]));
    assert!(n > 60, "only {n} members checked");
}

fn cast(m: &Module, ty: &str, chain: &str) -> Resolved {
    m.resolve_cast(ty, &parse_chain(chain).unwrap(), false)
        .unwrap_or_else(|e| panic!("@cast(p, {ty}){chain}: {e}"))
}

fn addr(m: &Module, ty: &str, chain: &str) -> Resolved {
    m.resolve_cast(ty, &parse_chain(chain).unwrap(), true)
        .unwrap_or_else(|e| panic!("&@cast(p, {ty}){chain}: {e}"))
}

fn load(size: u8, signed: bool) -> Fetch {
    Fetch::Load {
        size,
        signed,
        bitfield: None,
    }
}

fn hand_checks(m: &Module) {
    use Access::*;
    // Plain members, nested structs, arrays with constant indices.
    assert_eq!(cast(m, "struct node", "->id").accesses, vec![]);
    assert_eq!(cast(m, "struct node", "->id").fetch, load(4, true));
    assert_eq!(addr(m, "node_t", "->point->py").constant_offset(), Some(8));
    assert_eq!(
        addr(m, "struct node", "->pair[1]->next").constant_offset(),
        Some(32 + 16 + 8)
    );
    assert_eq!(
        addr(m, "struct node", "->matrix[2][3]").constant_offset(),
        Some(80 + (2 * 4 + 3) * 4)
    );
    let tag = cast(m, "struct node", "->in->tag[2]");
    assert_eq!(tag.accesses, vec![Add(16 + 4 + 2)]);
    assert_eq!(tag.fetch, load(1, true));
    assert_eq!(tag.value.kind, ValueKind::Char);
    // Anonymous struct/union members.
    assert_eq!(
        addr(m, "struct node", "->anon_a").constant_offset(),
        Some(64)
    );
    assert_eq!(
        addr(m, "struct node", "->anon_u2").constant_offset(),
        Some(68)
    );
    assert_eq!(
        cast(m, "struct node", "->anon_u2").value.kind,
        ValueKind::Float
    );
    assert_eq!(
        addr(m, "struct node", "->anon_c[5]").constant_offset(),
        Some(77)
    );
    // A union member inside a union.
    assert_eq!(
        addr(m, "union value", "->parts->hi").constant_offset(),
        Some(4)
    );
    assert_eq!(
        addr(m, "struct node", "->val->parts->hi").constant_offset(),
        Some(168 + 4)
    );
    // Pointers are followed implicitly.
    let next_id = cast(m, "struct node", "->in->next->id");
    assert_eq!(next_id.accesses, vec![Add(24), Deref { size: 8 }]);
    assert_eq!(next_id.fetch, load(4, true));
    let via_ptr = cast(m, "struct node", "->children[2]->pair[1]->a");
    assert_eq!(
        via_ptr.accesses,
        vec![Add(192 + 16), Deref { size: 8 }, Add(48)]
    );
    let cin = cast(m, "struct node", "->cin->tag");
    assert_eq!(cin.accesses, vec![Add(144), Deref { size: 8 }, Add(4)]);
    assert_eq!(
        (cin.fetch, cin.value.kind, cin.value.size),
        (Fetch::Address, ValueKind::Array, 3)
    );
    // A pointer typedef as the cast type: `->` dereferences it.
    assert_eq!(
        cast(m, "node_ptr", "->id").accesses,
        vec![Deref { size: 8 }]
    );
    // `[i]` on a pointer member: read it, then scale.
    let name2 = cast(m, "struct node", "->name[2]");
    assert_eq!(name2.accesses, vec![Add(128), Deref { size: 8 }, Add(2)]);
    assert_eq!(name2.fetch, load(1, true));
    // Computed indices.
    let dynamic = cast(m, "struct node", "->pair[i]->a");
    assert_eq!(
        dynamic.accesses,
        vec![
            Add(32),
            AddScaled {
                slot: 0,
                elem_size: 16
            }
        ]
    );
    let dyn2 = addr(m, "struct node", "->matrix[i][j]");
    assert_eq!(
        dyn2.accesses,
        vec![
            Add(80),
            AddScaled {
                slot: 0,
                elem_size: 16
            },
            AddScaled {
                slot: 1,
                elem_size: 4
            }
        ]
    );
    let half = addr(m, "struct node", "->matrix[1]");
    assert_eq!(
        (
            half.constant_offset(),
            half.value.size,
            half.value.name.as_str()
        ),
        (Some(96), 16, "int[4]")
    );
    // Scalars of every kind.
    assert_eq!(cast(m, "struct node", "->cvu").fetch, load(4, false));
    assert_eq!(cast(m, "struct node", "->vol").fetch, load(4, true));
    assert_eq!(
        cast(m, "struct node", "->colour").value.kind,
        ValueKind::Enum
    );
    assert_eq!(cast(m, "struct node", "->colour").fetch, load(4, false));
    assert_eq!(cast(m, "struct node", "->neg").fetch, load(4, true));
    assert_eq!(
        cast(m, "struct node", "->name").value.kind,
        ValueKind::Pointer
    );
    assert_eq!(cast(m, "struct node", "->name").value.name, "const char *");
    assert_eq!(cast(m, "struct node", "->callback").fetch, load(8, false));
    assert_eq!(
        cast(m, "struct node", "->ref->gcptr64").fetch,
        load(8, false)
    );
    assert_eq!(
        addr(m, "struct node", "->mref->ptr32").constant_offset(),
        Some(184)
    );
    assert_eq!(cast(m, "struct node", "->tail").value.size, 0);
    assert_eq!(cast(m, "struct node", "->val").value.kind, ValueKind::Union);
    let ints = [
        ("c", 1, true, ValueKind::Char),
        ("sc", 1, true, ValueKind::Char),
        ("uc", 1, false, ValueKind::Char),
        ("s", 2, true, ValueKind::Integer),
        ("us", 2, false, ValueKind::Integer),
        ("i", 4, true, ValueKind::Integer),
        ("ui", 4, false, ValueKind::Integer),
        ("l", 8, true, ValueKind::Integer),
        ("ul", 8, false, ValueKind::Integer),
        ("ll", 8, true, ValueKind::Integer),
        ("ull", 8, false, ValueKind::Integer),
        ("i8", 1, true, ValueKind::Char),
        ("u8", 1, false, ValueKind::Char),
        ("i16", 2, true, ValueKind::Integer),
        ("u16", 2, false, ValueKind::Integer),
        ("i32", 4, true, ValueKind::Integer),
        ("u32", 4, false, ValueKind::Integer),
        ("i64", 8, true, ValueKind::Integer),
        ("u64", 8, false, ValueKind::Integer),
        ("b", 1, false, ValueKind::Bool),
        ("f", 4, false, ValueKind::Float),
        ("d", 8, false, ValueKind::Float),
    ];
    for (member, size, signed, kind) in ints {
        let r = cast(m, "ints_t", &format!("->{member}"));
        assert_eq!(
            (r.fetch, r.value.kind),
            (load(size, signed), kind),
            "ints_t->{member}"
        );
    }
    // Bitfields: signed and unsigned, old and new DWARF forms.
    let bf = |member: &str| cast(m, "struct bits", &format!("->{member}"));
    let b = |size, signed, shift, width| Fetch::Load {
        size,
        signed,
        bitfield: Some(Bitfield { shift, width }),
    };
    assert_eq!(bf("flag").fetch, b(4, false, 0, 1));
    assert_eq!(bf("sfield").fetch, b(4, true, 1, 3));
    assert_eq!(bf("ufield").fetch, b(4, false, 4, 5));
    assert_eq!(bf("plain").fetch, load(4, true));
    assert_eq!(bf("wide").fetch, b(8, false, 0, 40));
    assert_eq!(bf("swide").fetch, b(8, true, 40, 20));
    assert_eq!(
        (bf("small").accesses, bf("small").fetch),
        (vec![Add(15)], b(1, false, 4, 2))
    );
    assert_eq!(
        (bf("ssmall").accesses, bf("ssmall").fetch),
        (vec![Add(16)], b(1, true, 0, 4))
    );
    assert_eq!(
        (bf("half").accesses, bf("half").fetch),
        (vec![Add(16)], b(2, false, 4, 9))
    );
    // Type names in every spelling; sizeof.
    assert_eq!(m.size_of_type("struct node").unwrap(), 240);
    assert_eq!(m.size_of_type("node_t").unwrap(), 240);
    assert_eq!(m.size_of_type("node_ptr").unwrap(), 8);
    assert_eq!(m.size_of_type("unsigned long").unwrap(), 8);
    assert_eq!(m.size_of_type("long unsigned int").unwrap(), 8);
    assert_eq!(m.size_of_type("short").unwrap(), 2);
    assert_eq!(m.size_of_type("char *").unwrap(), 8);
    assert_eq!(m.size_of_type("const struct inner").unwrap(), 16);
    assert_eq!(m.size_of_type("enum colour").unwrap(), 4);
    assert_eq!(m.size_of_type("uint_alias_t").unwrap(), 4);
    assert_eq!(addr(m, "struct inner", "[3]").constant_offset(), Some(48));
    assert_eq!(addr(m, "struct inner", "[-1]").constant_offset(), Some(-16));
    assert_eq!(
        m.resolve_cast("char *", &parse_chain("[1]").unwrap(), true)
            .unwrap()
            .constant_offset(),
        Some(8)
    );
    let p = cast(m, "char *", "[0][2]");
    assert_eq!(p.accesses, vec![Deref { size: 8 }, Add(2)]);
    // Errors say what and where.
    let e = m
        .resolve_cast("struct node", &parse_chain("->chidren").unwrap(), false)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "struct node has no member 'chidren'; nearest: children, cin, id"
    );
    let e = m
        .resolve_cast("GCRef", &parse_chain("->gcptr32").unwrap(), false)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("struct GCRef has no member 'gcptr32'; nearest: gcptr64"),
        "{e}"
    );
    let e = m.find_type("struct nod").unwrap_err().to_string();
    assert!(e.starts_with("type 'struct nod' not found in "), "{e}");
    assert!(e.contains("nearest: node"), "{e}");
    let e = m
        .resolve_cast("struct node", &parse_chain("->id->x").unwrap(), false)
        .unwrap_err();
    assert!(
        e.to_string().contains("member 'x' requested from int"),
        "{e}"
    );
    let e = m
        .resolve_cast("struct node", &parse_chain("->opaque->x").unwrap(), false)
        .unwrap_err();
    assert!(e.to_string().contains("void pointer"), "{e}");
    let e = m
        .resolve_cast("struct bits", &parse_chain("->sfield").unwrap(), true)
        .unwrap_err();
    assert!(
        e.to_string().contains("address of bitfield 'sfield'"),
        "{e}"
    );
    let e = m
        .resolve_cast("struct node", &parse_chain("->in[1]").unwrap(), false)
        .unwrap_err();
    assert!(e.to_string().contains("cannot index struct inner"), "{e}");
    // Variables.
    let v = m.variable("the_global").unwrap();
    let sym = m.symbols().unwrap().object("the_global").unwrap().address;
    assert_eq!(v.link_address, sym);
    assert!(v.cu_name.as_deref().unwrap().ends_with("layout.c"));
    let st = m.variable("file_static@layout.c").unwrap();
    assert_eq!(
        st.link_address,
        m.symbols().unwrap().object("file_static").unwrap().address
    );
    assert!(m.variable("file_static@other.c").is_err());
    let vr = m
        .resolve_var("global_node_ptr", &parse_chain("->in->a").unwrap(), false)
        .unwrap();
    assert_eq!(vr.resolved.accesses, vec![Deref { size: 8 }, Add(16)]);
    let e = m.variable("the_globl").unwrap_err().to_string();
    assert!(
        e.starts_with("variable 'the_globl' not found in ") && e.contains("nearest: the_global"),
        "{e}"
    );
    // Symbols.
    let probes = m.function_probes("layout_fixture_*").unwrap();
    assert_eq!(probes.len(), 1);
    let f = &probes[0];
    assert_eq!(f.name, "layout_fixture_function");
    let segs = m.elf().load_segments();
    let seg = segs.iter().find(|s| s.is_executable()).unwrap();
    assert_eq!(f.file_offset - seg.offset, f.address - seg.vaddr);
    assert_eq!(
        m.symbols().unwrap().lookup(f.address + 3).unwrap().name,
        f.name
    );
    let e = m.function_probes("no_such_fn*").unwrap_err().to_string();
    assert!(e.starts_with("function 'no_such_fn*' (nearest:"), "{e}");
}

#[test]
fn hand_checked_layout_dwarf5() {
    hand_checks(&Module::open(dwarf5()).unwrap());
}

#[test]
fn hand_checked_layout_dwarf4() {
    hand_checks(&Module::open(dwarf4()).unwrap());
}

#[test]
fn compressed_debug_sections() {
    let bin = build("layoutz", &["-gz=zlib"]);
    let out = Command::new("readelf")
        .arg("-S")
        .arg("-W")
        .arg(&bin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains(".debug_info")).unwrap();
    // The "C" flag: SHF_COMPRESSED.
    assert!(
        line.split_whitespace()
            .any(|w| w.contains('C') && w.len() <= 4),
        "{line}"
    );
    hand_checks(&Module::open(&bin).unwrap());
}

/// The resolution of a list of chains, to compare two modules.
fn signature(m: &Module) -> Vec<String> {
    let mut out = Vec::new();
    for (ty, chain, amp) in [
        ("struct node", "->in->next->pair[1]->tag", true),
        ("struct node", "->matrix[i][2]", false),
        ("struct bits", "->swide", false),
        ("struct bits", "->half", false),
        ("node_ptr", "->anon_u1", false),
        ("union value", "->parts->hi", true),
        ("ints_t", "->u16", false),
    ] {
        let r = m
            .resolve_cast(ty, &parse_chain(chain).unwrap(), amp)
            .unwrap();
        // Everything but the type handle (DIE offsets differ after dwz).
        let v = &r.value;
        out.push(format!(
            "{:?} {:?} {:?} {} {} {}",
            r.accesses, r.fetch, v.kind, v.size, v.signed, v.name
        ));
    }
    out.push(format!(
        "{:?}",
        m.variable("the_global").unwrap().link_address
    ));
    out.push(format!(
        "{:?}",
        m.variable("file_static@*layout.c").unwrap().link_address
    ));
    out.push(format!("{:?}", m.function_probes("main").unwrap()));
    out
}

struct Split {
    root: PathBuf,
    stripped: PathBuf,
    debug: PathBuf,
}

/// A stripped copy of the fixture at `<root>/usr/bin/layout` with its
/// debuginfo split off into `<scratch>/<tag>.debug` and linked by name.
fn split(tag: &str, full_strip: bool) -> Split {
    let bin = dwarf5();
    let root = scratch().join(format!("root-{tag}"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    let debug = scratch().join(format!("{tag}.debug"));
    let stripped = root.join("usr/bin/layout");
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&bin)
        .arg(&debug));
    run(Command::new("strip")
        .arg(if full_strip {
            "--strip-all"
        } else {
            "--strip-debug"
        })
        .arg(&bin)
        .arg("-o")
        .arg(&stripped));
    run(Command::new("objcopy")
        .arg(format!("--add-gnu-debuglink={}", debug.display()))
        .arg(&stripped));
    Split {
        root,
        stripped,
        debug,
    }
}

fn opts(root: &Path) -> LocateOptions {
    LocateOptions {
        root: Some(root.to_path_buf()),
        debug_dirs: vec![PathBuf::from("/usr/lib/debug")],
        host_fallback: false,
    }
}

#[test]
fn separate_debug_files_resolve_like_the_original() {
    let full = Module::open(dwarf5()).unwrap();
    let want = signature(&full);
    let build_id = full.elf().build_id_hex().expect("build-id");
    for (tag, full_strip) in [
        ("samedir", false),
        ("dotdebug", true),
        ("globaldir", false),
        ("buildid", true),
    ] {
        let s = split(tag, full_strip);
        let dest = match tag {
            "samedir" => s.root.join("usr/bin").join(format!("{tag}.debug")),
            "dotdebug" => s.root.join("usr/bin/.debug").join(format!("{tag}.debug")),
            "globaldir" => s
                .root
                .join("usr/lib/debug/usr/bin")
                .join(format!("{tag}.debug")),
            _ => s
                .root
                .join("usr/lib/debug/.build-id")
                .join(&build_id[..2])
                .join(format!("{}.debug", &build_id[2..])),
        };
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::rename(&s.debug, &dest).unwrap();
        let m = Module::open_in(Path::new("/usr/bin/layout"), opts(&s.root)).unwrap();
        assert!(!m.elf().has_debug_info());
        assert_eq!(m.elf().has_symtab(), !full_strip);
        let expect_source = if tag == "buildid" {
            DebugSource::BuildId(dest.clone())
        } else {
            DebugSource::DebugLink(dest.clone())
        };
        assert_eq!(m.debug_source().unwrap(), &expect_source, "{tag}");
        assert_eq!(signature(&m), want, "{tag}");
        hand_checks(&m);
        // The stripped file is what runs: its program headers are used.
        assert_eq!(m.elf().path(), s.stripped);
    }
}

#[test]
fn missing_debuginfo_lists_every_place() {
    let s = split("missing", false);
    std::fs::remove_file(&s.debug).unwrap();
    let m = Module::open_in(Path::new("/usr/bin/layout"), opts(&s.root)).unwrap();
    // Symbols still work without DWARF.
    assert!(m
        .symbols()
        .unwrap()
        .function("layout_fixture_function")
        .is_some());
    let e = m.resolve_cast("struct node", &[], false).unwrap_err();
    let DebugError::NoDebugInfo {
        file,
        build_id,
        debuglink,
        looked,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    // Named as the target knows it (it was read from under the root).
    assert_eq!(file, Path::new("/usr/bin/layout"));
    assert_eq!(m.elf().path(), s.stripped);
    let id = build_id.clone().unwrap();
    assert_eq!(debuglink.as_deref(), Some("missing.debug"));
    // The local places, then what debuginfod was asked (or why not).
    let local: Vec<&LookedAt> = looked.iter().filter(|l| l.path.is_absolute()).collect();
    let paths: Vec<PathBuf> = local.iter().map(|l| l.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            s.root.join(format!(
                "usr/lib/debug/.build-id/{}/{}.debug",
                &id[..2],
                &id[2..]
            )),
            s.root.join("usr/bin/missing.debug"),
            s.root.join("usr/bin/.debug/missing.debug"),
            s.root.join("usr/lib/debug/usr/bin/missing.debug"),
        ]
    );
    assert!(local.iter().all(|l| l.outcome == "not found"));
    if std::env::var_os("DEBUGINFOD_URLS").is_none() {
        let last = looked.last().expect("an entry");
        assert_eq!(
            (last.path.display().to_string(), last.outcome.as_str()),
            (
                "debuginfod".to_string(),
                "not asked: DEBUGINFOD_URLS is not set"
            )
        );
    }
    let msg = e.to_string();
    assert!(
        msg.contains(&id) && msg.contains("missing.debug") && msg.contains(".build-id"),
        "{msg}"
    );

    // A debug file of another build is refused, and says why.
    let other = dwarf4();
    let bad = s.root.join("usr/bin/missing.debug");
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&other)
        .arg(&bad));
    let m = Module::open_in(Path::new("/usr/bin/layout"), opts(&s.root)).unwrap();
    let e = m.dwarf().unwrap_err();
    let DebugError::NoDebugInfo { looked, .. } = &e else {
        panic!("{e}")
    };
    assert!(looked[1].outcome.starts_with("build-id mismatch"), "{e}");
}

#[test]
fn dwz_supplementary_file() {
    if Command::new("dwz").arg("--version").output().is_err() {
        panic!("dwz not installed: apt-get install -y dwz");
    }
    let root = scratch().join("root-dwz");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("usr/lib/debug/.dwz")).unwrap();
    let a = root.join("usr/bin/a");
    let b = root.join("usr/bin/b");
    std::fs::copy(dwarf5(), &a).unwrap();
    std::fs::copy(
        build("layout5-fp", &["-gdwarf-5", "-fno-omit-frame-pointer"]),
        &b,
    )
    .unwrap();
    run(Command::new("dwz")
        .arg("-m")
        .arg(root.join("usr/lib/debug/.dwz/common.debug"))
        .args(["-M", "/usr/lib/debug/.dwz/common.debug"])
        .arg(&a)
        .arg(&b));
    let m = Module::open_in(Path::new("/usr/bin/a"), opts(&root)).unwrap();
    assert!(
        m.elf().altlink().is_some(),
        "dwz made no supplementary file"
    );
    assert!(m.dwarf().unwrap().unit_count().1 > 0);
    assert_eq!(signature(&m), signature(&Module::open(dwarf5()).unwrap()));
    hand_checks(&m);
    // Without the supplementary file: an error naming it.
    std::fs::remove_file(root.join("usr/lib/debug/.dwz/common.debug")).unwrap();
    let m = Module::open_in(Path::new("/usr/bin/a"), opts(&root)).unwrap();
    let e = m.dwarf().unwrap_err().to_string();
    assert!(e.contains("common.debug"), "{e}");
}

/// Reads `len` bytes of the process's memory.
fn peek(mem: &std::fs::File, addr: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    mem.read_exact_at(&mut buf, addr)
        .unwrap_or_else(|e| panic!("read {len} bytes at {addr:#x}: {e}"));
    buf
}

/// Evaluates a resolved chain against a live process, the way generated
/// BPF code will: apply the accesses, then the fetch.
fn evaluate(mem: &std::fs::File, base: u64, r: &Resolved, indices: &[i64]) -> i64 {
    let mut a = base;
    for acc in &r.accesses {
        match *acc {
            Access::Add(n) => a = a.wrapping_add(n as u64),
            Access::AddScaled { slot, elem_size } => {
                a = a.wrapping_add((indices[slot] as u64).wrapping_mul(elem_size))
            }
            Access::Deref { size } => {
                let b = peek(mem, a, size as usize);
                let mut v = [0u8; 8];
                v[..b.len()].copy_from_slice(&b);
                a = u64::from_le_bytes(v);
            }
        }
    }
    match r.fetch {
        Fetch::Address => a as i64,
        Fetch::Load {
            size,
            signed,
            bitfield,
        } => {
            let b = peek(mem, a, size as usize);
            let mut v = [0u8; 8];
            v[..b.len()].copy_from_slice(&b);
            let raw = u64::from_le_bytes(v);
            let (shift, width) = match bitfield {
                Some(bf) => (u32::from(bf.shift), u32::from(bf.width)),
                None => (0, u32::from(size) * 8),
            };
            let up = raw << (64 - shift - width);
            if signed {
                (up as i64) >> (64 - width)
            } else {
                (up >> (64 - width)) as i64
            }
        }
    }
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pie_global_read_from_a_live_process() {
    let bin = build("layout-pie", &["-gdwarf-5", "-fPIE", "-pie"]);
    let m = Module::open(&bin).unwrap();
    assert_eq!(m.elf().elf_type(), ElfType::Shared);
    let mut child = Child(
        Command::new(&bin)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start fixture"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let pid = child.0.id();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let canon = std::fs::canonicalize(&bin).unwrap();
    let entries: Vec<MapEntry> = maps
        .lines()
        .filter(|l| l.split_whitespace().nth(5).map(Path::new) == Some(canon.as_path()))
        .map(|l| {
            let mut f = l.split_whitespace();
            let (s, e) = f.next().unwrap().split_once('-').unwrap();
            let off = f.nth(1).unwrap();
            MapEntry {
                start: u64::from_str_radix(s, 16).unwrap(),
                end: u64::from_str_radix(e, 16).unwrap(),
                offset: u64::from_str_radix(off, 16).unwrap(),
            }
        })
        .collect();
    assert!(entries.len() >= 2, "{maps}");
    let bias = m.load_bias(&entries).unwrap();
    assert_ne!(bias, 0, "a PIE is not loaded at its link address");
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let var = |spec: &str, chain: &str| {
        let vr = m
            .resolve_var(spec, &parse_chain(chain).unwrap(), false)
            .unwrap();
        evaluate(
            &mem,
            vr.variable.link_address.wrapping_add(bias),
            &vr.resolved,
            &[1, 2],
        )
    };
    let v = m.variable("the_global").unwrap();
    let raw = peek(&mem, v.link_address + bias, 8);
    assert_eq!(
        u64::from_le_bytes(raw.try_into().unwrap()),
        0x1234_5678_8765_4321
    );
    assert_eq!(var("the_global", "") as u64, 0x1234_5678_8765_4321);
    // Through a pointer, a nested struct, arrays, enums.
    assert_eq!(var("global_node_ptr", "->id"), 7);
    assert_eq!(var("global_node_ptr", "->in->a"), 43);
    assert_eq!(var("global_node", "->point->py"), -77);
    assert_eq!(var("global_node_ptr", "->pair[1]->tag[2]"), i64::from(b'z'));
    assert_eq!(var("global_node_ptr", "->pair[i]->tag[j]"), i64::from(b'z'));
    assert_eq!(var("global_node", "->neg"), -5);
    assert_eq!(var("file_static@layout.c", ""), 42);
    // Bitfields, signed and unsigned.
    assert_eq!(var("global_bits", "->flag"), 1);
    assert_eq!(var("global_bits", "->sfield"), -3);
    assert_eq!(var("global_bits", "->ufield"), 21);
    assert_eq!(var("global_bits", "->plain"), -100_000);
    assert_eq!(var("global_bits", "->wide"), 0xAB_CDEF_1234);
    assert_eq!(var("global_bits", "->swide"), -12345);
    assert_eq!(var("global_bits", "->small"), 2);
    assert_eq!(var("global_bits", "->ssmall"), -7);
    assert_eq!(var("global_bits", "->half"), 300);
    assert_eq!(var("global_ints", "->sc"), -2);
    assert_eq!(var("global_ints", "->i16"), -30000);
    assert_eq!(var("global_ints", "->u64") as u64, 0xFEDC_BA98_7654_3210);
    // A function's runtime address is its link address plus the same bias.
    let f = &m.function_probes("layout_fixture_function").unwrap()[0];
    let text = peek(&mem, f.address + bias, 4);
    let file = std::fs::read(&bin).unwrap();
    assert_eq!(
        text,
        file[f.file_offset as usize..f.file_offset as usize + 4]
    );
}

#[test]
fn cold_load_and_resolve_timing() {
    let bin = dwarf5();
    let t0 = Instant::now();
    let m = Module::open(&bin).unwrap();
    let t_open = t0.elapsed();
    m.dwarf().unwrap();
    let t_index = t0.elapsed();
    let mut n = 0;
    for chain in [
        "->in->next->pair[1]->tag",
        "->matrix[i][2]",
        "->val->parts->hi",
        "->anon_u1",
        "->ref->gcptr64",
    ] {
        m.resolve_cast("struct node", &parse_chain(chain).unwrap(), false)
            .unwrap();
        n += 1;
    }
    m.variable("the_global").unwrap();
    let t_all = t0.elapsed();
    eprintln!(
        "debuginfo timing: open {t_open:?}, dwarf+index {t_index:?}, {n} chains + 1 var {:?} total",
        t_all
    );
    assert!(t_all.as_millis() < 2000, "{t_all:?}");
}

/// Corrupted DWARF must give errors, never panics or hangs.
#[test]
fn corrupted_dwarf_does_not_panic() {
    use object::{Object, ObjectSection};
    let original = std::fs::read(dwarf5()).unwrap();
    let ranges: Vec<(usize, usize)> = {
        let obj = object::File::parse(&*original).unwrap();
        [".debug_info", ".debug_abbrev", ".debug_str", ".debug_line"]
            .iter()
            .filter_map(|n| obj.section_by_name(n)?.file_range())
            .map(|(o, s)| (o as usize, s as usize))
            .collect()
    };
    assert_eq!(ranges.len(), 4);
    let path = scratch().join("corrupt");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut ok, mut errors) = (0, 0);
    for round in 0..300 {
        let mut data = original.clone();
        let (start, len) = ranges[round % ranges.len()];
        for _ in 0..1 + next() % 8 {
            let at = start + (next() as usize) % len;
            data[at] = next() as u8;
        }
        std::fs::write(&path, &data).unwrap();
        let Ok(m) = Module::open(&path) else {
            errors += 1;
            continue;
        };
        let mut all_ok = true;
        for (ty, chain) in [
            ("struct node", "->in->next->pair[1]->tag[2]"),
            ("struct bits", "->swide"),
            ("node_ptr", "->anon_u1"),
            ("union value", "->parts->hi"),
            ("ints_t", "->u16"),
        ] {
            let r = m.resolve_cast(ty, &parse_chain(chain).unwrap(), false);
            all_ok &= r.is_ok();
            if let Err(e) = r {
                assert!(!e.to_string().is_empty());
            }
        }
        all_ok &= m.variable("the_global").is_ok();
        if all_ok {
            ok += 1;
        } else {
            errors += 1;
        }
    }
    eprintln!("corrupted DWARF: {ok} still resolved, {errors} gave errors");
    assert_eq!(ok + errors, 300);
}
