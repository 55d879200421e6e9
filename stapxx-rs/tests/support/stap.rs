//! SystemTap itself as an oracle for user-space probes: `stap -p2` and
//! `-p3` want a kernel build tree even when every probe is in user space;
//! [`stub_tree`] gives them one (`-r`) that holds only what they read for
//! such probes: a `.config` saying uprobes are there, the running
//! kernel's release, and in `System.map` the one kernel function whose
//! presence tells stap `.return` uprobes work.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The stub kernel build tree, made once per test process.
pub fn stub_tree() -> &'static Path {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    TREE.get_or_init(|| {
        let tree = super::scratch().join("stap-stub-kernel");
        let release = super::must(Command::new("uname").arg("-r"));
        std::fs::create_dir_all(tree.join("include/config")).expect("stub tree");
        let config: String = [
            "CONFIG_UPROBES",
            "CONFIG_UPROBE_EVENTS",
            "CONFIG_ARCH_SUPPORTS_UPROBES",
            "CONFIG_TRACEPOINTS",
            "CONFIG_KPROBES",
            "CONFIG_MODULES",
        ]
        .iter()
        .map(|c| format!("{c}=y\n"))
        .collect();
        let files = [
            ("include/config/kernel.release", release),
            (".config", config),
            ("Module.symvers", String::new()),
            ("Makefile", String::new()),
            (
                "System.map",
                "ffffffff81000000 T arch_uretprobe_hijack_return_addr\n".to_string(),
            ),
        ];
        for (name, text) in files {
            std::fs::write(tree.join(name), text).expect("stub tree file");
        }
        tree
    })
}

/// `stap -p<pass> -e SCRIPT` against the stub tree, without debuginfod.
pub fn stap(pass: u8, script: &str) -> Output {
    stap_with(&[&format!("-p{pass}")], script)
}

/// `stap ARGS -e SCRIPT` against the stub tree, without debuginfod
/// (`-p2 -v` lists the bodies of functions too).
pub fn stap_with(args: &[&str], script: &str) -> Output {
    Command::new("stap")
        .arg("-r")
        .arg(stub_tree())
        .args(args)
        .args(["-e", script])
        .env("DEBUGINFOD_URLS", "")
        .output()
        .expect("run stap")
}
