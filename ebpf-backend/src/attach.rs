//! Attaching programs to perf events: CPU-clock sampling on every online CPU
//! (`timer.profile`), generic perf events, uprobes/uretprobes through the
//! `uprobe` PMU (no entries in tracefs `uprobe_events`), tracepoints.
//! The attachment is the set of perf event fds; dropping it detaches.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::load::Program;
use crate::module::ProgKind;
use crate::sys::{self, PerfAttr};

/// A live attachment: dropping it disables and closes its perf events, which
/// detaches the program (the kernel drops its reference to it).
#[derive(Debug)]
pub struct Attachment {
    desc: String,
    fds: Vec<OwnedFd>,
}

impl Attachment {
    /// What this is attached to, e.g. `uprobe /bin/x+0x1234`.
    pub fn describe(&self) -> &str {
        &self.desc
    }
    /// The number of perf events (one per CPU for CPU-wide events).
    pub fn event_count(&self) -> usize {
        self.fds.len()
    }
    /// Detach now (same as dropping).
    pub fn detach(self) {}
}

/// How often a sampling perf event fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// Every N events.
    Period(u64),
    /// N times a second (the kernel adjusts the period).
    Freq(u64),
}

/// A generic perf event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerfEventSpec {
    /// `perf_event_attr.type` (PERF_TYPE_HARDWARE = 0, SOFTWARE = 1, ...).
    pub type_: u32,
    pub config: u64,
    pub sample: Sample,
    /// Only this process (all CPUs), or system wide when None.
    pub pid: Option<i32>,
    /// These CPUs; None: every online CPU (system wide) or any CPU (with pid).
    pub cpus: Option<Vec<u32>>,
}

pub const PERF_TYPE_HARDWARE: u32 = sys::PERF_TYPE_HARDWARE;
pub const PERF_TYPE_SOFTWARE: u32 = sys::PERF_TYPE_SOFTWARE;
pub const PERF_COUNT_SW_CPU_CLOCK: u64 = sys::PERF_COUNT_SW_CPU_CLOCK;
/// `PERF_COUNT_HW_CPU_CYCLES`.
pub const PERF_COUNT_HW_CPU_CYCLES: u64 = 0;

fn attach_fd(
    prog: &Program,
    attr: &PerfAttr,
    pid: i32,
    cpu: i32,
    what: &str,
) -> Result<OwnedFd, Error> {
    let fd = sys::perf_event_open(attr, pid, cpu).map_err(|e| {
        Error::sys(
            format!("perf_event_open for {what} (pid {pid}, cpu {cpu})"),
            e,
        )
    })?;
    sys::perf_set_bpf(&fd, &prog.fd)
        .map_err(|e| Error::sys(format!("attaching {} to {what}", prog.name), e))?;
    sys::perf_enable(&fd).map_err(|e| Error::sys(format!("enabling {what}"), e))?;
    Ok(fd)
}

fn read_trimmed(p: impl AsRef<Path>) -> Result<String, Error> {
    let p = p.as_ref();
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::sys(format!("reading {}", p.display()), e))
}

/// Puts `value` where a PMU format file (`config:32-63`, `config:0`) says,
/// in `perf_event_attr.config`. Only `config` fields are supported (the
/// uprobe PMU has no others); a value wider than the field is an error.
fn place_in_config(format: &str, value: u64) -> Result<u64, String> {
    let bits = format
        .strip_prefix("config:")
        .ok_or_else(|| format!("{format:?} is not a config field"))?;
    let parse = |b: &str| b.parse::<u32>().ok().filter(|&b| b < 64);
    let (lo, hi) = match bits.split_once('-') {
        Some((lo, hi)) => (parse(lo), parse(hi)),
        None => (parse(bits), parse(bits)),
    };
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Err(format!("bad bit range in {format:?}"));
    };
    if lo > hi {
        return Err(format!("bad bit range in {format:?}"));
    }
    let width = hi - lo + 1;
    if width < 64 && value >> width != 0 {
        return Err(format!("{value:#x} does not fit in {format:?}"));
    }
    Ok(value << lo)
}

/// The kernel keeps one reference counter offset per probed file offset
/// (none counts as one): a uprobe asking for another while the first is
/// attached gets a bare EINVAL (dmesg: "ref_ctr_offset mismatch"). Say so.
fn ref_ctr_hint(e: Error) -> Error {
    match e {
        Error::Sys { what, source }
            if source.raw_os_error() == Some(libc::EINVAL)
                && what.starts_with("perf_event_open") =>
        {
            Error::Sys {
                what: format!(
                    "{what}; is another uprobe attached at this offset with a different \
                     reference counter offset (or none)? the kernel takes one per address"
                ),
                source,
            }
        }
        e => e,
    }
}

