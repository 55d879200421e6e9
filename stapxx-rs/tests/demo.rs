//! The README's first command, as a new user runs it: `bash
//! examples/demo.sh` builds what it needs, profiles the bundled workload
//! and writes a flame graph.

mod support;

#[test]
fn readme_first_command_makes_the_flame_graph() {
    if !support::is_root() {
        support::missing("root (BPF)");
        return;
    }
    for tool in ["apt-get", "dpkg-source", "make", "cc"] {
        if !support::have_tool(tool) {
            support::missing(tool);
            return;
        }
    }
    let svg = support::scratch().join("demo-flamegraph.svg");
    // A temporary directory of its own: whatever the demo makes there
    // (the private apt setup of a first run, about 22 MB) must be gone
    // when it ends.
    let tmp = support::scratch().join("demo-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = std::process::Command::new("bash")
        .current_dir(support::workspace_root())
        .args(["examples/demo.sh", "2"])
        .arg(&svg)
        .env("TMPDIR", &tmp)
        .output()
        .expect("run examples/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains(&format!("== wrote {}", svg.display())),
        "{stdout}"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "temporaries left behind: {left:?}");
    let text = std::fs::read_to_string(&svg).expect("the SVG was written");
    // inferno's SVG starts with a DOCTYPE, which roxmltree refuses by default.
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(&text, opts).expect("valid XML");
    // The workload's functions, named from its source.
    for f in ["demo:checksum", "demo:parse_numbers", "demo:serve"] {
        assert!(text.contains(f), "{f} missing from the flame graph");
    }
    let folded = std::fs::read_to_string(svg.with_extension("folded")).unwrap();
    assert!(folded.lines().count() > 1, "{folded}");
}
