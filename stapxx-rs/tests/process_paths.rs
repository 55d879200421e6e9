//! Which files `process("NAME")` names, as stap finds them: a glob
//! pattern every regular file it matches (canonical, each once; each
//! optional, so the point applies to those that have the function), a
//! bare name the program `$PATH` finds. Checked on the `-p2` sites (no
//! root needed) and once on a real run.

mod support;

use std::path::{Path, PathBuf};

/// The `(module, file offset)` of each uprobe site of `-p2`'s listing.
fn sites(script: &str) -> Result<Vec<String>, String> {
    let (code, out, err) = support::stapxx(&["-p2", "-e", script]);
    if code != 0 {
        return Err(err);
    }
    Ok(out
        .lines()
        .filter(|l| l.starts_with("#   uprobe"))
        .map(|l| {
            let module = l
                .split(" in ")
                .nth(1)
                .unwrap_or("")
                .split(" (file offset")
                .next();
            module.unwrap_or("").to_string()
        })
        .collect())
}

/// A directory of files a pattern can match: the fixture with `visit`
/// (twice: built -O0 and -O2), a program without it, a symlink to the
/// first (one file), a text file and a dot file (never matched).
fn tree() -> PathBuf {
    static TREE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TREE.get_or_init(make_tree).clone()
}

fn make_tree() -> PathBuf {
    let dir = support::scratch().join("globs");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = |from: PathBuf, to: &str| std::fs::copy(from, dir.join(to)).map(|_| ()).unwrap();
    copy(
        support::c_fixture("pretty.c", "pretty-O0", &["-O0"]),
        "a-pretty",
    );
    copy(
        support::c_fixture("pretty.c", "pretty-O2", &["-O2"]),
        "b-pretty",
    );
    copy(
        support::c_fixture("lifecycle.c", "lifecycle-O2", &["-O2", "-pthread"]),
        "c-life",
    );
    std::os::unix::fs::symlink(dir.join("a-pretty"), dir.join("d-link")).unwrap();
    std::fs::write(dir.join("e-notes.txt"), "not a program\n").unwrap();
    copy(
        support::c_fixture("pretty.c", "pretty-O0", &["-O0"]),
        ".hidden",
    );
    dir.canonicalize().unwrap()
}

#[test]
fn a_pattern_applies_to_the_files_that_have_the_function() {
    let d = tree();
    let d = d.display();
    let got = sites(&format!(
        r#"probe process("{d}/*").function("visit") {{ }}"#
    ))
    .unwrap();
    assert_eq!(got, [format!("{d}/a-pretty"), format!("{d}/b-pretty")]);
    // A narrower pattern, and one character.
    let got = sites(&format!(
        r#"probe process("{d}/?-pretty").function("sum") {{ }}"#
    ))
    .unwrap();
    assert_eq!(got, [format!("{d}/a-pretty"), format!("{d}/b-pretty")]);
    let got = sites(&format!(
        r#"probe process("{d}/[c]-*").function("main") {{ }}"#
    ))
    .unwrap();
    assert_eq!(got, [format!("{d}/c-life")]);
}

#[test]
fn a_pattern_that_finds_nothing() {
    let d = tree();
    let d = d.display();
    let err = sites(&format!(
        r#"probe process("{d}/*").function("nosuch") {{ }}"#
    ))
    .unwrap_err();
    assert!(
        err.contains(&format!(
            "none of the 4 files '{d}/*' matches has it; the first: {d}/a-pretty: "
        )),
        "{err}"
    );
    let err = sites(&format!(
        r#"probe process("{d}/zz*").function("main") {{ }}"#
    ))
    .unwrap_err();
    assert!(
        err.contains(&format!("no file matches the pattern '{d}/zz*'")),
        "{err}"
    );
    // `?` makes both silent.
    let ok = sites(&format!(
        r#"probe process("{d}/zz*").function("main") ?, process("{d}/*").function("nosuch") ? {{ }}"#
    ));
    assert_eq!(ok, Ok(vec![]));
}

#[test]
fn a_bare_name_is_the_program_path_finds() {
    if !support::have_tool("luajit") {
        support::missing("luajit on PATH");
        return;
    }
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("luajit"))
        .find(|f| f.is_file())
        .expect("luajit on PATH");
    let canonical = Path::new(&found).canonicalize().unwrap();
    let got = sites(r#"probe process("luajit").function("lua_pcall") { }"#).unwrap();
    assert_eq!(got, [canonical.display().to_string()]);
}

#[test]
fn a_pattern_probes_each_file_it_matches() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let d = tree();
    let script = format!(
        r#"probe process("{}/*-pretty").function("sum") {{ printf("%s %d\n", execname(), $b->v39) }}"#,
        d.display()
    );
    for name in ["a-pretty", "b-pretty"] {
        let (code, out, err) =
            support::stapxx(&["-c", &d.join(name).display().to_string(), "-e", &script]);
        assert_eq!((code, err.as_str()), (0, ""), "{out}");
        let traced: Vec<&str> = out.lines().filter(|l| !l.starts_with("pretty ")).collect();
        assert_eq!(traced, [format!("{name} 390")], "{out}");
    }
}
