//! Raw `bpf(2)` and `perf_event_open(2)` calls. `union bpf_attr` is built as
//! a zeroed 144-byte buffer with fields written at their ABI offsets
//! (checked against `linux/bpf.h`), which keeps every command's unused tail
//! zero as the kernel demands.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub const BPF_MAP_CREATE: u32 = 0;
pub const BPF_MAP_LOOKUP_ELEM: u32 = 1;
pub const BPF_MAP_UPDATE_ELEM: u32 = 2;
pub const BPF_MAP_DELETE_ELEM: u32 = 3;
pub const BPF_MAP_GET_NEXT_KEY: u32 = 4;
pub const BPF_PROG_LOAD: u32 = 5;
pub const BPF_PROG_GET_NEXT_ID: u32 = 11;
pub const BPF_PROG_GET_FD_BY_ID: u32 = 13;
pub const BPF_MAP_GET_FD_BY_ID: u32 = 14;
pub const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
pub const BPF_RAW_TRACEPOINT_OPEN: u32 = 17;
pub const BPF_BTF_LOAD: u32 = 18;
pub const BPF_MAP_FREEZE: u32 = 22;

const ATTR_SIZE: usize = 144;

/// A `union bpf_attr` under construction.
pub struct Attr([u8; ATTR_SIZE]);

impl Default for Attr {
    fn default() -> Self {
        Attr([0; ATTR_SIZE])
    }
}

impl Attr {
    pub fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    pub fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    pub fn ptr<T>(&mut self, off: usize, p: *const T) -> &mut Self {
        self.u64(off, p as usize as u64)
    }
    pub fn name(&mut self, off: usize, s: &str) -> &mut Self {
        // BPF object names: at most 15 bytes of [A-Za-z0-9_.], NUL terminated.
        let b: Vec<u8> = s
            .bytes()
            .filter(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
            .take(15)
            .collect();
        self.0[off..off + b.len()].copy_from_slice(&b);
        self
    }
    pub fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().unwrap())
    }
}

/// `bpf(cmd, attr, sizeof attr)`, returning the raw result.
pub fn bpf(cmd: u32, attr: &mut Attr) -> io::Result<i64> {
    // SAFETY: attr is a valid, fully initialised buffer of the size we pass;
    // pointers inside it are provided by callers that keep them alive.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr.0.as_mut_ptr(),
            ATTR_SIZE as libc::c_long,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `bpf()` for commands returning a new file descriptor.
pub fn bpf_fd(cmd: u32, attr: &mut Attr) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    // SAFETY: on success these commands return a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Retry on EINTR/EAGAIN a few times (map and prog creation can be
/// interrupted by signals; the kernel returns EAGAIN for transient failures).
pub fn bpf_fd_retry(cmd: u32, attr: &mut Attr) -> io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match bpf_fd(cmd, attr) {
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EAGAIN))
                    && tries < 5 =>
            {
                tries += 1
            }
            r => return r,
        }
    }
}

