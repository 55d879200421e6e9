//! Waiting out the BPF programs that are running now.
//!
//! After userspace changes which map or value the programs should use (a
//! flag in a global), a handler that read the old choice just before may
//! still be writing to the old place. Non-sleepable BPF programs (perf
//! events, uprobes, tracepoints) run inside an RCU read-side section, so an
//! RCU grace period is exactly "every such handler has finished". Userspace
//! has no direct `synchronize_rcu()`, but the kernel runs one on every
//! syscall update of a map-in-map (`ARRAY_OF_MAPS`), so that the caller
//! knows no program still sees the previous inner map; the kernel's own
//! selftests rely on the same effect. [`Grace::wait`] makes such an update.

use crate::error::Error;
use crate::maps::MapKind;
use crate::sys::{self, Attr};
use std::os::fd::{AsRawFd, OwnedFd};

/// `BPF_MAP_TYPE_ARRAY_OF_MAPS` (not among [`MapKind`]'s named kinds:
/// nothing else here uses it).
const ARRAY_OF_MAPS: u32 = 12;

/// A one-slot map-in-map and the small array stored in it.
pub struct Grace {
    outer: OwnedFd,
    inner: OwnedFd,
}

fn create(kind: u32, inner: Option<&OwnedFd>, name: &str) -> Result<OwnedFd, Error> {
    let mut a = Attr::default();
    a.u32(0, kind).u32(4, 4).u32(8, 4).u32(12, 1).name(28, name);
    if let Some(fd) = inner {
        // `inner_map_fd`: the template every stored map must match.
        a.u32(20, fd.as_raw_fd() as u32);
    }
    sys::bpf_fd_retry(sys::BPF_MAP_CREATE, &mut a)
        .map_err(|e| Error::sys(format!("creating map {name}"), e))
}

impl Grace {
    pub fn new() -> Result<Grace, Error> {
        let inner = create(MapKind::Array.type_id(), None, "stx_grace_in")?;
        let outer = create(ARRAY_OF_MAPS, Some(&inner), "stx_grace")?;
        Ok(Grace { outer, inner })
    }

    /// Returns once every non-sleepable BPF program running when it was
    /// called has returned.
    pub fn wait(&self) -> Result<(), Error> {
        let fd = self.inner.as_raw_fd() as u32;
        sys::map_update(&self.outer, &0u32.to_ne_bytes(), &fd.to_ne_bytes(), 0)
            .map_err(|e| Error::sys("waiting for running BPF programs", e))
    }
}
