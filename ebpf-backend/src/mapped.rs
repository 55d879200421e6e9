//! The value of a one-entry `BPF_F_MMAPABLE` array map, mapped into this
//! process: userspace reads and writes single fields of it in place, and
//! updates counters with the same atomic adds the programs use, instead of
//! rewriting the whole value (which would undo concurrent kernel updates).

use crate::error::Error;
use crate::load::Map;
use crate::maps::flags;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI64, Ordering};

pub struct MappedValue {
    ptr: *mut u8,
    len: usize,
    map_len: usize,
}

// SAFETY: the mapping is plain shared memory; every access goes through
// bounds-checked methods (atomics for the 8-byte fields).
unsafe impl Send for MappedValue {}
unsafe impl Sync for MappedValue {}

impl MappedValue {
    /// Map `map`'s first value (the map must be an mmapable array).
    pub fn new(map: &Map) -> Result<MappedValue, Error> {
        let d = map.def();
        if d.flags & flags::MMAPABLE == 0 {
            return Err(Error::Invalid(format!("map {} is not mmapable", d.name)));
        }
        let len = d.value_size as usize;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let total = (len * d.max_entries as usize).div_ceil(page) * page;
        // SAFETY: mapping an mmapable array map's fd, as the kernel documents.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::sys(
                format!("mmap of map {}", d.name),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(MappedValue {
            ptr: ptr as *mut u8,
            len,
            map_len: total,
        })
    }

    /// The 8-byte field at `off` (8-aligned), as an atomic.
    pub fn word(&self, off: usize) -> Option<&AtomicI64> {
        if !off.is_multiple_of(8) || off + 8 > self.len {
            return None;
        }
        // SAFETY: in bounds and aligned (the mapping is page-aligned).
        Some(unsafe { &*(self.ptr.add(off) as *const AtomicI64) })
    }

    /// A copy of `n` bytes at `off`.
    pub fn read(&self, off: usize, n: usize) -> Option<Vec<u8>> {
        if off + n > self.len {
            return None;
        }
        let mut out = vec![0u8; n];
        // SAFETY: in bounds; concurrent kernel writes may tear a string,
        // as they would with a map lookup.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), out.as_mut_ptr(), n) };
        Some(out)
    }

    /// Write `bytes` at `off`.
    pub fn write(&self, off: usize, bytes: &[u8]) -> bool {
        if off + bytes.len() > self.len {
            return false;
        }
        // SAFETY: in bounds of the shared mapping.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(off), bytes.len()) };
        std::sync::atomic::fence(Ordering::SeqCst);
        true
    }
}

impl Drop for MappedValue {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.map_len);
        }
    }
}
