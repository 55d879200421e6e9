//! Consuming a `BPF_MAP_TYPE_RINGBUF` map from userspace: the consumer page
//! is mapped read-write, the producer page and the data (mapped twice in a
//! row by the kernel, so records never wrap) read-only.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::load::Map;
use crate::maps::MapKind;

const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HDR: usize = 8;

struct Mmap {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mmap {
    fn new(fd: &OwnedFd, len: usize, prot: libc::c_int, offset: usize) -> std::io::Result<Mmap> {
        // SAFETY: mapping a ring buffer map fd as the kernel documents it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mmap { ptr, len })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what we mapped.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// A reader of one ring buffer map. It holds its own dup of the map fd, so
/// it stays valid independently of the [`Map`] handle.
pub struct RingBufReader {
    fd: OwnedFd,
    epoll: OwnedFd,
    consumer: Mmap,
    producer: Mmap,
    mask: u64,
    page: usize,
}

// SAFETY: the mappings are owned by the reader and only accessed through
// &mut self (or atomics); moving it between threads is fine.
unsafe impl Send for RingBufReader {}

impl RingBufReader {
    pub fn new(map: &Map) -> Result<RingBufReader, Error> {
        if map.def().kind != MapKind::RingBuf {
            return Err(Error::Invalid(format!(
                "map {} is not a ring buffer",
                map.name()
            )));
        }
        let fd = map
            .fd()
            .try_clone()
            .map_err(|e| Error::sys("dup of ring buffer fd", e))?;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let size = map.def().max_entries as usize;
        let what = |e| Error::sys(format!("mmap of ring buffer {}", map.name()), e);
        let consumer = Mmap::new(&fd, page, libc::PROT_READ | libc::PROT_WRITE, 0).map_err(what)?;
        let producer = Mmap::new(&fd, page + 2 * size, libc::PROT_READ, page).map_err(what)?;
        // SAFETY: plain epoll setup on fds we own.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(Error::sys("epoll_create1", std::io::Error::last_os_error()));
        }
        // SAFETY: epfd is a new fd we own.
        let epoll = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(epfd) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: valid fds and event struct.
        if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev) } < 0 {
            return Err(Error::sys("epoll_ctl", std::io::Error::last_os_error()));
        }
        Ok(RingBufReader {
            fd,
            epoll,
            consumer,
            producer,
            mask: size as u64 - 1,
            page,
        })
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the first u64 of the consumer page, 8-byte aligned, shared
        // with the kernel; accessed atomically.
        unsafe { &*(self.consumer.ptr as *const AtomicU64) }
    }
    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: as above, for the producer page.
        unsafe { &*(self.producer.ptr as *const AtomicU64) }
    }

    /// Hand the records committed when it is called to `f`, without
    /// waiting. Returns how many. Records produced meanwhile wait for the
    /// next call: a producer faster than `f` must not keep the caller here
    /// (it has signals and timers to see to).
    pub fn consume(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        let mut cons = self.consumer_pos().load(Ordering::Acquire);
        let prod = self.producer_pos().load(Ordering::Acquire);
        while cons < prod {
            let off = self.page + (cons & self.mask) as usize;
            // SAFETY: off + header lies within the data mapping (2x size).
            let hdr = unsafe {
                &*((self.producer.ptr as *const u8).add(off) as *const std::sync::atomic::AtomicU32)
            };
            let len = hdr.load(Ordering::Acquire);
            if len & BUSY != 0 {
                // Reserved but not yet committed: stop here for now.
                break;
            }
            let data_len = (len & !(BUSY | DISCARD)) as usize;
            if len & DISCARD == 0 {
                // SAFETY: the record lies within the double-mapped data area.
                let data = unsafe {
                    std::slice::from_raw_parts(
                        (self.producer.ptr as *const u8).add(off + HDR),
                        data_len,
                    )
                };
                f(data);
                n += 1;
            }
            cons += ((data_len + HDR + 7) & !7) as u64;
            self.consumer_pos().store(cons, Ordering::Release);
        }
        n
    }

    /// Wait up to `timeout` for data, then consume what is there.
    pub fn poll(&mut self, timeout: Duration, f: impl FnMut(&[u8])) -> Result<usize, Error> {
        if self.has_data() {
            return Ok(self.consume(f));
        }
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: valid epoll fd and one-element buffer.
        let r = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut ev, 1, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(Error::sys("epoll_wait on ring buffer", e));
            }
        }
        Ok(self.consume(f))
    }

    fn has_data(&self) -> bool {
        self.consumer_pos().load(Ordering::Acquire) < self.producer_pos().load(Ordering::Acquire)
    }

    /// The ring buffer map's fd.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}
