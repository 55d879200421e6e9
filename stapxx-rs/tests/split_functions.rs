//! Functions gcc reshapes at -O2 (`tests/fixtures/split.c`, built `-O0`
//! and `-O2`): one split into hot and cold parts, where the probe goes at
//! the entry of the hot part (the function's first listed range, where its
//! symbol points), not at the lowest address, which is the cold part's;
//! and a `.constprop` clone, probed by its function's name, whose constant
//! argument reads as the constant.

mod support;

use std::path::{Path, PathBuf};

fn build(opt: &str) -> PathBuf {
    support::c_fixture("split.c", &format!("split{opt}"), &[opt])
}

/// The ELF symbols of `exe`: name and address (cc's PIEs map their text at
/// its file offset, so an address is the offset `-p2` names).
fn symbols(exe: &Path) -> Vec<(String, u64)> {
    let out = support::must(std::process::Command::new("nm").arg(exe));
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let addr = u64::from_str_radix(w.next()?, 16).ok()?;
            let _kind = w.next()?;
            Some((w.next()?.to_string(), addr))
        })
        .collect()
}

/// The file offsets `-p2` says `function("func")` goes to.
fn sites(exe: &Path, func: &str) -> Vec<u64> {
    support::p2_site_offsets(exe, &format!("function(\"{func}\")"))
}

/// The address of `name`'s first instruction.
fn symbol(exe: &Path, name: &str) -> u64 {
    symbols(exe)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no symbol {name} in {}", exe.display()))
        .1
}

#[test]
fn split_function_is_probed_at_its_hot_entry() {
    let exe = build("-O2");
    let cold = symbol(&exe, "measure.cold");
    let hot = symbol(&exe, "measure");
    // The fixture is only a test of this if the cold part lies below.
    assert!(
        cold < hot,
        "measure.cold {cold:#x} is not below measure {hot:#x}"
    );
    assert_eq!(sites(&exe, "measure"), vec![hot]);
    after_prologue(&build("-O0"), "measure");
}

/// At -O0 the one site is inside the function, after its prologue.
fn after_prologue(exe: &Path, name: &str) {
    let start = symbol(exe, name);
    let size = symbol_size(exe, name);
    let got = sites(exe, name);
    assert_eq!(got.len(), 1, "{got:x?}");
    assert!(
        start < got[0] && got[0] < start + size,
        "{name} at {start:#x}+{size:#x}: {got:x?}"
    );
}

fn symbol_size(exe: &Path, name: &str) -> u64 {
    let out = support::must(std::process::Command::new("nm").arg("-S").arg(exe));
    out.lines()
        .find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 4 && w[3] == name).then(|| u64::from_str_radix(w[1], 16).ok())?
        })
        .unwrap_or_else(|| panic!("no size for {name}"))
}

#[test]
fn constprop_clone_is_probed_by_its_name() {
    let exe = build("-O2");
    let clone = symbol(&exe, "scaled.constprop.0");
    assert_eq!(sites(&exe, "scaled"), vec![clone]);
    after_prologue(&build("-O0"), "scaled");
}

/// What the program computes, by the same rules: measure's sums of the
/// subject's bytes from `start`, -1 past the end; scaled's `x*3+2`.
fn expected(subject: &str) -> String {
    let n = subject.len() as i64;
    let mut out = String::new();
    for i in 0..3 {
        let sum: i64 = subject.bytes().skip(i as usize).map(i64::from).sum();
        out += &format!("measure {n} {i} {subject}\nmeasure returns {sum}\n");
        out += &format!("scaled {i} 3 bb\nscaled returns {}\n", i * 3 + 2);
    }
    out += &format!("measure {n} {} {subject}\nmeasure returns -1\n", n + 2);
    out
}

#[test]
fn arguments_and_returns_at_both_levels() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let exe = build(opt);
        let script = format!(
            r#"probe process("{e}").function("measure") {{ printf("measure %d %d %s\n", $length, $start, user_string($subject)) }}
probe process("{e}").function("measure").return {{ printf("measure returns %d\n", $return) }}
probe process("{e}").function("scaled") {{ printf("scaled %d %d %s\n", $x, $scale, user_string($tag)) }}
probe process("{e}").function("scaled").return {{ printf("scaled returns %d\n", $return) }}"#,
            e = exe.display()
        );
        let cmd = format!("{} abcdef", exe.display());
        let (code, out, err) = support::stapxx_c(&cmd, &script);
        assert_eq!(code, 0, "{opt}: {err}");
        assert_eq!(out, expected("abcdef"), "{opt}: {err}");
    }
}
