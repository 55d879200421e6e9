//! Shared helpers of the kernel tests: BPF availability (fail under CI=true,
//! skip otherwise), mounts, one-at-a-time locking, building small C targets,
//! symbol file offsets, and the "nothing of ours is left" checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use ebpf_backend::sys;

static LOCK: Mutex<()> = Mutex::new(());

/// Serialise the kernel tests of one test binary (they check global state).
pub fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn mount_if_missing(dir: &str, fstype: &str) {
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split_whitespace().nth(1) == Some(dir)))
        .unwrap_or(false);
    if !mounted {
        let _ = Command::new("mount")
            .args(["-t", fstype, fstype, dir])
            .status();
    }
}

/// Whether the kernel lets us use BPF. Under CI=true a missing BPF is a
/// failure, not a skip.
pub fn bpf_ready() -> bool {
    mount_if_missing("/sys/kernel/tracing", "tracefs");
    mount_if_missing("/sys/fs/bpf", "bpf");
    let mut a = sys::Attr::default();
    a.u32(0, 2).u32(4, 4).u32(8, 8).u32(12, 1); // a tiny array map
    let ok = sys::bpf_fd(sys::BPF_MAP_CREATE, &mut a);
    match ok {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("BPF is not available under CI: {e}");
            }
            eprintln!("SKIP: BPF not available here: {e}");
            false
        }
    }
}

/// A scratch directory for this test binary, removed by [`Scratch`]'s drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("stx-ebpf-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The C target of the probe tests: `target N` calls `stx_target(i)` for
/// i in 0..N; with a second argument it first waits for a line on stdin.
pub const TARGET_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) long stx_target(long x) {
    __asm__ volatile("" ::: "memory");
    return x + 1;
}
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1, s = 0;
    if (argc > 2) { char buf[16]; if (!fgets(buf, sizeof buf, stdin)) return 2; }
    for (long i = 0; i < n; i++) s += stx_target(i);
    printf("%ld\n", s);
    return 0;
}
"#;

/// Compile `src` with gcc into `dir/name`.
pub fn build_c(dir: &Scratch, name: &str, src: &str) -> PathBuf {
    let c = dir.path(&format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let out = dir.path(name);
    let st = Command::new("gcc")
        .args(["-O1", "-g", "-fno-inline", "-o"])
        .arg(&out)
        .arg(&c)
        .status()
        .expect("gcc runs");
    assert!(st.success(), "gcc failed");
    out
}

/// The file offset of function `sym` in ELF file `path` (what uprobes take).
pub fn symbol_file_offset(path: &Path, sym: &str) -> u64 {
    use object::{Object, ObjectSection, ObjectSymbol};
    let data = std::fs::read(path).unwrap();
    let obj = object::File::parse(&*data).unwrap();
    let s = obj
        .symbols()
        .find(|s| s.name() == Ok(sym))
        .unwrap_or_else(|| panic!("no symbol {sym}"));
    let sec = obj.section_by_index(s.section_index().unwrap()).unwrap();
    let (file_off, _) = sec.file_range().unwrap();
    s.address() - sec.address() + file_off
}

/// `bpftool prog list` and `bpftool map list` output.
pub fn bpftool_lists() -> String {
    let mut s = String::new();
    for what in ["prog", "map"] {
        let out = Command::new("bpftool")
            .args([what, "list"])
            .output()
            .expect("bpftool is installed (Debian package bpftool)");
        assert!(out.status.success(), "bpftool {what} list failed");
        s.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    s
}

/// After a test: none of `names` (program/map names) is loaded, none of
/// `prog_ids`/`map_ids` exists, and tracefs uprobe_events has nothing
/// mentioning `needles`.
pub fn assert_nothing_left(names: &[&str], prog_ids: &[u32], map_ids: &[u32], needles: &[&str]) {
    // Releases are synchronous on close, but allow the kernel a moment for
    // deferred frees.
    let mut tries = 0;
    loop {
        let lists = bpftool_lists();
        let left_names: Vec<&&str> = names
            .iter()
            .filter(|n| lists.split_whitespace().any(|w| w == **n))
            .collect();
        let left_progs: Vec<&u32> = prog_ids
            .iter()
            .filter(|&&i| sys::prog_id_exists(i))
            .collect();
        let left_maps: Vec<&u32> = map_ids.iter().filter(|&&i| sys::map_id_exists(i)).collect();
        if left_names.is_empty() && left_progs.is_empty() && left_maps.is_empty() {
            break;
        }
        tries += 1;
        if tries > 50 {
            panic!(
                "left behind: names {left_names:?}, prog ids {left_progs:?}, map ids {left_maps:?}\n{lists}"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for f in [
        "/sys/kernel/tracing/uprobe_events",
        "/sys/kernel/tracing/kprobe_events",
    ] {
        if let Ok(ev) = std::fs::read_to_string(f) {
            for n in needles {
                assert!(!ev.contains(n), "{f} still mentions {n}:\n{ev}");
            }
        }
    }
}

use ebpf_backend::insn::*;
use ebpf_backend::{helpers, FuncAsm, Label, MapId};

/// `r0 = lookup(map, &(u32)key)`; `goto out` when missing. Uses r10-4.
pub fn lookup_key(f: &mut FuncAsm, map: MapId, key: i32, out: Label) {
    f.emit(Insn::st_imm(Size::W, R10, -4, key));
    f.ld_map_fd(R1, map);
    f.emit(Insn::mov64_reg(R2, R10));
    f.emit(Insn::alu64_imm(Alu::Add, R2, -4));
    f.call_helper(helpers::MAP_LOOKUP_ELEM);
    f.jmp_imm(Cond::Eq, R0, 0, out);
}

/// `r0 = 0; exit`.
pub fn ret0(f: &mut FuncAsm) {
    f.emit(Insn::mov64_imm(R0, 0));
    f.emit(Insn::exit());
}

/// x86-64 `struct pt_regs` offsets.
pub const PT_REGS_RAX: i16 = 80;
pub const PT_REGS_RDI: i16 = 112;
