//! A `-c` command held at its entry point while its unwind and symbol
//! tables are placed.
//!
//! `ubacktrace()` and friends (and `usymname()` in the kernel) walk tables
//! of the process's modules at their runtime addresses (`crate::unwind`,
//! `kernel::user_symbols`). A command has those only
//! once the dynamic loader has mapped its libraries, just before the
//! program's entry point runs, and its probes may fire right after. So a
//! uprobe on the executable's entry point, for the command's pid only,
//! stops it there (SIGSTOP sent by the BPF program: nothing of the target
//! is written); the host sees it stopped, places the tables from its
//! mappings, takes the probe away and lets it go on (SIGCONT). SystemTap
//! places its tables from the kernel as each module is mapped; this kernel
//! gives BPF no such event, and polling the mappings would miss a short
//! command's first calls.
//!
//! One BPF program of its own (not the script's module): the hold exists
//! only for the first instant of the command.

use crate::debuginfo::ElfFile;
use ebpf_backend::insn::{R0, R1};
use ebpf_backend::{
    helpers, Attachment, FuncAsm, FuncKind, Insn, LoadOptions, Loaded, Module, ProgKind,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the command may take from its release to its entry point
/// (the dynamic loader mapping its libraries) before it is let go unheld.
const REACH_ENTRY: Duration = Duration::from_secs(10);

/// The armed hold: the stopping program attached for one pid.
pub struct EntryHold {
    pid: u32,
    attachment: Option<Attachment>,
    /// Kept loaded while attached.
    _loaded: Loaded,
}

impl EntryHold {
    /// Stop process `pid` when it first runs the entry point of `exe` (the
    /// program it is about to exec).
    pub fn arm(exe: &Path, pid: u32) -> Result<EntryHold, String> {
        let elf = ElfFile::open(exe).map_err(|e| e.to_string())?;
        let entry = elf.entry();
        let offset = crate::debuginfo::symbols::vaddr_to_file_offset(elf.load_segments(), entry)
            .filter(|_| entry != 0)
            .ok_or_else(|| format!("{} has no entry point", exe.display()))?;
        let mut m = Module::new();
        let mut f = FuncAsm::new();
        f.emit(Insn::mov64_imm(R1, libc::SIGSTOP));
        f.emit(Insn::call_helper(helpers::SEND_SIGNAL));
        f.emit(Insn::mov64_imm(R0, 0));
        f.emit(Insn::exit());
        let e = m.asm.add("stx_entry_hold", FuncKind::Entry, 1, f);
        let prog = m.add_program("stx_entry_hold", ProgKind::Uprobe, e);
        let loaded = Loaded::load(&m, &LoadOptions::default()).map_err(|e| e.to_string())?;
        let attachment = loaded
            .program(prog)
            .attach_uprobe(exe, offset, Some(pid as i32))
            .map_err(|e| e.to_string())?;
        Ok(EntryHold {
            pid,
            attachment: Some(attachment),
            _loaded: loaded,
        })
    }

    /// Wait for the command to stop at its entry point. False when it did
    /// not get there (it ended, ran another program, or took too long).
    pub fn wait(&self) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < REACH_ENTRY {
            match state(self.pid) {
                Some('T') => return true,
                None | Some('Z') | Some('X') => return false,
                _ => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        false
    }

    /// Take the probe away and let the command run on.
    pub fn release(mut self) {
        self.let_go();
    }

    fn let_go(&mut self) {
        if self.attachment.take().is_some() {
            // SAFETY: kill(2) on our own child's pid; no memory involved.
            unsafe {
                libc::kill(self.pid as i32, libc::SIGCONT);
            }
        }
    }
}

impl Drop for EntryHold {
    /// Never leave the command stopped (an error or Ctrl-C while held).
    fn drop(&mut self) {
        self.let_go();
    }
}

/// The state letter of `/proc/PID/stat` (after the parenthesized name).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}
