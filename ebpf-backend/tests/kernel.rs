//! Kernel tests: real programs loaded, attached and read back. They need
//! root and BPF; under CI=true a missing BPF fails them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ebpf_backend::insn::*;
use ebpf_backend::*;

fn load(m: &Module) -> Loaded {
    match Loaded::load(m, &LoadOptions::default()) {
        Ok(l) => l,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn run_target(bin: &std::path::Path, n: u64) -> i64 {
    let out = Command::new(bin).arg(n.to_string()).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// (a) `bpf_loop` 1000 times per hit with a callback subprogram that makes
/// a BPF-to-BPF call, summing the index into a per-CPU frame; the entry adds
/// the frame's sum and bpf_loop's return into a result map.
#[test]
fn bpf_loop_with_callback_and_call_sums_exactly() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let dir = Scratch::new("loop");
    let bin = build_c(&dir, "target", TARGET_C);
    let off = symbol_file_offset(&bin, "stx_target");

    let mut m = Module::new();
    let frame = m.add_map(MapDef::new("stx_t_frame", MapKind::PercpuArray, 4, 16, 1));
    let total = m.add_map(MapDef::new("stx_t_total", MapKind::Array, 4, 16, 1));

    // static long stx_add(long *frame, long idx) { frame[0] += idx; return 0; }
    let add = m.asm.declare("stx_add", FuncKind::Static, 2);
    let mut f = FuncAsm::new();
    f.set_tag(30);
    f.emit(Insn::ldx(Size::DW, R3, R1, 0));
    f.emit(Insn::alu64_reg(Alu::Add, R3, R2));
    f.emit(Insn::stx(Size::DW, R1, 0, R3));
    ret0(&mut f);
    m.asm.define(add, f);

    // static long stx_cb(u32 idx, void **ctx) { stx_add(*ctx, idx); return 0; }
    let cb = m.asm.declare("stx_cb", FuncKind::Static, 2);
    let mut f = FuncAsm::new();
    f.set_tag(20);
    f.emit(Insn::ldx(Size::DW, R3, R2, 0));
    f.emit(Insn::mov64_reg(R2, R1));
    f.emit(Insn::mov64_reg(R1, R3));
    f.call_func(add);
    ret0(&mut f);
    m.asm.define(cb, f);

    let entry = m.asm.declare("stx_t_loop", FuncKind::Entry, 1);
    let mut f = FuncAsm::new();
    f.set_tag(10);
    let out = f.new_label();
    lookup_key(&mut f, frame, 0, out);
    f.emit(Insn::mov64_reg(R6, R0));
    f.emit(Insn::st_imm(Size::DW, R6, 0, 0));
    f.emit(Insn::stx(Size::DW, R10, -16, R6));
    f.emit(Insn::mov64_imm(R1, 1000));
    f.ld_func_addr(R2, cb);
    f.emit(Insn::mov64_reg(R3, R10));
    f.emit(Insn::alu64_imm(Alu::Add, R3, -16));
    f.emit(Insn::mov64_imm(R4, 0));
    f.call_helper(helpers::LOOP);
    f.emit(Insn::mov64_reg(R7, R0));
    lookup_key(&mut f, total, 0, out);
    f.emit(Insn::ldx(Size::DW, R1, R6, 0));
    f.emit(Insn::atomic(Size::DW, AtomicOp::Add, R0, 0, R1));
    f.emit(Insn::atomic(Size::DW, AtomicOp::Add, R0, 8, R7));
    f.bind(out);
    ret0(&mut f);
    m.asm.define(entry, f);
    let prog = m.add_program("stx_t_loop", ProgKind::Uprobe, entry);

    let ids;
    {
        let l = load(&m);
        ids = l.kernel_ids();
        let p = l.program(prog);
        assert!(p.image().listing().contains("call bpf_loop#181"));
        let _att = p.attach_uprobe(&bin, off, None).unwrap();
        let n = 5;
        assert_eq!(run_target(&bin, n), (1..=n as i64).sum());
        let t = l.map(total).lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
        let sum = u64::from_ne_bytes(t[0..8].try_into().unwrap());
        let iters = u64::from_ne_bytes(t[8..16].try_into().unwrap());
        assert_eq!(sum, n * 499_500);
        assert_eq!(iters, n * 1000);
    }
    assert_nothing_left(
        &["stx_t_loop", "stx_t_frame", "stx_t_total"],
        &ids.0,
        &ids.1,
        &["stx_target", bin.to_str().unwrap()],
    );
}

/// Count into `slot` of `counts` (an Array map of u64) atomically; r1 holds the increment.
fn add_to_slot(f: &mut FuncAsm, counts: MapId, slot: i16, out: Label) {
    f.emit(Insn::mov64_reg(R6, R1));
    lookup_key(f, counts, 0, out);
    f.emit(Insn::atomic(Size::DW, AtomicOp::Add, R0, slot * 8, R6));
}

/// (c) A uprobe and a uretprobe on a function called exactly N times count
/// N hits each, and read the argument (rdi) and return value (rax) from
/// pt_regs; a second run with a pid filter sees only its own process.
#[test]
fn uprobe_and_uretprobe_count_exactly() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let dir = Scratch::new("uprobe");
    let bin = build_c(&dir, "target", TARGET_C);
    let off = symbol_file_offset(&bin, "stx_target");

    let mut m = Module::new();
    // [entries, sum of args, returns, sum of return values]
    let counts = m.add_map(MapDef::new("stx_t_ucounts", MapKind::Array, 4, 32, 1));
    let mut progs = vec![];
    for (name, kind, reg, slot) in [
        ("stx_t_uprobe", ProgKind::Uprobe, PT_REGS_RDI, 0),
        ("stx_t_uretprobe", ProgKind::Uretprobe, PT_REGS_RAX, 2),
    ] {
        let mut f = FuncAsm::new();
        let out = f.new_label();
        f.emit(Insn::ldx(Size::DW, R7, R1, reg));
        f.emit(Insn::mov64_imm(R1, 1));
        add_to_slot(&mut f, counts, slot, out);
        f.emit(Insn::atomic(
            Size::DW,
            AtomicOp::Add,
            R0,
            (slot + 1) * 8,
            R7,
        ));
        f.bind(out);
        ret0(&mut f);
        let e = m.asm.add(name, FuncKind::Entry, 1, f);
        progs.push(m.add_program(name, kind, e));
    }

    let ids;
    {
        let l = load(&m);
        ids = l.kernel_ids();
        let read = || -> Vec<u64> {
            let v = l.map(counts).lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
            v.chunks(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
                .collect()
        };
        let n = 1234u64;
        {
            let _a = l.program(progs[0]).attach_uprobe(&bin, off, None).unwrap();
            let _b = l.program(progs[1]).attach_uprobe(&bin, off, None).unwrap();
            run_target(&bin, n);
        }
        let sum_args = n * (n - 1) / 2;
        assert_eq!(read(), vec![n, sum_args, n, sum_args + n]);
        // Detached: more calls change nothing.
        run_target(&bin, 10);
        assert_eq!(read(), vec![n, sum_args, n, sum_args + n]);

        // pid filter: two processes waiting on stdin, probes on one of them.
        l.map(counts)
            .update(&0u32.to_ne_bytes(), &[0u8; 32])
            .unwrap();
        let spawn = |k: u64| {
            Command::new(&bin)
                .args([k.to_string(), "wait".into()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut watched = spawn(7);
        let mut other = spawn(11);
        {
            let pid = watched.id() as i32;
            let _a = l
                .program(progs[0])
                .attach_uprobe(&bin, off, Some(pid))
                .unwrap();
            let _b = l
                .program(progs[1])
                .attach_uprobe(&bin, off, Some(pid))
                .unwrap();
            for c in [&mut watched, &mut other] {
                c.stdin.take().unwrap().write_all(b"go\n").unwrap();
                assert!(c.wait().unwrap().success());
            }
        }
        assert_eq!(read(), vec![7, 21, 7, 28]);
    }
    assert_nothing_left(
        &["stx_t_uprobe", "stx_t_uretprobe", "stx_t_ucounts"],
        &ids.0,
        &ids.1,
        &["stx_target", bin.to_str().unwrap()],
    );
}

/// (b) timer.profile: CPU-clock sampling on every CPU at `freq`, counting
/// only the samples that hit one busy thread (tid from a frozen global-data
/// map, read through a map-value load) while it spins for 1 s: the count is
/// within 20% of its CPU seconds x freq.
#[test]
fn cpu_clock_on_all_cpus_samples_at_frequency() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let max_rate: u64 = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1000);
    let freq = 1000.min(max_rate / 2).max(10);

    let (tx_tid, rx_tid) = std::sync::mpsc::channel::<i32>();
    let (tx_go, rx_go) = std::sync::mpsc::channel::<()>();
    let spinner = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx_tid.send(unsafe { libc::gettid() }).unwrap();
        rx_go.recv().unwrap();
        let cpu = || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: valid timespec pointer.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
        };
        let c0 = cpu();
        let t0 = Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < Duration::from_secs(1) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        cpu() - c0
    });
    let tid = rx_tid.recv().unwrap();

    let mut m = Module::new();
    let cfg = m.add_map(MapDef::global_data(
        "stx_t_cfg",
        (tid as u32).to_ne_bytes().to_vec(),
        true,
    ));
    let counts = m.add_map(MapDef::new("stx_t_samples", MapKind::PercpuArray, 4, 8, 1));
    let mut f = FuncAsm::new();
    let out = f.new_label();
    f.call_helper(helpers::GET_CURRENT_PID_TGID);
    f.emit(Insn::mov32_reg(R0, R0)); // the thread id
    f.ld_map_value(R1, cfg, 0);
    f.emit(Insn::ldx(Size::W, R1, R1, 0));
    f.jmp_reg(Cond::Ne, R0, R1, out);
    lookup_key(&mut f, counts, 0, out);
    f.emit(Insn::ldx(Size::DW, R1, R0, 0));
    f.emit(Insn::alu64_imm(Alu::Add, R1, 1));
    f.emit(Insn::stx(Size::DW, R0, 0, R1));
    f.bind(out);
    ret0(&mut f);
    let e = m.asm.add("stx_t_profile", FuncKind::Entry, 1, f);
    let prog = m.add_program("stx_t_profile", ProgKind::PerfEvent, e);

    let ids;
    let (count, cpu_s);
    {
        let l = load(&m);
        ids = l.kernel_ids();
        let att = l.program(prog).attach_cpu_clock(freq).unwrap();
        let online = ebpf_backend::sys::online_cpus().unwrap();
        assert_eq!(att.event_count(), online.len());
        tx_go.send(()).unwrap();
        cpu_s = spinner.join().unwrap();
        drop(att);
        count = l
            .map(counts)
            .read_u64_sum(&0u32.to_ne_bytes(), 0)
            .unwrap()
            .unwrap();
    }
    let expected = cpu_s * freq as f64;
    eprintln!("samples {count}, busy thread CPU {cpu_s:.3} s, freq {freq}: expected {expected:.0}");
    // The expectation scales with the CPU time actually got, so a loaded
    // machine only needs enough of it for a meaningful count.
    assert!(cpu_s > 0.2, "the busy thread barely ran ({cpu_s} s)");
    assert!(
        (count as f64 - expected).abs() <= 0.2 * expected,
        "{count} samples, expected {expected:.0} +-20%"
    );
    assert_nothing_left(&["stx_t_profile", "stx_t_samples"], &ids.0, &ids.1, &[]);
}

