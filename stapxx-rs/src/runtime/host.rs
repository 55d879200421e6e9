//! What host probes know about the world: the target process's memory,
//! its modules' load biases and symbols, clocks, and stapxx-rs's own
//! process (what stap reports from `begin`/`end` probes, which run in its
//! own loader's context).

use crate::debuginfo::Module;
use crate::target::TargetInfo;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Page size used to split user-memory reads.
const PAGE: u64 = 4096;

pub struct Host {
    /// `target()`: the `-x` pid or the `-c` command's pid.
    pub target: Option<u32>,
    mem: Option<Result<File, String>>,
    info: Option<Result<TargetInfo, String>>,
    biases: HashMap<String, Result<i64, String>>,
    modules: HashMap<PathBuf, Option<(Module, u64)>>,
    comm: Option<Vec<u8>>,
}

impl Host {
    pub fn new(target: Option<u32>) -> Host {
        Host {
            target,
            mem: None,
            info: None,
            biases: HashMap::new(),
            modules: HashMap::new(),
            comm: None,
        }
    }

    /// Forget everything read about the target (a new target, or `-c`'s).
    pub fn set_target(&mut self, pid: Option<u32>) {
        *self = Host::new(pid);
    }

    // ------------------------------------------------------------ memory

    fn mem(&mut self) -> Result<&File, String> {
        let Some(pid) = self.target else {
            return Err("user memory read in a begin/end probe needs -x".into());
        };
        let m = self.mem.get_or_insert_with(|| {
            File::open(format!("/proc/{pid}/mem"))
                .map_err(|e| format!("cannot open the memory of process {pid}: {e}"))
        });
        m.as_ref().map_err(|e| e.clone())
    }

    /// Exactly `buf.len()` bytes at `addr`; `Ok(false)` on a fault.
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<bool, String> {
        let f = self.mem()?;
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], addr.wrapping_add(done as u64)) {
                Ok(0) | Err(_) => return Ok(false),
                Ok(n) => done += n,
            }
        }
        Ok(true)
    }

    /// Up to `max` bytes at `addr`: as many as can be read before a fault
    /// (quoting a buffer faults only where it reads past them).
    pub fn read_bytes(&mut self, addr: u64, max: usize) -> Result<Vec<u8>, String> {
        let f = self.mem()?;
        let mut out = vec![0u8; max];
        let mut done = 0;
        while done < max {
            match f.read_at(&mut out[done..], addr.wrapping_add(done as u64)) {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
        out.truncate(done);
        Ok(out)
    }

    /// A NUL-terminated string of at most `max` bytes at `addr` (without the
    /// NUL); `Ok(None)` on a fault before the end.
    pub fn read_string(&mut self, addr: u64, max: usize) -> Result<Option<Vec<u8>>, String> {
        let f = self.mem()?;
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            let room = (PAGE - at % PAGE) as usize;
            let mut chunk = vec![0u8; room.min(max - out.len()).min(256)];
            let n = match f.read_at(&mut chunk, at) {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => n,
            };
            if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(Some(out));
            }
            out.extend_from_slice(&chunk[..n]);
            at = at.wrapping_add(n as u64);
        }
        Ok(Some(out))
    }

    // ------------------------------------------------------------ modules

    fn info(&mut self) -> Result<&TargetInfo, String> {
        let Some(pid) = self.target else {
            return Err("no target process (use -x PID or -c CMD)".into());
        };
        let info = self
            .info
            .get_or_insert_with(|| TargetInfo::from_pid(pid).map_err(|e| e.to_string()));
        info.as_ref().map_err(|e| e.clone())
    }

    /// `__stapxx_module_bias("path")`: runtime address minus link address
    /// of that module in the target, cached per path.
    pub fn module_bias(&mut self, path: &str) -> Result<i64, String> {
        if let Some(r) = self.biases.get(path) {
            return r.clone();
        }
        let r = self.compute_bias(path);
        self.biases.insert(path.to_string(), r.clone());
        r
    }

    fn compute_bias(&mut self, path: &str) -> Result<i64, String> {
        if self.target.is_none() {
            return Err(format!(
                "the address of a variable in {path} needs a target process (-x PID)"
            ));
        }
        let info = self.info()?;
        crate::loadinfo::module_load(info, Path::new(path)).map(|(_, b)| b as i64)
    }

    /// The module of the target containing `addr`, with its bias.
    fn module_at(&mut self, addr: u64) -> Option<(PathBuf, &Module, u64)> {
        let info = self.info().ok()?;
        let file = info
            .maps
            .iter()
            .find(|m| m.start <= addr && addr < m.end)?
            .file()?
            .to_path_buf();
        if !self.modules.contains_key(&file) {
            let info = self.info().ok()?;
            let m = crate::loadinfo::module_load(info, &file).ok();
            self.modules.insert(file.clone(), m);
        }
        let (m, bias) = self.modules.get(&file)?.as_ref()?;
        Some((file, m, *bias))
    }

    /// `usymname(addr)`: the target's function containing `addr`, else the
    /// address in hex (as stap prints unknown addresses).
    pub fn usymname(&mut self, addr: i64) -> Vec<u8> {
        let a = addr as u64;
        if let Some((_, m, bias)) = self.module_at(a) {
            if let Ok(t) = m.symbols() {
                if let Some(s) = t.lookup(a.wrapping_sub(bias)) {
                    return s.name.clone().into_bytes();
                }
            }
        }
        format!("{a:#x}").into_bytes()
    }

    /// The symbol and module of a target address (for `usymdata` and the
    /// symbolic backtraces, `runtime/ustack.rs`).
    pub fn addr_info(&mut self, addr: u64) -> super::ustack::AddrInfo {
        let mut out = super::ustack::AddrInfo::default();
        if let Some((file, m, bias)) = self.module_at(addr) {
            let rel = addr.wrapping_sub(bias);
            if let Ok(t) = m.symbols() {
                if let Some(s) = t.lookup(rel) {
                    let name = s.name.strip_prefix('.').unwrap_or(&s.name).to_string();
                    out.symbol = Some((name, rel - s.address, s.size));
                }
            }
            out.module = Some((file.display().to_string(), rel));
        }
        out
    }

    /// `umodname(addr)`: the path of the target's module containing `addr`.
    pub fn umodname(&mut self, addr: i64) -> Vec<u8> {
        let a = addr as u64;
        let Ok(info) = self.info() else {
            return b"<unknown>".to_vec();
        };
        match info
            .maps
            .iter()
            .find(|m| m.start <= a && a < m.end)
            .and_then(|m| m.file())
        {
            Some(p) => p.display().to_string().into_bytes(),
            None => b"<unknown>".to_vec(),
        }
    }

    // ------------------------------------------------------------ ourselves

    /// `execname()` of stapxx-rs itself.
    pub fn execname(&mut self) -> Vec<u8> {
        self.comm
            .get_or_insert_with(|| {
                std::fs::read("/proc/self/comm")
                    .map(|mut v| {
                        while v.last() == Some(&b'\n') {
                            v.pop();
                        }
                        v
                    })
                    .unwrap_or_else(|_| b"stapxx-rs".to_vec())
            })
            .clone()
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (what `local_clock_ns` reads).
// time_t and c_long are i64 here but not on every target.
#[allow(clippy::unnecessary_cast)]
pub fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the pointer we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as i64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as i64)
}