pub fn map_lookup(fd: &OwnedFd, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    let mut a = Attr::default();
    a.u32(0, fd.as_raw_fd() as u32)
        .ptr(8, key.as_ptr())
        .ptr(16, value.as_mut_ptr());
    match bpf(BPF_MAP_LOOKUP_ELEM, &mut a) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn map_update(fd: &OwnedFd, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
    let mut a = Attr::default();
    a.u32(0, fd.as_raw_fd() as u32)
        .ptr(8, key.as_ptr())
        .ptr(16, value.as_ptr())
        .u64(24, flags);
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
}

pub fn map_delete(fd: &OwnedFd, key: &[u8]) -> io::Result<bool> {
    let mut a = Attr::default();
    a.u32(0, fd.as_raw_fd() as u32).ptr(8, key.as_ptr());
    match bpf(BPF_MAP_DELETE_ELEM, &mut a) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The key after `key` (the first key when `key` is None); Ok(false) at the end.
pub fn map_next_key(fd: &OwnedFd, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<bool> {
    let mut a = Attr::default();
    a.u32(0, fd.as_raw_fd() as u32)
        .u64(8, key.map(|k| k.as_ptr() as u64).unwrap_or(0))
        .ptr(16, next.as_mut_ptr());
    match bpf(BPF_MAP_GET_NEXT_KEY, &mut a) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn map_freeze(fd: &OwnedFd) -> io::Result<()> {
    let mut a = Attr::default();
    a.u32(0, fd.as_raw_fd() as u32);
    bpf(BPF_MAP_FREEZE, &mut a).map(|_| ())
}

/// `struct bpf_prog_info` fields we read: (id, name).
pub fn prog_info(fd: &OwnedFd) -> io::Result<(u32, String)> {
    let mut info = [0u8; 232];
    let mut a = Attr::default();
    a.u32(0, fd.as_raw_fd() as u32)
        .u32(4, info.len() as u32)
        .ptr(8, info.as_mut_ptr());
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    let id = u32::from_ne_bytes(info[4..8].try_into().unwrap());
    let name = &info[64..80];
    let end = name.iter().position(|&c| c == 0).unwrap_or(16);
    Ok((id, String::from_utf8_lossy(&name[..end]).into_owned()))
}

/// `struct bpf_map_info` id.
pub fn map_id(fd: &OwnedFd) -> io::Result<u32> {
    let mut info = [0u8; 96];
    let mut a = Attr::default();
    a.u32(0, fd.as_raw_fd() as u32)
        .u32(4, info.len() as u32)
        .ptr(8, info.as_mut_ptr());
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    Ok(u32::from_ne_bytes(info[4..8].try_into().unwrap()))
}

/// Whether a program with this id is still loaded.
pub fn prog_id_exists(id: u32) -> bool {
    let mut a = Attr::default();
    a.u32(0, id);
    match bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut a) {
        Ok(_fd) => true,
        Err(e) => e.raw_os_error() != Some(libc::ENOENT),
    }
}

/// Whether a map with this id still exists.
pub fn map_id_exists(id: u32) -> bool {
    let mut a = Attr::default();
    a.u32(0, id);
    match bpf_fd(BPF_MAP_GET_FD_BY_ID, &mut a) {
        Ok(_fd) => true,
        Err(e) => e.raw_os_error() != Some(libc::ENOENT),
    }
}

/// (id, name) of every loaded program.
pub fn all_programs() -> io::Result<Vec<(u32, String)>> {
    let mut out = vec![];
    let mut id = 0u32;
    loop {
        let mut a = Attr::default();
        a.u32(0, id);
        match bpf(BPF_PROG_GET_NEXT_ID, &mut a) {
            Ok(_) => id = a.get_u32(4),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Err(e) => return Err(e),
        }
        let mut b = Attr::default();
        b.u32(0, id);
        if let Ok(fd) = bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut b) {
            if let Ok(info) = prog_info(&fd) {
                out.push(info);
            }
        }
    }
}

// ---- perf events ----

pub const PERF_TYPE_HARDWARE: u32 = 0;
pub const PERF_TYPE_SOFTWARE: u32 = 1;
pub const PERF_TYPE_TRACEPOINT: u32 = 2;
pub const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;

const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x40042408;

/// The parts of `struct perf_event_attr` (128 bytes, PERF_ATTR_SIZE_VER8) we set.
pub struct PerfAttr {
    pub type_: u32,
    pub config: u64,
    /// sample_period, or sample_freq when `freq`.
    pub sample: u64,
    pub freq: bool,
    pub config1: u64,
    pub config2: u64,
    pub disabled: bool,
}

pub fn perf_event_open(attr: &PerfAttr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 128];
    buf[0..4].copy_from_slice(&attr.type_.to_ne_bytes());
    buf[4..8].copy_from_slice(&128u32.to_ne_bytes());
    buf[8..16].copy_from_slice(&attr.config.to_ne_bytes());
    buf[16..24].copy_from_slice(&attr.sample.to_ne_bytes());
    let mut flags: u64 = 0;
    if attr.disabled {
        flags |= 1; // disabled
    }
    if attr.freq {
        flags |= 1 << 10; // freq
    }
    buf[40..48].copy_from_slice(&flags.to_ne_bytes());
    buf[56..64].copy_from_slice(&attr.config1.to_ne_bytes());
    buf[64..72].copy_from_slice(&attr.config2.to_ne_bytes());
    // SAFETY: buf is a valid perf_event_attr of the size it declares; any
    // pointer in config1 is kept alive by the caller for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            buf.as_ptr(),
            pid as libc::c_long,
            cpu as libc::c_long,
            -1 as libc::c_long,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

pub fn perf_set_bpf(perf: &OwnedFd, prog: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain ioctl on fds we own.
    let r = unsafe {
        libc::ioctl(
            perf.as_raw_fd(),
            PERF_EVENT_IOC_SET_BPF as _,
            prog.as_raw_fd(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn perf_enable(perf: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain ioctl on an fd we own.
    let r = unsafe { libc::ioctl(perf.as_raw_fd(), PERF_EVENT_IOC_ENABLE as _, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Parse a CPU list such as `0-3,5` (sysfs `online`/`possible`).
pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut v = vec![];
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    v.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.trim().parse() {
                    v.push(a);
                }
            }
        }
    }
    v
}

/// The online CPUs.
pub fn online_cpus() -> io::Result<Vec<u32>> {
    Ok(parse_cpu_list(&std::fs::read_to_string(
        "/sys/devices/system/cpu/online",
    )?))
}

/// The number of possible CPUs (the stride of per-CPU map values).
pub fn possible_cpus() -> io::Result<usize> {
    let v = parse_cpu_list(&std::fs::read_to_string(
        "/sys/devices/system/cpu/possible",
    )?);
    Ok(v.iter().max().map(|m| *m as usize + 1).unwrap_or(1))
}