/// (d) Ring buffer round trip: each hit of a uprobe reserves a record,
/// fills it (magic, argument) and submits it; userspace reads them all.
#[test]
fn ringbuf_round_trip() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let dir = Scratch::new("ringbuf");
    let bin = build_c(&dir, "target", TARGET_C);
    let off = symbol_file_offset(&bin, "stx_target");

    let mut m = Module::new();
    let rb = m.add_map(MapDef::ringbuf("stx_t_rb", 1 << 16));
    let mut f = FuncAsm::new();
    let out = f.new_label();
    f.emit(Insn::ldx(Size::DW, R6, R1, PT_REGS_RDI));
    f.ld_map_fd(R1, rb);
    f.emit(Insn::mov64_imm(R2, 16));
    f.emit(Insn::mov64_imm(R3, 0));
    f.call_helper(helpers::RINGBUF_RESERVE);
    f.jmp_imm(Cond::Eq, R0, 0, out);
    f.ld_imm64(R1, 0x5354_585f_5242_0001);
    f.emit(Insn::stx(Size::DW, R0, 0, R1));
    f.emit(Insn::stx(Size::DW, R0, 8, R6));
    f.emit(Insn::mov64_reg(R1, R0));
    f.emit(Insn::mov64_imm(R2, 0));
    f.call_helper(helpers::RINGBUF_SUBMIT);
    f.bind(out);
    ret0(&mut f);
    let e = m.asm.add("stx_t_rbprog", FuncKind::Entry, 1, f);
    let prog = m.add_program("stx_t_rbprog", ProgKind::Uprobe, e);

    let ids;
    {
        let l = load(&m);
        ids = l.kernel_ids();
        let mut reader = RingBufReader::new(l.map(rb)).unwrap();
        let _att = l.program(prog).attach_uprobe(&bin, off, None).unwrap();
        run_target(&bin, 50);
        let mut got = vec![];
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 50 && Instant::now() < deadline {
            reader
                .poll(Duration::from_millis(100), |rec| {
                    assert_eq!(rec.len(), 16);
                    let magic = u64::from_ne_bytes(rec[0..8].try_into().unwrap());
                    assert_eq!(magic, 0x5354_585f_5242_0001);
                    got.push(u64::from_ne_bytes(rec[8..16].try_into().unwrap()));
                })
                .unwrap();
        }
        assert_eq!(got, (0..50).collect::<Vec<u64>>());
        // Nothing more.
        assert_eq!(reader.consume(|_| panic!("extra record")), 0);
    }
    assert_nothing_left(
        &["stx_t_rbprog", "stx_t_rb"],
        &ids.0,
        &ids.1,
        &[bin.to_str().unwrap()],
    );
}