/// Mount tracefs at /sys/kernel/tracing if nothing is there (a container or
/// minimal boot may not have it). Returns the tracefs root.
pub fn ensure_tracefs() -> Result<PathBuf, Error> {
    let root = PathBuf::from("/sys/kernel/tracing");
    if root.join("events").is_dir() {
        return Ok(root);
    }
    let debug = PathBuf::from("/sys/kernel/debug/tracing");
    if debug.join("events").is_dir() {
        return Ok(debug);
    }
    let c = |s: &str| CString::new(s).unwrap();
    let (src, dst, ty) = (c("tracefs"), c("/sys/kernel/tracing"), c("tracefs"));
    // SAFETY: valid NUL-terminated strings, no data argument.
    let r = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
    if r != 0 {
        return Err(Error::sys(
            "mounting tracefs on /sys/kernel/tracing",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(root)
}

impl Program {
    fn kind_error(&self, what: &str) -> Error {
        Error::Invalid(format!(
            "program {} is {:?}, cannot attach it to {what}",
            self.name, self.kind
        ))
    }

    /// `timer.profile`: a software CPU-clock event sampling at `freq_hz`
    /// on every online CPU, system wide.
    pub fn attach_cpu_clock(&self, freq_hz: u64) -> Result<Attachment, Error> {
        self.attach_perf(&PerfEventSpec {
            type_: PERF_TYPE_SOFTWARE,
            config: PERF_COUNT_SW_CPU_CLOCK,
            sample: Sample::Freq(freq_hz),
            pid: None,
            cpus: None,
        })
    }

    /// A generic sampling perf event.
    pub fn attach_perf(&self, spec: &PerfEventSpec) -> Result<Attachment, Error> {
        if self.kind != ProgKind::PerfEvent {
            return Err(self.kind_error("a perf event"));
        }
        let (sample, freq) = match spec.sample {
            Sample::Period(p) => (p, false),
            Sample::Freq(f) => (f, true),
        };
        let attr = PerfAttr {
            type_: spec.type_,
            config: spec.config,
            sample,
            freq,
            config1: 0,
            config2: 0,
            disabled: true,
        };
        let cpus: Vec<i32> = match (&spec.cpus, spec.pid) {
            (Some(c), _) => c.iter().map(|&c| c as i32).collect(),
            (None, Some(_)) => vec![-1],
            (None, None) => sys::online_cpus()
                .map_err(|e| Error::sys("reading online CPUs", e))?
                .into_iter()
                .map(|c| c as i32)
                .collect(),
        };
        let what = format!("perf event type {} config {}", spec.type_, spec.config);
        let mut fds = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            fds.push(attach_fd(self, &attr, spec.pid.unwrap_or(-1), cpu, &what)?);
        }
        Ok(Attachment { desc: what, fds })
    }

    /// A uprobe (or uretprobe, by the program's kind) at file offset `offset`
    /// of the ELF file `path`, in every process mapping it or only in `pid`.
    pub fn attach_uprobe(
        &self,
        path: &Path,
        offset: u64,
        pid: Option<i32>,
    ) -> Result<Attachment, Error> {
        self.attach_uprobe_with(path, offset, pid, None)
    }

    /// [`Program::attach_uprobe`], with a reference counter: the 16-bit word
    /// at file offset `ref_ctr_offset` of the same file (an SDT marker's
    /// semaphore) is incremented by the kernel in every process mapping the
    /// file while the probe is attached, and decremented on detach, so the
    /// program takes the branch that fires the marker only meanwhile.
    pub fn attach_uprobe_with(
        &self,
        path: &Path,
        offset: u64,
        pid: Option<i32>,
        ref_ctr_offset: Option<u64>,
    ) -> Result<Attachment, Error> {
        let ret = match self.kind {
            ProgKind::Uprobe => false,
            ProgKind::Uretprobe => true,
            _ => return Err(self.kind_error("a uprobe")),
        };
        let pmu = Path::new("/sys/bus/event_source/devices/uprobe");
        let type_: u32 = read_trimmed(pmu.join("type"))?
            .parse()
            .map_err(|_| Error::Invalid("bad uprobe PMU type".into()))?;
        let mut config = 0u64;
        if ret {
            // "config:N": the bit that makes it a return probe.
            let f = read_trimmed(pmu.join("format/retprobe"))?;
            config |= place_in_config(&f, 1)
                .map_err(|e| Error::Invalid(format!("uprobe retprobe format: {e}")))?;
        }
        if let Some(ref_ctr) = ref_ctr_offset {
            let format = pmu.join("format/ref_ctr_offset");
            let f = std::fs::read_to_string(&format).map_err(|e| {
                Error::Invalid(format!(
                    "this kernel's uprobe PMU cannot take a reference counter \
                     (SDT semaphore; Linux 4.20 and later): {}: {e}",
                    format.display()
                ))
            })?;
            config |= place_in_config(f.trim(), ref_ctr)
                .map_err(|e| Error::Invalid(format!("uprobe ref_ctr_offset format: {e}")))?;
        }
        // Not canonicalised: /proc/PID/root/... must stay a path through the
        // target's root (the kernel follows that magic link, realpath would not).
        std::fs::metadata(path)
            .map_err(|e| Error::sys(format!("uprobe target {}", path.display()), e))?;
        let abs = path.to_path_buf();
        let cpath = CString::new(abs.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Invalid("path has a NUL".into()))?;
        let attr = PerfAttr {
            type_,
            config,
            sample: 1,
            freq: false,
            config1: cpath.as_ptr() as u64,
            config2: offset,
            disabled: true,
        };
        let what = format!(
            "{} {}+{offset:#x}{}{}",
            if ret { "uretprobe" } else { "uprobe" },
            abs.display(),
            ref_ctr_offset
                .map(|r| format!(" (ref_ctr {r:#x})"))
                .unwrap_or_default(),
            pid.map(|p| format!(" pid {p}")).unwrap_or_default()
        );
        let fd = match pid {
            Some(p) => attach_fd(self, &attr, p, -1, &what),
            None => attach_fd(self, &attr, -1, 0, &what),
        }
        .map_err(ref_ctr_hint)?;
        Ok(Attachment {
            desc: what,
            fds: vec![fd],
        })
    }

    /// The tracepoint `category:name` (system wide).
    pub fn attach_tracepoint(&self, category: &str, name: &str) -> Result<Attachment, Error> {
        if !matches!(self.kind, ProgKind::Tracepoint { .. }) {
            return Err(self.kind_error("a tracepoint"));
        }
        let root = ensure_tracefs()?;
        let id: u64 = read_trimmed(root.join("events").join(category).join(name).join("id"))?
            .parse()
            .map_err(|_| Error::Invalid(format!("bad id for tracepoint {category}:{name}")))?;
        let attr = PerfAttr {
            type_: sys::PERF_TYPE_TRACEPOINT,
            config: id,
            sample: 1,
            freq: false,
            config1: 0,
            config2: 0,
            disabled: true,
        };
        let what = format!("tracepoint {category}:{name}");
        let fd = attach_fd(self, &attr, -1, 0, &what)?;
        Ok(Attachment {
            desc: what,
            fds: vec![fd],
        })
    }

    /// A raw tracepoint (`BPF_RAW_TRACEPOINT_OPEN`): the program runs with
    /// the event's arguments on every CPU; closing the fd detaches it.
    pub fn attach_raw_tracepoint(&self, name: &str) -> Result<Attachment, Error> {
        if !matches!(self.kind, ProgKind::RawTracepoint { .. }) {
            return Err(self.kind_error("a raw tracepoint"));
        }
        let cname = std::ffi::CString::new(name)
            .map_err(|_| Error::Invalid(format!("bad raw tracepoint name {name:?}")))?;
        let mut attr = sys::Attr::default();
        // struct { __u64 name; __u32 prog_fd; } raw_tracepoint
        attr.ptr(0, cname.as_ptr())
            .u32(8, std::os::fd::AsRawFd::as_raw_fd(&self.fd) as u32);
        let what = format!("raw tracepoint {name}");
        let fd = sys::bpf_fd_retry(sys::BPF_RAW_TRACEPOINT_OPEN, &mut attr)
            .map_err(|e| Error::sys(format!("attaching {} to {what}", self.name), e))?;
        Ok(Attachment {
            desc: what,
            fds: vec![fd],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::place_in_config;

    #[test]
    fn config_fields() {
        assert_eq!(place_in_config("config:0", 1), Ok(1));
        assert_eq!(place_in_config("config:32-63", 0x3040), Ok(0x3040 << 32));
        assert_eq!(
            place_in_config("config:32-63", 0xffff_ffff),
            Ok(0xffff_ffff_0000_0000)
        );
        assert_eq!(place_in_config("config:0-63", u64::MAX), Ok(u64::MAX));
        assert!(place_in_config("config:32-63", 1 << 32).is_err());
        assert!(place_in_config("config:0", 2).is_err());
        assert!(place_in_config("config1:0-63", 1).is_err());
        assert!(place_in_config("config:63-32", 1).is_err());
        assert!(place_in_config("config:64", 1).is_err());
        assert!(place_in_config("config:x", 1).is_err());
    }
}