/// Wall-clock time in nanoseconds since the epoch.
pub fn realtime_ns() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(_) => 0,
    }
}

/// The kernel's tick rate for `jiffies()`: the same CONFIG_HZ that
/// `timer.profile` and `timer.jiffies(N)` use.
pub fn hz() -> i64 {
    crate::kernel::kernel_hz() as i64
}

// c_long is i64 here but not on every target.
#[allow(clippy::useless_conversion)]
pub fn tid() -> i64 {
    // SAFETY: gettid has no arguments and cannot fail.
    i64::from(unsafe { libc::syscall(libc::SYS_gettid) })
}

/// The 1, 5 and 15 minute load averages as `/proc/loadavg` writes them
/// (`X.YY`, rounded as stap's `sprint_loadavg` rounds the kernel's
/// `avenrun`: the same computation).
pub fn loadavg() -> Result<[String; 3], String> {
    let text = std::fs::read_to_string("/proc/loadavg")
        .map_err(|e| format!("cannot read /proc/loadavg: {e}"))?;
    let mut f = text.split_whitespace().map(str::to_string);
    match (f.next(), f.next(), f.next()) {
        (Some(a), Some(b), Some(c)) => Ok([a, b, c]),
        _ => Err(format!("unexpected /proc/loadavg: {text:?}")),
    }
}

pub fn ppid() -> i64 {
    // SAFETY: getppid has no arguments and cannot fail.
    i64::from(unsafe { libc::getppid() })
}

/// stapxx-rs's own ids: uid, gid, euid, egid, session, process group,
/// process id (`which` 0..6; -1 for another number).
pub fn id(which: i64) -> i64 {
    // SAFETY: these calls take no pointers; getsid(0) and getpgrp() ask
    // about this process and cannot fail for it.
    unsafe {
        match which {
            0 => i64::from(libc::getuid()),
            1 => i64::from(libc::getgid()),
            2 => i64::from(libc::geteuid()),
            3 => i64::from(libc::getegid()),
            4 => i64::from(libc::getsid(0)),
            5 => i64::from(libc::getpgrp()),
            6 => i64::from(libc::getpid()),
            _ => -1,
        }
    }
}

/// The local time zone as staprun hands it to a session when it starts:
/// seconds west of UTC (`tz_gmtoff()`) and the zone's abbreviation
/// (`tz_name()`), from localtime(3) at that moment (TZ, /etc/localtime).
pub fn timezone() -> &'static (i64, String) {
    static TZ: std::sync::OnceLock<(i64, String)> = std::sync::OnceLock::new();
    TZ.get_or_init(|| {
        // SAFETY: time(NULL) takes no buffer; localtime_r writes into
        // `tm`, which lives here, and its tm_zone points at the C
        // library's static zone names (or is null).
        unsafe {
            let now = libc::time(std::ptr::null_mut());
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&now, &mut tm).is_null() {
                return (0, "UTC".to_string());
            }
            let name = if tm.tm_zone.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(tm.tm_zone)
                    .to_string_lossy()
                    .into_owned()
            };
            (-tm.tm_gmtoff, name)
        }
    })
}

/// A random 32-bit number (getrandom(2); 0 in the unlikely case it fails).
pub fn random_u32() -> i64 {
    let mut b = [0u8; 4];
    // SAFETY: `b` is a writable buffer of the length given.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 4 {
        i64::from(u32::from_ne_bytes(b))
    } else {
        0
    }
}

pub fn uid() -> i64 {
    // SAFETY: getuid has no arguments and cannot fail.
    i64::from(unsafe { libc::getuid() })
}

pub fn cpu() -> i64 {
    // SAFETY: sched_getcpu has no arguments; -1 on failure.
    i64::from(unsafe { libc::sched_getcpu() }).max(0)
}