/// Tracepoint attach: syscalls:sys_enter_getppid, counted for this thread.
#[test]
fn tracepoint_counts_syscalls() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    let mut m = Module::new();
    let counts = m.add_map(MapDef::new("stx_t_tpcount", MapKind::Array, 4, 8, 1));
    let mut f = FuncAsm::new();
    let out = f.new_label();
    f.call_helper(helpers::GET_CURRENT_PID_TGID);
    f.emit(Insn::mov32_reg(R0, R0));
    f.jmp_imm(Cond::Ne, R0, tid as i32, out);
    f.emit(Insn::mov64_imm(R1, 1));
    add_to_slot(&mut f, counts, 0, out);
    f.bind(out);
    ret0(&mut f);
    let e = m.asm.add("stx_t_tp", FuncKind::Entry, 1, f);
    let kind = ProgKind::Tracepoint {
        category: "syscalls".into(),
        name: "sys_enter_getppid".into(),
    };
    let prog = m.add_program("stx_t_tp", kind, e);
    let ids;
    {
        let l = load(&m);
        ids = l.kernel_ids();
        let att = l
            .program(prog)
            .attach_tracepoint("syscalls", "sys_enter_getppid")
            .unwrap();
        for _ in 0..100 {
            // SAFETY: getppid has no preconditions.
            unsafe { libc::getppid() };
        }
        drop(att);
        // SAFETY: as above; detached, so not counted.
        unsafe { libc::getppid() };
        let v = l.map(counts).read_u64_sum(&0u32.to_ne_bytes(), 0).unwrap();
        assert_eq!(v, Some(100));
    }
    assert_nothing_left(&["stx_t_tp", "stx_t_tpcount"], &ids.0, &ids.1, &[]);
}

