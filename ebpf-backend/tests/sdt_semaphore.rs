//! A uprobe with a reference counter on an SDT marker guarded by a
//! semaphore (`tests/fixtures/sdt.c`, marker `stx:guarded`): the kernel
//! raises the semaphore while the probe is attached, in running processes
//! and in ones started meanwhile, only in the filtered process with a pid,
//! and lowers it on detach. Needs root and BPF; under CI=true their absence,
//! or a missing <sys/sdt.h>, fails the test.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use common::*;
use ebpf_backend::insn::*;
use ebpf_backend::*;

/// The fixture's source, or `None` (skipped) when <sys/sdt.h> is missing.
fn fixture_source() -> Option<String> {
    let have_header = [
        "/usr/include/sys/sdt.h",
        "/usr/include/x86_64-linux-gnu/sys/sdt.h",
    ]
    .iter()
    .any(|p| Path::new(p).is_file());
    if !have_header {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("<sys/sdt.h> is missing under CI (package systemtap-sdt-dev)");
        }
        eprintln!("SKIP: <sys/sdt.h> not installed (package systemtap-sdt-dev)");
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sdt.c");
    Some(std::fs::read_to_string(src).unwrap())
}

/// One stapsdt note: (name, pc, semaphore address, argument specs).
fn notes(path: &Path) -> Vec<(String, u64, u64, String)> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(path).unwrap();
    let obj = object::File::parse(&*data).unwrap();
    let sec = obj.section_by_name(".note.stapsdt").expect("stapsdt notes");
    let d = sec.data().unwrap();
    let u32_at = |i: usize| u32::from_le_bytes(d[i..i + 4].try_into().unwrap()) as usize;
    let u64_at = |i: usize| u64::from_le_bytes(d[i..i + 8].try_into().unwrap());
    let align = |n: usize| (n + 3) & !3;
    let mut out = vec![];
    let mut i = 0;
    while i + 12 <= d.len() {
        let (namesz, descsz) = (u32_at(i), u32_at(i + 4));
        let desc = i + 12 + align(namesz);
        let strings: Vec<String> = d[desc + 24..desc + descsz]
            .split(|&b| b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        out.push((
            strings[1].clone(),
            u64_at(desc),
            u64_at(desc + 16),
            strings.get(2).cloned().unwrap_or_default(),
        ));
        i = desc + align(descsz);
    }
    out
}

/// The file offset of link address `addr` through the section holding it.
fn file_offset(path: &Path, addr: u64) -> u64 {
    use object::{Object, ObjectSection};
    let data = std::fs::read(path).unwrap();
    let obj = object::File::parse(&*data).unwrap();
    let sec = obj
        .sections()
        .find(|s| addr >= s.address() && addr < s.address() + s.size())
        .unwrap_or_else(|| panic!("no section holds {addr:#x}"));
    addr - sec.address() + sec.file_range().unwrap().0
}

/// A running `sdt N wait`: one round per line sent.
struct Target {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Target {
    fn start(bin: &Path, n: u64) -> Target {
        let mut child = Command::new(bin)
            .args([n.to_string(), "wait".into()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut t = Target {
            child,
            stdin,
            stdout,
        };
        assert_eq!(t.line(), "ready");
        t
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).unwrap();
        s.trim_end().to_string()
    }

    /// Runs one round: how many iterations took the guarded branch.
    fn round(&mut self) -> u64 {
        self.stdin.write_all(b"go\n").unwrap();
        let l = self.line();
        l.strip_prefix("guarded ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected output {l:?}"))
    }

    /// The semaphore's current value, read through /proc/PID/mem at the
    /// mapping of the binary that holds `file_off`.
    fn semaphore(&self, bin: &Path, file_off: u64) -> u16 {
        let pid = self.child.id();
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let bin = bin.to_str().unwrap();
        let addr = maps
            .lines()
            .filter(|l| l.ends_with(bin))
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (start, end) = f[0].split_once('-')?;
                let start = u64::from_str_radix(start, 16).ok()?;
                let end = u64::from_str_radix(end, 16).ok()?;
                let off = u64::from_str_radix(f[2], 16).ok()?;
                (file_off >= off && file_off - off < end - start).then(|| start + file_off - off)
            })
            .unwrap_or_else(|| panic!("no mapping of offset {file_off:#x}:\n{maps}"));
        let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
        let mut b = [0u8; 2];
        mem.read_exact_at(&mut b, addr).unwrap();
        u16::from_ne_bytes(b)
    }

    fn finish(mut self) {
        drop(self.stdin);
        assert!(self.child.wait().unwrap().success());
    }
}

/// Counts hits and sums rdi (the marker's `-8@%rdi` argument) into `counts`.
fn counting_program(m: &mut Module, counts: MapId) -> ProgId {
    let mut f = FuncAsm::new();
    let out = f.new_label();
    f.emit(Insn::ldx(Size::DW, R7, R1, PT_REGS_RDI));
    lookup_key(&mut f, counts, 0, out);
    f.emit(Insn::mov64_imm(R1, 1));
    f.emit(Insn::atomic(Size::DW, AtomicOp::Add, R0, 0, R1));
    f.emit(Insn::atomic(Size::DW, AtomicOp::Add, R0, 8, R7));
    f.bind(out);
    ret0(&mut f);
    let e = m.asm.add("stx_t_sdt", FuncKind::Entry, 1, f);
    m.add_program("stx_t_sdt", ProgKind::Uprobe, e)
}

