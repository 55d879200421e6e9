//! A target in its own mount namespace with a private root, as in a
//! container: its executable and debug file exist only on a tmpfs mounted
//! inside that namespace, so the only way to them is `/proc/PID/root`.
//!
//! The process is `tests/fixtures/layout.c` built as a static PIE (nothing
//! to load from the private root), stripped, with its DWARF in a separate
//! file under the private root's `/usr/lib/debug/.build-id/`. It runs as
//!
//!     unshare --mount --propagation private -- sh -c \
//!         'mount -t tmpfs ... ROOT; copy files in; exec chroot ROOT /opt/.../layout'
//!
//! (`unshare` and `sh` exec, so the child's pid is the target's). The mount
//! is invisible here: ROOT is an empty directory from this namespace.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use stapxx::debuginfo::{parse_chain, DebugSource, LocateOptions, Module};
use stapxx::target::TargetInfo;
use support::{c_fixture, map_entries, missing, must, pahole, scratch, Mem, Proc};

/// Where the executable lives inside the target's root (not on the host).
const IN_TARGET: &str = "/opt/stapxx-private-root/bin/layout";

#[test]
fn private_mount_namespace_root() {
    if !support::is_root() {
        missing("root (mount and chroot in a new mount namespace)");
        return;
    }
    for tool in ["unshare", "chroot", "objcopy", "strip", "cc"] {
        if !support::have_tool(tool) {
            missing(&format!("{tool} (util-linux, coreutils, binutils, gcc)"));
            return;
        }
    }
    assert!(
        !Path::new(IN_TARGET).exists(),
        "{IN_TARGET} exists on this host: the test needs a path only the target has"
    );
    let full = c_fixture(
        "layout.c",
        "layout-static-pie",
        &["-gdwarf-5", "-static-pie"],
    );
    let dir = scratch().join("private-root");
    std::fs::create_dir_all(&dir).unwrap();
    let stripped = dir.join("layout.stripped");
    let debug = dir.join("layout.debug");
    must(
        Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(&full)
            .arg(&debug),
    );
    must(
        Command::new("strip")
            .arg("--strip-all")
            .arg(&full)
            .arg("-o")
            .arg(&stripped),
    );
    let build_id = Module::open(&full)
        .unwrap()
        .elf()
        .build_id_hex()
        .expect("build-id note");
    let debug_in_target = format!(
        "/usr/lib/debug/.build-id/{}/{}.debug",
        &build_id[..2],
        &build_id[2..]
    );
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();

    let script = r#"set -e
root=$1
mount -t tmpfs stapxx-private-root "$root"
mkdir -p "$root$(dirname "$4")" "$root$(dirname "$5")"
cp "$2" "$root$4"
cp "$3" "$root$5"
exec chroot "$root" "$4"
"#;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(&root)
    .arg(&stripped)
    .arg(&debug)
    .arg(IN_TARGET)
    .arg(&debug_in_target);
    let mut proc = Proc::spawn(&mut cmd);
    proc.wait_for_line("ready", Duration::from_secs(20));
    let pid = proc.pid();

    // From here the files are only reachable through /proc/PID/root.
    let info = TargetInfo::from_pid(pid).unwrap();
    let proc_root = PathBuf::from(format!("/proc/{pid}/root"));
    assert!(!Path::new(IN_TARGET).exists());
    assert!(
        !info.exe.exists(),
        "{} visible from the host namespace",
        info.exe.display()
    );
    assert!(
        std::fs::read_dir(&root).unwrap().next().is_none(),
        "the tmpfs leaked into this mount namespace"
    );
    assert!(info.host_path(Path::new(IN_TARGET)).is_file());

    let opts = LocateOptions {
        root: Some(proc_root.clone()),
        debug_dirs: vec![PathBuf::from("/usr/lib/debug")],
        host_fallback: false,
    };
    let m = Module::open_in(Path::new(IN_TARGET), opts).unwrap();
    assert!(!m.elf().has_debug_info() && !m.elf().has_symtab());
    assert_eq!(
        m.debug_source().unwrap(),
        &DebugSource::BuildId(proc_root.join(debug_in_target.trim_start_matches('/')))
    );

    // Struct layouts: every member pahole prints for the unstripped build.
    if support::have_tool("pahole") {
        for ty in ["node", "bits", "ints"] {
            let layout = pahole::layout(&full, ty, true);
            assert!(layout.members.len() > 3);
            for mem in &layout.members {
                let what = format!("{ty} .{}", mem.display());
                let r = m
                    .resolve_cast(&format!("struct {ty}"), &mem.steps(), mem.bit.is_none())
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(r.constant_offset(), Some(mem.offset as i64), "{what}");
                if mem.bit.is_none() {
                    assert_eq!(r.value.size, mem.size, "{what}");
                }
            }
        }
    } else {
        missing("pahole (package dwarves)");
    }

    // @var: link address + bias from the maps of the file the target runs.
    let entries = map_entries(&info, &info.exe);
    assert!(entries.len() >= 2, "{:?}", info.maps);
    let bias = m.load_bias(&entries).unwrap();
    assert_ne!(bias, 0, "a static PIE is not at its link address");
    let mem = Mem::open(pid);
    let var = |spec: &str, chain: &str| {
        let vr = m
            .resolve_var(spec, &parse_chain(chain).unwrap(), false)
            .unwrap_or_else(|e| panic!("@var({spec}){chain}: {e}"));
        mem.eval(vr.variable.link_address + bias, &vr.resolved, &[])
    };
    assert_eq!(var("the_global", "") as u64, 0x1234_5678_8765_4321);
    assert_eq!(var("global_node_ptr", "->id"), 7);
    assert_eq!(var("global_node_ptr", "->pair[1]->tag[2]"), i64::from(b'z'));
    assert_eq!(var("global_bits", "->swide"), -12345);
    assert_eq!(var("file_static@layout.c", ""), 42);
    // Symbols come from the debug file (the executable has none).
    let f = &m.function_probes("layout_fixture_function").unwrap()[0];
    let text = mem.read(f.address + bias, 8);
    let file = std::fs::read(&full).unwrap();
    let off = f.file_offset as usize;
    assert_eq!(text, file[off..off + 8]);
    drop(proc);
    // The namespace (and its tmpfs) went away with the process.
    assert!(support::wait_until(Duration::from_secs(5), || {
        !Path::new(&format!("/proc/{pid}")).exists()
    }));
}