/// (e) A verifier rejection (a subprogram reads an uninitialised register)
/// is an error carrying the log, the failing instruction index, its
/// function and tag; the maps created before the failure are gone.
#[test]
fn verifier_rejection_reports_log_and_insn() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let mut m = Module::new();
    let _unused = m.add_map(MapDef::new("stx_t_vmap", MapKind::Hash, 8, 8, 16));
    let sub = m.asm.declare("stx_bad_sub", FuncKind::Static, 0);
    let mut f = FuncAsm::new();
    f.set_tag(41);
    f.emit(Insn::mov64_imm(R0, 1));
    f.set_tag(42);
    f.emit(Insn::alu64_reg(Alu::Add, R0, R3)); // r3 was never set
    f.emit(Insn::exit());
    m.asm.define(sub, f);
    let mut f = FuncAsm::new();
    f.set_tag(7);
    f.emit(Insn::mov64_imm(R1, 0));
    f.call_func(sub);
    f.emit(Insn::exit());
    let e = m.asm.add("stx_t_bad", FuncKind::Entry, 1, f);
    m.add_program("stx_t_bad", ProgKind::Uprobe, e);
    m.set_source(
        42,
        SourceLine {
            file: "bad.stp".into(),
            line: 42,
            col: 5,
            text: "total = x + y".into(),
        },
    );

    let image = m.link(ProgId(0)).unwrap();
    let bad_insn = image.funcs[1].start + 1;
    let err = Loaded::load(&m, &LoadOptions::default()).unwrap_err();
    let v = err
        .as_verifier()
        .unwrap_or_else(|| panic!("not a verifier error: {err}"));
    assert!(v.log.contains("R3 !read_ok"), "log: {}", v.log);
    assert_eq!(v.message, "R3 !read_ok");
    assert_eq!(v.insn, Some(bad_insn));
    assert_eq!(v.func.as_deref(), Some("stx_bad_sub"));
    assert_eq!(v.tag, Some(42));
    let text = err.to_string();
    assert!(text.contains(&format!("at insn {bad_insn}")), "{text}");
    assert!(text.contains("R3 !read_ok"), "{text}");
    // BTF line info puts the script line into the log.
    assert!(v.log.contains("total = x + y @ bad.stp:42"), "{}", v.log);
    eprintln!("{text}");
    assert_nothing_left(&["stx_t_bad", "stx_t_vmap"], &[], &[], &[]);
}

