//! Load-time facts the code generator bakes into the programs: the
//! target's module load biases, `target()`, CPU count, clock offset.

use crate::cli::Options as CliOptions;
use crate::codegen::Options;
use crate::debuginfo::{MapEntry, Module};
use crate::ir::builtins::Needs;
use crate::ir::{self, Builtin, ExprKind, Program};
use crate::target::TargetInfo;
use grammar::Diagnostic;
use std::collections::BTreeSet;
use std::path::Path;

/// Every module path `__stapxx_module_bias` is asked about.
pub fn bias_modules(p: &Program) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut visit = |e: &ir::Expr| {
        if let ExprKind::Builtin(Builtin::ModuleBias, args) = &e.kind {
            if let Some(ExprKind::Str(s)) = args.first().map(|a| &a.kind) {
                out.insert(s.clone());
            }
        }
    };
    for f in &p.functions {
        for s in &f.body {
            ir::print::walk_stmt(s, &mut visit);
        }
    }
    for pr in &p.probes {
        for s in &pr.body {
            ir::print::walk_stmt(s, &mut visit);
        }
    }
    out
}

/// The load-time facts the program's builtins need (the table's
/// [`Builtin::needs`], merged over every call).
pub fn needs(p: &Program) -> Needs {
    let mut n = Needs::default();
    let mut visit = |e: &ir::Expr| {
        if let ExprKind::Builtin(b, _) = &e.kind {
            let m = b.needs();
            n.user_symbols |= m.user_symbols;
            n.kernel_symbols |= m.kernel_symbols;
            n.task_offsets |= m.task_offsets;
            n.mappings |= m.mappings;
            n.pt_regs |= m.pt_regs;
            n.unwind |= m.unwind;
            n.kernel_stack |= m.kernel_stack;
        }
    };
    for s in p.functions.iter().flat_map(|f| &f.body) {
        ir::print::walk_stmt(s, &mut visit);
    }
    for s in p.probes.iter().flat_map(|pr| &pr.body) {
        ir::print::walk_stmt(s, &mut visit);
    }
    n
}

/// `path` in the target process, opened, with its load bias (runtime
/// address minus link address): the one computation every pass uses
/// (`@var` addresses in kernel probes and in host probes, the packed
/// symbol tables). The file is opened and its mappings found by the
/// target ([`TargetInfo::open_module`], [`TargetInfo::mappings_of_file`]),
/// which go through the kernel's handles on the target's files.
pub fn module_load(target: &TargetInfo, path: &Path) -> Result<(Module, u64), String> {
    let maps: Vec<MapEntry> = target
        .mappings_of_file(path)
        .into_iter()
        .map(|m| MapEntry {
            start: m.start,
            end: m.end,
            offset: m.offset,
        })
        .collect();
    if maps.is_empty() {
        return Err(format!(
            "module {} is not mapped in process {}",
            path.display(),
            target.pid
        ));
    }
    let module = target.open_module(path).map_err(|e| e.to_string())?;
    let bias = module.load_bias(&maps).map_err(|e| e.to_string())?;
    Ok((module, bias))
}

/// The load bias of `path` in the target process.
pub fn load_bias(target: &TargetInfo, path: &str) -> Result<u64, String> {
    module_load(target, Path::new(path)).map(|(_, b)| b)
}

