//! Arbitrary UTF-8 as a script through everything before loading, as
//! `stapxx-rs -p3 --exec FIXTURE -e TEXT` runs it: stapxx expansion (with
//! `@use` of the bundled tapsets), preprocessing with the library macros,
//! parsing, pass 2 (probe points matched against the fixture's debuginfo,
//! or tracefs, perf and timer kinds; `@cast`/`@var`/`$var` resolved),
//! lowering to IR, code generation; then what `-p3` prints (the IR, the
//! BPF listing, the ELF object) or the rendered diagnostic. Nothing needs
//! a live process: process probes without a path, `$^exec_path` and
//! `@cast` default to the fixture. Any panic, abort, stack overflow or
//! timeout is a bug.
//!
//! The fixture is `tests/fixtures/params.c` built with `cc -g -O2` under
//! `fuzz/target/fixtures/`, or the ELF file `$STAPXX_FUZZ_EXEC` names (a
//! LuaJIT with debug info, for the luajit tapset).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stapxx::cli::{parse_args, Options};
use stapxx::driver::Session;
use stapxx::expand::ExpandOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The command line and the expansion options, computed once (they run
/// `ldd` on the fixture).
struct Setup {
    opts: Options,
    expand: ExpandOptions,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let exec = std::env::var_os("STAPXX_FUZZ_EXEC")
            .map(PathBuf::from)
            .unwrap_or_else(build_fixture);
        let exec = exec.to_str().expect("UTF-8 fixture path").to_string();
        let opts = parse_args(["stapxx-rs", "-p3", "--exec", &exec, "-e", ""]);
        let expand = Session::new(&opts)
            .expand_options()
            .unwrap_or_else(|d| panic!("expansion options: {}", d.message));
        Setup { opts, expand }
    })
}

/// `tests/fixtures/params.c`, compiled once per machine (renamed into
/// place, so concurrent jobs do not see a half-written file).
fn build_fixture() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/fixtures");
    let out = dir.join("params-O2");
    if out.is_file() {
        return out;
    }
    std::fs::create_dir_all(&dir).expect("fixture directory");
    let tmp = dir.join(format!("params-O2.{}", std::process::id()));
    let status = Command::new("cc")
        .args(["-g", "-O2"])
        .arg(root.join("../tests/fixtures/params.c"))
        .arg("-o")
        .arg(&tmp)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed on tests/fixtures/params.c");
    std::fs::rename(&tmp, &out).expect("rename the fixture");
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let setup = setup();
    let text = text.to_string();
    // The binary runs the passes on a 256 MiB stack (main.rs): the same
    // here, so that only what overflows there counts.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || one(setup, &text))
        .expect("thread")
        .join()
        .expect("no panic");
});

fn one(setup: &Setup, text: &str) {
    let mut session = Session::new(&setup.opts);
    match session.translate_source("fuzz.stp", text, &setup.expand) {
        Ok(t) => {
            let _ = stapxx::ir::print::print_program(&t.program);
            if let Some(c) = &t.compiled {
                let _ = c.listing(&session.sources);
                let _ = ebpf_backend::to_elf(&c.module);
            }
        }
        // Rendering places the span in the original text: it must fit.
        Err(d) => {
            let _ = d.render(&session.sources);
        }
    }
}