/// Everything is released when a test panics while attached, and on the
/// error paths of attach (wrong kind, missing file, missing tracepoint).
#[test]
fn released_on_panic_and_error_paths() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let dir = Scratch::new("panic");
    let bin = build_c(&dir, "target", TARGET_C);
    let off = symbol_file_offset(&bin, "stx_target");
    let build = || {
        let mut m = Module::new();
        let counts = m.add_map(MapDef::new("stx_t_pcount", MapKind::Array, 4, 8, 1));
        let mut f = FuncAsm::new();
        let out = f.new_label();
        f.emit(Insn::mov64_imm(R1, 1));
        add_to_slot(&mut f, counts, 0, out);
        f.bind(out);
        ret0(&mut f);
        let e = m.asm.add("stx_t_panic", FuncKind::Entry, 1, f);
        let up = m.add_program("stx_t_panic", ProgKind::Uprobe, e);
        let mut f = FuncAsm::new();
        ret0(&mut f);
        let e = m.asm.add("stx_t_pperf", FuncKind::Entry, 1, f);
        let perf = m.add_program("stx_t_pperf", ProgKind::PerfEvent, e);
        (m, up, perf)
    };
    let (m, up, perf) = build();
    let ids = std::sync::Mutex::new((vec![], vec![]));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let l = load(&m);
        *ids.lock().unwrap() = l.kernel_ids();
        let _a = l.program(up).attach_uprobe(&bin, off, None).unwrap();
        let _b = l.program(perf).attach_cpu_clock(99).unwrap();
        panic!("boom while attached");
    }));
    assert!(r.is_err());
    let (p, mp) = ids.into_inner().unwrap();
    assert_eq!(p.len(), 2);
    assert_nothing_left(
        &["stx_t_panic", "stx_t_pperf", "stx_t_pcount"],
        &p,
        &mp,
        &[bin.to_str().unwrap()],
    );

    let ids;
    {
        let l = load(&m);
        ids = l.kernel_ids();
        let e = l.program(perf).attach_uprobe(&bin, off, None).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
        let e = l.program(up).attach_cpu_clock(99).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
        let e = l
            .program(up)
            .attach_uprobe(&dir.path("no-such-file"), 0, None)
            .unwrap_err();
        assert!(matches!(e, Error::Sys { .. }), "{e}");
        // A pid that does not exist is refused.
        let e = l
            .program(up)
            .attach_uprobe(&bin, off, Some(i32::MAX - 1))
            .unwrap_err();
        assert!(matches!(e, Error::Sys { .. }), "{e}");
    }
    assert_nothing_left(
        &["stx_t_panic", "stx_t_pperf", "stx_t_pcount"],
        &ids.0,
        &ids.1,
        &[bin.to_str().unwrap()],
    );
}