#[test]
fn semaphore_raised_only_while_attached() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let Some(src) = fixture_source() else {
        return;
    };
    let dir = Scratch::new("sdt");
    let bin: PathBuf = build_c(&dir, "sdt", &src);
    let (_, pc, sem, args) = notes(&bin)
        .into_iter()
        .find(|n| n.0 == "guarded")
        .expect("stx:guarded marker");
    assert_eq!(args, "-8@%rdi", "the program reads the argument from rdi");
    assert_ne!(sem, 0, "stx:guarded has a semaphore");
    let (pc_off, sem_off) = (file_offset(&bin, pc), file_offset(&bin, sem));

    let mut m = Module::new();
    let counts = m.add_map(MapDef::new("stx_t_sdtcount", MapKind::Array, 4, 16, 1));
    let prog = counting_program(&mut m, counts);
    let ids;
    {
        let l = Loaded::load(&m, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        ids = l.kernel_ids();
        let read = || -> (u64, u64) {
            let v = l.map(counts).lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
            let at = |i: usize| u64::from_ne_bytes(v[i..i + 8].try_into().unwrap());
            (at(0), at(8))
        };
        let n = 100u64;
        let mut t = Target::start(&bin, n);
        assert_eq!(t.semaphore(&bin, sem_off), 0);
        assert_eq!(t.round(), 0, "nothing attached: the branch is not taken");

        let att = l
            .program(prog)
            .attach_uprobe_with(&bin, pc_off, None, Some(sem_off))
            .unwrap();
        assert!(att.describe().contains("ref_ctr"), "{}", att.describe());
        assert_eq!(t.semaphore(&bin, sem_off), 1, "raised in a running process");
        assert_eq!(t.round(), n);
        assert_eq!(read(), (n, n * (n - 1) / 2));
        // A process started while attached has it raised from the start.
        let out = Command::new(&bin).arg("7").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "guarded 7");
        assert_eq!(read().0, n + 7);

        drop(att);
        assert_eq!(t.semaphore(&bin, sem_off), 0, "lowered on detach");
        assert_eq!(t.round(), 0);
        assert_eq!(read().0, n + 7, "detached: no more hits");
        t.finish();

        // With a pid filter only that process's semaphore goes up.
        let mut watched = Target::start(&bin, 5);
        let mut other = Target::start(&bin, 5);
        {
            let pid = watched.child.id() as i32;
            let _a = l
                .program(prog)
                .attach_uprobe_with(&bin, pc_off, Some(pid), Some(sem_off))
                .unwrap();
            assert_eq!(watched.semaphore(&bin, sem_off), 1);
            assert_eq!(other.semaphore(&bin, sem_off), 0);
            assert_eq!((watched.round(), other.round()), (5, 0));
        }
        assert_eq!(watched.semaphore(&bin, sem_off), 0);
        assert_eq!(read().0, n + 7 + 5);
        watched.finish();
        other.finish();
    }
    assert_nothing_left(
        &["stx_t_sdt", "stx_t_sdtcount"],
        &ids.0,
        &ids.1,
        &[bin.to_str().unwrap()],
    );
}

/// An offset wider than the PMU's field is refused before perf_event_open.
/// The kernel keeps one reference counter offset per probed address: a
/// second uprobe there with another one, or none, fails with a message that
/// says so; one with the same offset shares the raised semaphore.
#[test]
fn ref_ctr_offsets_at_one_address_must_agree() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let Some(src) = fixture_source() else {
        return;
    };
    let dir = Scratch::new("sdt-agree");
    let bin = build_c(&dir, "sdt", &src);
    let (_, pc, sem, _) = notes(&bin).into_iter().find(|n| n.0 == "guarded").unwrap();
    let (pc_off, sem_off) = (file_offset(&bin, pc), file_offset(&bin, sem));
    let mut m = Module::new();
    let counts = m.add_map(MapDef::new("stx_t_sdtagree", MapKind::Array, 4, 16, 1));
    let prog = counting_program(&mut m, counts);
    let ids;
    {
        let l = Loaded::load(&m, &LoadOptions::default()).unwrap();
        ids = l.kernel_ids();
        let p = l.program(prog);
        let e = p
            .attach_uprobe_with(&bin, pc_off, None, Some(1 << 40))
            .unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");

        let mut t = Target::start(&bin, 3);
        let a = p
            .attach_uprobe_with(&bin, pc_off, None, Some(sem_off))
            .unwrap();
        for other in [None, Some(sem_off + 2)] {
            let e = p.attach_uprobe_with(&bin, pc_off, None, other).unwrap_err();
            assert!(e.to_string().contains("reference counter offset"), "{e}");
        }
        let b = p
            .attach_uprobe_with(&bin, pc_off, None, Some(sem_off))
            .unwrap();
        assert!(t.semaphore(&bin, sem_off) >= 1);
        assert_eq!(t.round(), 3);
        drop(a);
        assert!(
            t.semaphore(&bin, sem_off) >= 1,
            "still raised for the other"
        );
        drop(b);
        assert_eq!(t.semaphore(&bin, sem_off), 0);
        // With both gone, a plain uprobe there is fine again.
        drop(p.attach_uprobe(&bin, pc_off, None).unwrap());
        t.finish();
    }
    assert_nothing_left(
        &["stx_t_sdt", "stx_t_sdtagree"],
        &ids.0,
        &ids.1,
        &[bin.to_str().unwrap()],
    );
}