/// Code generator options from the command line and the target (`-x`),
/// or the executable of a `-c` command not yet started (`command_exe`).
pub fn codegen_options(
    cli: &CliOptions,
    target: Option<&TargetInfo>,
    command_exe: Option<&Path>,
    program: &Program,
    loading: bool,
) -> Result<Options, Diagnostic> {
    // The limits are parsed once, for host and kernel alike.
    let limits = crate::runtime::Limits::from_defines(&cli.defines);
    let mut o = Options::new(
        limits.maxstringlen as u64,
        limits.maxaction,
        limits.maxmapentries as u64,
    );
    o.skip_badvars = cli.cli.skip_badvars;
    o.interval = cli.cli.interval.is_some();
    o.verbose = cli.cli.verbose;
    if let Some(mb) = cli.cli.buffer_mb {
        o.output_buffer = crate::codegen::output_buffer_bytes(mb);
    }
    o.target = target.map(|t| t.pid).unwrap_or(0);
    o.ncpus = ebpf_backend::sys::possible_cpus().unwrap_or(1) as u32;
    o.boot_to_wall_ns = boot_to_wall_ns();
    let needs = needs(program);
    // A `-c` command's files (its executable, the libraries it links),
    // listed once for the tables sized from them.
    let command_files = match command_exe {
        Some(exe) if target.is_none() && (needs.user_symbols || needs.unwind) => {
            let mut files = vec![exe.to_path_buf()];
            files.extend(crate::target::ldd_libraries(exe).unwrap_or_default());
            files
        }
        _ => Vec::new(),
    };
    if needs.user_symbols {
        if let Some(t) = target {
            o.usyms = Some(crate::kernel::user_symbols(t).layout());
        } else if command_exe.is_some() {
            // Filled once the command has mapped its libraries
            // (runtime/entry_hold.rs).
            o.usyms = Some(crate::kernel::command_symbols_layout(&command_files));
        }
    }
    let exe_filters = program.probes.iter().any(|p| {
        p.sites
            .iter()
            .any(|s| s.filter().is_some_and(|f| f.exe.is_some()))
    });
    if exe_filters {
        o.exe = crate::kernel_btf::ExeOffsets::get();
    }
    if needs.task_offsets {
        o.task = crate::kernel_btf::TaskOffsets::get();
    }
    if needs.pt_regs {
        o.pt_regs = crate::kernel_btf::PtRegsOffsets::get();
    }
    if let (true, Some(t)) = (needs.mappings, target) {
        // Each file's load bias once (for `usymdata`'s offsets).
        let mut biases: std::collections::HashMap<&Path, u64> = Default::default();
        for m in &t.maps {
            let Some(file) = m.file() else { continue };
            let bias = *biases
                .entry(file)
                .or_insert_with(|| module_load(t, file).map_or(m.start, |(_, b)| b));
            o.umods
                .push((m.start, m.end, file.display().to_string(), bias));
        }
    }
    o.kernel_stack = needs.kernel_stack;
    o.unwind = needs.unwind;
    if needs.unwind || needs.kernel_stack {
        o.maxbacktrace = limits.maxbacktrace as u32;
    }
    if needs.unwind {
        let unwind = |m| Diagnostic::bare(format!("cannot unwind user stacks: {m}"));
        if let Some(t) = target {
            let table = crate::unwind::process_table(t).map_err(unwind)?;
            o.ucfi = Some(table.layout());
        } else if let Some(exe) = command_exe {
            // Filled once the command has mapped its libraries
            // (runtime/entry_hold.rs).
            o.ucfi = Some(crate::unwind::command_layout(exe, &command_files).map_err(unwind)?);
        }
    }
    if needs.kernel_symbols {
        let l = crate::ksyms::KernelSymbols::get().layout();
        o.ksyms = (l.count > 0).then_some(l);
    }
    for path in bias_modules(program) {
        let Some(t) = target else {
            // No process yet (-p3 with --exec): a placeholder keeps the
            // listing readable; loading needs the real value, and a wrong
            // address read in silence is worse than no run.
            if loading {
                return Err(Diagnostic::bare(format!(
                    "cannot place @var addresses of {path}: no process to read its load address from (use -x PID; with -c only probes on {path} itself can find it, from where they fire)"
                )));
            }
            o.biases.insert(path, 0);
            continue;
        };
        let bias = load_bias(t, &path)
            .map_err(|m| Diagnostic::bare(format!("cannot place @var addresses: {m}")))?;
        o.biases.insert(path, bias);
    }
    Ok(o)
}

/// Wall clock minus CLOCK_BOOTTIME, for gettimeofday_* in the kernel.
pub fn boot_to_wall_ns() -> i64 {
    let mut ts = libc_timespec();
    let boot = clock_ns(7, &mut ts); // CLOCK_BOOTTIME
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    wall - boot
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

fn libc_timespec() -> Timespec {
    Timespec { sec: 0, nsec: 0 }
}

extern "C" {
    fn clock_gettime(clk: i32, ts: *mut Timespec) -> i32;
}

fn clock_ns(clk: i32, ts: &mut Timespec) -> i64 {
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    let rc = unsafe { clock_gettime(clk, ts) };
    if rc != 0 {
        return 0;
    }
    ts.sec * 1_000_000_000 + ts.nsec
}