/// `bpf_snprintf` with its format string in a frozen, program-read-only
/// global-data map (what `sprintf` lowers to), the result sent through the
/// ring buffer with `bpf_ringbuf_output`.
#[test]
fn snprintf_with_constant_format_from_global_data() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let dir = Scratch::new("snprintf");
    let bin = build_c(&dir, "target", TARGET_C);
    let off = symbol_file_offset(&bin, "stx_target");
    let mut m = Module::new();
    let fmt = m.add_map(MapDef::global_data(
        "stx_t_fmt",
        b"junk\0arg=%ld!\0".to_vec(),
        true,
    ));
    let rb = m.add_map(MapDef::ringbuf("stx_t_srb", 1 << 12));
    let mut f = FuncAsm::new();
    // u64 args[1] at r10-8 = rdi; char out[32] at r10-40.
    f.emit(Insn::ldx(Size::DW, R2, R1, PT_REGS_RDI));
    f.emit(Insn::stx(Size::DW, R10, -8, R2));
    f.emit(Insn::mov64_reg(R1, R10));
    f.emit(Insn::alu64_imm(Alu::Add, R1, -40));
    f.emit(Insn::mov64_imm(R2, 32));
    f.ld_map_value(R3, fmt, 5);
    f.emit(Insn::mov64_reg(R4, R10));
    f.emit(Insn::alu64_imm(Alu::Add, R4, -8));
    f.emit(Insn::mov64_imm(R5, 8));
    f.call_helper(helpers::SNPRINTF);
    f.ld_map_fd(R1, rb);
    f.emit(Insn::mov64_reg(R2, R10));
    f.emit(Insn::alu64_imm(Alu::Add, R2, -40));
    f.emit(Insn::mov64_imm(R3, 32));
    f.emit(Insn::mov64_imm(R4, 0));
    f.call_helper(helpers::RINGBUF_OUTPUT);
    ret0(&mut f);
    let e = m.asm.add("stx_t_sprintf", FuncKind::Entry, 1, f);
    let prog = m.add_program("stx_t_sprintf", ProgKind::Uprobe, e);
    let ids;
    {
        let l = load(&m);
        ids = l.kernel_ids();
        // Frozen: userspace cannot change the format any more.
        assert!(l.map(fmt).update(&0u32.to_ne_bytes(), b"x").is_err());
        let mut reader = RingBufReader::new(l.map(rb)).unwrap();
        let _att = l.program(prog).attach_uprobe(&bin, off, None).unwrap();
        run_target(&bin, 3);
        let mut got = vec![];
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 3 && Instant::now() < deadline {
            reader
                .poll(Duration::from_millis(100), |rec| {
                    let end = rec.iter().position(|&c| c == 0).unwrap();
                    got.push(String::from_utf8_lossy(&rec[..end]).into_owned());
                })
                .unwrap();
        }
        assert_eq!(got, ["arg=0!", "arg=1!", "arg=2!"]);
    }
    assert_nothing_left(
        &["stx_t_sprintf", "stx_t_fmt", "stx_t_srb"],
        &ids.0,
        &ids.1,
        &[],
    );
}

/// Userspace map access: update/lookup/delete, key iteration, per-CPU
/// values, with run-time key and value sizes (string-like keys).
#[test]
fn map_access_from_userspace() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let mut m = Module::new();
    let h = m.add_map(MapDef::new("stx_t_strmap", MapKind::Hash, 64, 24, 100));
    let pc = m.add_map(MapDef::new("stx_t_pchash", MapKind::PercpuHash, 8, 12, 10));
    let ids;
    {
        let l = load(&m);
        ids = l.kernel_ids();
        let h = l.map(h);
        let key = |s: &str| {
            let mut k = s.as_bytes().to_vec();
            k.resize(64, 0);
            k
        };
        for (i, name) in ["main", "foo", "bar"].iter().enumerate() {
            h.update(&key(name), &[i as u8 + 1; 24]).unwrap();
        }
        assert_eq!(h.lookup(&key("foo")).unwrap(), Some(vec![2; 24]));
        assert_eq!(h.lookup(&key("nope")).unwrap(), None);
        let mut keys: Vec<String> = h
            .keys()
            .map(|k| {
                let k = k.unwrap();
                String::from_utf8(k[..k.iter().position(|&c| c == 0).unwrap()].to_vec()).unwrap()
            })
            .collect();
        keys.sort();
        assert_eq!(keys, ["bar", "foo", "main"]);
        assert!(h.delete(&key("foo")).unwrap());
        assert!(!h.delete(&key("foo")).unwrap());
        assert_eq!(h.entries().unwrap().len(), 2);
        assert!(h.lookup(&[0u8; 3]).is_err(), "wrong key size is refused");

        let pc = l.map(pc);
        let mut v = 5u64.to_ne_bytes().to_vec();
        v.extend([9u8; 4]);
        pc.update(&7u64.to_ne_bytes(), &v).unwrap();
        let vals = pc.lookup_percpu(&7u64.to_ne_bytes()).unwrap().unwrap();
        assert_eq!(vals.len(), pc.ncpus());
        assert!(vals.iter().all(|x| *x == v));
        assert_eq!(
            pc.read_u64_sum(&7u64.to_ne_bytes(), 0).unwrap(),
            Some(5 * pc.ncpus() as u64)
        );
        assert!(pc.lookup(&7u64.to_ne_bytes()).is_err());
    }
    assert_nothing_left(&["stx_t_strmap", "stx_t_pchash"], &ids.0, &ids.1, &[]);
}
