use super::*;

fn full(name: &'static str) -> Reg {
    Reg {
        name,
        width: 8,
        shift: 0,
    }
}

fn part(name: &'static str, width: u8) -> Reg {
    Reg {
        name,
        width,
        shift: 0,
    }
}

/// A symbol table of two entries, for `sym(%rip)` forms.
fn lookup(name: &str) -> Option<u64> {
    match name {
        "counter" => Some(0x4010),
        "table.0" => Some(0x5000),
        _ => None,
    }
}

fn arg(spec: &str) -> Arg {
    parse_arg(spec, &lookup).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn err(spec: &str) -> String {
    match parse_arg(spec, &lookup) {
        Ok(a) => panic!("{spec} parsed as {a:?}"),
        Err(e) => e,
    }
}

fn mem(base: Option<Reg>, index: Option<(Reg, u8)>, disp: i64) -> Operand {
    Operand::Memory {
        base,
        index,
        disp,
        rip_symbol: None,
    }
}

#[test]
fn registers_name_their_64_bit_register() {
    let a = arg("-4@%edi");
    assert_eq!((a.size, a.signed, a.float), (4, true, false));
    assert_eq!(a.operand, Operand::Register(part("rdi", 4)));
    assert_eq!(arg("8@%rdi").operand, Operand::Register(full("rdi")));
    assert_eq!(arg("2@%di").operand, Operand::Register(part("rdi", 2)));
    assert_eq!(arg("1@%dil").operand, Operand::Register(part("rdi", 1)));
    assert_eq!(arg("-4@%r8d").operand, Operand::Register(part("r8", 4)));
    assert_eq!(arg("2@%r10w").operand, Operand::Register(part("r10", 2)));
    assert_eq!(arg("-1@%r15b").operand, Operand::Register(part("r15", 1)));
    assert_eq!(arg("1@%r9l").operand, Operand::Register(part("r9", 1)));
    assert_eq!(arg("8@%r12").operand, Operand::Register(full("r12")));
    assert_eq!(arg("1@%al").operand, Operand::Register(part("rax", 1)));
    assert_eq!(arg("1@%spl").operand, Operand::Register(part("rsp", 1)));
    assert_eq!(arg("4@%ebp").operand, Operand::Register(part("rbp", 4)));
}

#[test]
fn high_byte_registers_shift_by_8() {
    for (spec, name) in [
        ("1@%ah", "rax"),
        ("1@%bh", "rbx"),
        ("-1@%ch", "rcx"),
        ("1@%dh", "rdx"),
    ] {
        let want = Reg {
            name,
            width: 1,
            shift: 8,
        };
        assert_eq!(arg(spec).operand, Operand::Register(want), "{spec}");
    }
}

#[test]
fn memory_forms() {
    assert_eq!(
        arg("8@-24(%rbp)").operand,
        mem(Some(full("rbp")), None, -24)
    );
    assert_eq!(arg("-2@-2(%rbp)").operand, mem(Some(full("rbp")), None, -2));
    assert_eq!(arg("4@(%rax)").operand, mem(Some(full("rax")), None, 0));
    assert_eq!(
        arg("-4@8(%rax,%rdx,4)").operand,
        mem(Some(full("rax")), Some((full("rdx"), 4)), 8)
    );
    assert_eq!(
        arg("8@0x10(%rsp,%r11)").operand,
        mem(Some(full("rsp")), Some((full("r11"), 1)), 16)
    );
    assert_eq!(
        arg("8@-0x18(,%rcx,8)").operand,
        mem(None, Some((full("rcx"), 8)), -24)
    );
    assert_eq!(
        arg("4@12(%eax)").operand,
        mem(Some(part("rax", 4)), None, 12)
    );
    // A bare number is an absolute (non-PIE) address.
    assert_eq!(arg("4@0x601040").operand, mem(None, None, 0x601040));
    assert_eq!(
        arg("-4@112(%rsp)").operand,
        mem(Some(full("rsp")), None, 112)
    );
}

#[test]
fn rip_relative_resolves_to_a_link_address() {
    let want = |disp, sym: &str| Operand::Memory {
        base: None,
        index: None,
        disp,
        rip_symbol: Some(sym.to_string()),
    };
    assert_eq!(arg("8@counter(%rip)").operand, want(0x4010, "counter"));
    assert_eq!(arg("-8@counter+8(%rip)").operand, want(0x4018, "counter+8"));
    assert_eq!(arg("4@counter-4(%rip)").operand, want(0x400c, "counter-4"));
    assert_eq!(
        arg("1@table.0+0x10(%rip)").operand,
        want(0x5010, "table.0+0x10")
    );
    // A non-PIE absolute symbol, indexed.
    assert_eq!(
        arg("8@counter(,%rax,8)").operand,
        Operand::Memory {
            base: None,
            index: Some((full("rax"), 8)),
            disp: 0x4010,
            rip_symbol: Some("counter".into()),
        }
    );
}

#[test]
fn constants() {
    assert_eq!(arg("-4@$42").operand, Operand::Constant(42));
    assert_eq!(arg("-4@$-7").operand, Operand::Constant(-7));
    assert_eq!(arg("8@$0x10").operand, Operand::Constant(16));
    assert_eq!(arg("8@$0xffffffffffffffff").operand, Operand::Constant(-1));
    assert_eq!(arg("1@$0").operand, Operand::Constant(0));
}

#[test]
fn sizes_and_signs() {
    for (spec, size, signed) in [
        ("1@%al", 1, false),
        ("-1@%al", 1, true),
        ("2@%ax", 2, false),
        ("-2@%ax", 2, true),
        ("4@%eax", 4, false),
        ("-4@%eax", 4, true),
        ("8@%rax", 8, false),
        ("-8@%rax", 8, true),
    ] {
        let a = arg(spec);
        assert_eq!((a.size, a.signed), (size, signed), "{spec}");
    }
    let f = arg("8f@-16(%rbp)");
    assert!(f.float && !f.signed && f.size == 8);
}

#[test]
fn specs_without_size_read_as_long() {
    let a = arg("%rdi");
    assert_eq!((a.size, a.signed), (8, true));
    assert_eq!(a.operand, Operand::Register(full("rdi")));
    assert_eq!(arg("-8(%rbp)").operand, mem(Some(full("rbp")), None, -8));
    assert_eq!(arg("$5").operand, Operand::Constant(5));
}

#[test]
fn unsupported_operands_are_errors() {
    for (spec, says) in [
        ("8@%xmm0", "not a general-purpose register"),
        ("8f@%xmm1", "not a general-purpose register"),
        ("8@%rip", "instruction pointer"),
        ("8@%fs:0x28", "segment"),
        ("8@-8(%rip)", "without a symbol"),
        ("8@nosuch(%rip)", "'nosuch' is not in the symbol table"),
        ("8@$counter", "not an integer constant"),
        ("16@%rax", "not 1, 2, 4 or 8"),
        ("3@%rax", "not 1, 2, 4 or 8"),
        ("x@%rax", "bad size prefix"),
        ("8@", "empty operand"),
        ("8@8(%rax", "unbalanced"),
        ("8@8(%rax,%rbx,3)", "scale '3'"),
        ("8@()", "empty parentheses"),
        ("8@(%al)", "cannot address memory"),
        ("8@(%rax,%rbx,4,1)", "more than base"),
        ("8@%é", "not a general-purpose register"),
        ("8@é(%rax)", "bad displacement"),
        ("8@a b", "bad displacement"),
    ] {
        let e = err(spec);
        assert!(e.contains(says), "{spec}: {e}");
    }
}

#[test]
fn arg_errors_name_the_marker_and_spec() {
    let args = parse_args("stx", "probe", "8@%rdi 8@%xmm0 -4@$1", &lookup);
    assert_eq!(args.len(), 3);
    assert!(args[0].is_ok() && args[2].is_ok());
    let e = args[1].clone().unwrap_err();
    assert_eq!((e.index, e.spec.as_str()), (1, "8@%xmm0"));
    let msg = e.to_string();
    assert!(
        msg.contains("stx:probe") && msg.contains("8@%xmm0"),
        "{msg}"
    );
    assert!(parse_args("stx", "none", "", &lookup).is_empty());
}

/// A note as sys/sdt.h lays it out (64-bit little-endian).
fn note(owner: &[u8], ntype: u32, pc: u64, base: u64, sem: u64, strings: &[&str]) -> Vec<u8> {
    let mut desc = Vec::new();
    for a in [pc, base, sem] {
        desc.extend_from_slice(&a.to_le_bytes());
    }
    for s in strings {
        desc.extend_from_slice(s.as_bytes());
        desc.push(0);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(owner.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&ntype.to_le_bytes());
    out.extend_from_slice(owner);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&desc);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

#[test]
fn notes_parse_and_others_are_skipped() {
    let mut data = note(b"stapsdt\0", 3, 0x1130, 0x2004, 0, &["p", "a", "-4@%edi"]);
    data.extend(note(b"GNU\0", 3, 1, 2, 3, &["x", "y", ""]));
    data.extend(note(
        b"stapsdt\0",
        3,
        0x1140,
        0x2004,
        0x4010,
        &["p", "b", ""],
    ));
    data.extend(note(b"stapsdt\0", 3, 0x1150, 0x2004, 0, &["p", "c"]));
    let notes = parse_notes(&data, true, 8).unwrap();
    assert_eq!(notes.len(), 3);
    assert_eq!(
        notes[0],
        Note {
            pc: 0x1130,
            base: 0x2004,
            semaphore: 0,
            provider: "p".into(),
            name: "a".into(),
            args: "-4@%edi".into(),
        }
    );
    assert_eq!((notes[1].semaphore, notes[1].args.as_str()), (0x4010, ""));
    assert_eq!((notes[2].name.as_str(), notes[2].args.as_str()), ("c", ""));
}

#[test]
fn damaged_notes_are_errors() {
    let data = note(b"stapsdt\0", 3, 0x1130, 0x2004, 0, &["p", "a", "8@%rax"]);
    for cut in [13, 20, 30, data.len() - 4] {
        assert!(parse_notes(&data[..cut], true, 8).is_err(), "cut at {cut}");
    }
    // Provider without its NUL.
    let mut bad = note(b"stapsdt\0", 3, 1, 2, 0, &[]);
    bad.extend_from_slice(b"abc\0");
    let desc_len = 24 + 3; // "abc" without NUL counted
    bad[4..8].copy_from_slice(&(desc_len as u32).to_le_bytes());
    assert!(parse_notes(&bad, true, 8).is_err());
}
