//! Loading a [`Module`] into the kernel with raw `bpf(2)` calls: BTF, maps,
//! programs (with `func_info` for every function). Every kernel object is an
//! owned fd, released when its handle drops, on every path.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::asm::{Image, MapId};
use crate::btf;
use crate::error::{parse_verifier_log, Error, VerifierError};
use crate::insn::op;
use crate::maps::{MapDef, MapKind};
use crate::module::{Module, ProgId, ProgKind};
use crate::sys::{self, Attr};

/// How to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Verifier log level for the first attempt: 0 loads without a log and,
    /// on failure, loads again at level 1 to get one; 1 or 2 (with 4 for
    /// statistics) keep the log in [`Program::log`].
    pub log_level: u32,
    /// The log buffer size in bytes (the kernel keeps the tail when it overflows).
    pub log_size: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            log_level: 0,
            log_size: 16 << 20,
        }
    }
}

/// A loaded map.
#[derive(Debug)]
pub struct Map {
    pub(crate) def: MapDef,
    pub(crate) fd: OwnedFd,
    id: u32,
    ncpus: usize,
}

/// A loaded program.
#[derive(Debug)]
pub struct Program {
    pub(crate) name: String,
    pub(crate) kind: ProgKind,
    pub(crate) fd: OwnedFd,
    image: Image,
    id: u32,
    log: String,
}

/// A loaded module: its maps and programs. Dropping it closes every fd;
/// programs still attached stay alive until their [`crate::Attachment`]s drop.
#[derive(Debug)]
pub struct Loaded {
    maps: Vec<Map>,
    programs: Vec<Program>,
    _btf: OwnedFd,
}

fn load_btf(bytes: &[u8], log_size: usize) -> Result<OwnedFd, Error> {
    let mut a = Attr::default();
    a.ptr(0, bytes.as_ptr()).u32(16, bytes.len() as u32);
    match sys::bpf_fd_retry(sys::BPF_BTF_LOAD, &mut a) {
        Ok(fd) => Ok(fd),
        Err(_) => {
            let mut log = vec![0u8; log_size.min(1 << 20)];
            let mut a = Attr::default();
            a.ptr(0, bytes.as_ptr())
                .ptr(8, log.as_mut_ptr())
                .u32(16, bytes.len() as u32)
                .u32(20, log.len() as u32)
                .u32(24, 1);
            match sys::bpf_fd_retry(sys::BPF_BTF_LOAD, &mut a) {
                Ok(fd) => Ok(fd),
                Err(errno) => Err(Error::Btf {
                    errno,
                    log: cstr(&log),
                }),
            }
        }
    }
}

/// The memory the kernel sets up when creating `d`, roughly: the bytes
/// of a ring buffer, the entries of a preallocated hash or an array.
fn creation_cost(d: &MapDef, ncpus: usize) -> u64 {
    let entry = (d.key_size as u64 + d.value_size as u64 + 48)
        * if d.kind.is_percpu() { ncpus as u64 } else { 1 };
    match d.kind {
        MapKind::RingBuf => d.max_entries as u64,
        _ if d.flags & crate::maps::flags::NO_PREALLOC != 0 => 0,
        _ => entry * d.max_entries as u64,
    }
}

/// Create every map of `defs`, in order. The costliest one, when it
/// takes megabytes (a ring buffer, a preallocated LRU hash of strings:
/// milliseconds of the kernel clearing pages), is created on another
/// thread meanwhile. An error is the first map's that failed.
fn create_maps(defs: &[MapDef], ncpus: usize) -> Result<Vec<Map>, Error> {
    let big = (0..defs.len())
        .max_by_key(|&i| creation_cost(&defs[i], ncpus))
        .filter(|&i| creation_cost(&defs[i], ncpus) >= 1 << 20);
    let mut made: Vec<Option<Result<Map, Error>>> = Vec::with_capacity(defs.len());
    std::thread::scope(|s| {
        let helper = big.map(|b| s.spawn(move || Map::create(b, &defs[b], ncpus)));
        for (i, def) in defs.iter().enumerate() {
            made.push((Some(i) != big).then(|| Map::create(i, def, ncpus)));
        }
        if let (Some(b), Some(h)) = (big, helper) {
            made[b] = Some(h.join().unwrap_or_else(|_| {
                Err(Error::Invalid(format!(
                    "creating map {} failed",
                    defs[b].name
                )))
            }));
        }
    });
    made.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Invalid("map not created".into()))))
        .collect()
}

fn cstr(buf: &[u8]) -> String {
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl Map {
    fn create(index: usize, def: &MapDef, ncpus: usize) -> Result<Map, Error> {
        let mut a = Attr::default();
        a.u32(0, def.kind.type_id())
            .u32(4, def.key_size)
            .u32(8, def.value_size)
            .u32(12, def.max_entries)
            .u32(16, def.flags)
            .name(28, &def.name);
        let fd =
            sys::bpf_fd_retry(sys::BPF_MAP_CREATE, &mut a).map_err(|source| Error::MapCreate {
                map: MapId(index as u32),
                name: def.name.clone(),
                kind: def.kind,
                source,
            })?;
        let id = sys::map_id(&fd).unwrap_or(0);
        let m = Map {
            def: def.clone(),
            fd,
            id,
            ncpus,
        };
        if let Some(data) = &def.data {
            let mut v = data.clone();
            v.resize(def.value_size as usize, 0);
            sys::map_update(&m.fd, &0u32.to_ne_bytes(), &v, 0)
                .map_err(|e| Error::sys(format!("initialising map {}", def.name), e))?;
            if def.frozen {
                sys::map_freeze(&m.fd)
                    .map_err(|e| Error::sys(format!("freezing map {}", def.name), e))?;
            }
        }
        Ok(m)
    }

    pub fn def(&self) -> &MapDef {
        &self.def
    }
    pub fn name(&self) -> &str {
        &self.def.name
    }
    /// The kernel's id for the map (as `bpftool map` shows it).
    pub fn id(&self) -> u32 {
        self.id
    }
    /// The map's file descriptor (borrowed).
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
    /// The number of per-CPU slots in a per-CPU value (possible CPUs).
    pub fn ncpus(&self) -> usize {
        self.ncpus
    }
    fn check_key(&self, key: &[u8]) -> Result<(), Error> {
        if key.len() != self.def.key_size as usize {
            return Err(Error::Invalid(format!(
                "map {}: key of {} bytes, expected {}",
                self.def.name,
                key.len(),
                self.def.key_size
            )));
        }
        Ok(())
    }
    fn percpu_stride(&self) -> usize {
        (self.def.value_size as usize).div_ceil(8) * 8
    }

    /// The value for `key` (not for per-CPU maps: see [`Map::lookup_percpu`]).
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.check_key(key)?;
        if self.def.kind.is_percpu() {
            return Err(Error::Invalid(format!(
                "map {} is per-CPU: use lookup_percpu",
                self.def.name
            )));
        }
        let mut v = vec![0u8; self.def.value_size as usize];
        let found = sys::map_lookup(&self.fd, key, &mut v)
            .map_err(|e| Error::sys(format!("lookup in map {}", self.def.name), e))?;
        Ok(found.then_some(v))
    }

    /// The per-CPU values for `key`, one per possible CPU.
    pub fn lookup_percpu(&self, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>, Error> {
        self.check_key(key)?;
        if !self.def.kind.is_percpu() {
            return Err(Error::Invalid(format!(
                "map {} is not per-CPU",
                self.def.name
            )));
        }
        let stride = self.percpu_stride();
        let mut v = vec![0u8; stride * self.ncpus];
        let found = sys::map_lookup(&self.fd, key, &mut v)
            .map_err(|e| Error::sys(format!("lookup in map {}", self.def.name), e))?;
        Ok(found.then(|| {
            v.chunks(stride)
                .map(|c| c[..self.def.value_size as usize].to_vec())
                .collect()
        }))
    }

    /// The sum over CPUs of the little-endian u64 at `offset` of the value of
    /// `key` (per-CPU maps), or that u64 itself (other maps).
    pub fn read_u64_sum(&self, key: &[u8], offset: usize) -> Result<Option<u64>, Error> {
        let get = |v: &[u8]| -> u64 {
            v.get(offset..offset + 8)
                .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
                .unwrap_or(0)
        };
        if self.def.kind.is_percpu() {
            Ok(self
                .lookup_percpu(key)?
                .map(|vs| vs.iter().map(|v| get(v)).fold(0u64, u64::wrapping_add)))
        } else {
            Ok(self.lookup(key)?.map(|v| get(&v)))
        }
    }

    /// Set the value of `key`. For per-CPU maps `value` holds every CPU's
    /// value, each padded to 8 bytes, or one value to copy to every CPU.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.check_key(key)?;
        let mut buf;
        let value = if self.def.kind.is_percpu() && value.len() == self.def.value_size as usize {
            let stride = self.percpu_stride();
            buf = vec![0u8; stride * self.ncpus];
            for c in buf.chunks_mut(stride) {
                c[..value.len()].copy_from_slice(value);
            }
            &buf[..]
        } else {
            let want = if self.def.kind.is_percpu() {
                self.percpu_stride() * self.ncpus
            } else {
                self.def.value_size as usize
            };
            if value.len() != want {
                buf = value.to_vec();
                buf.resize(want, 0);
                &buf[..]
            } else {
                value
            }
        };
        sys::map_update(&self.fd, key, value, 0)
            .map_err(|e| Error::sys(format!("update of map {}", self.def.name), e))
    }

    /// Delete `key`; Ok(false) if it was not there.
    pub fn delete(&self, key: &[u8]) -> Result<bool, Error> {
        self.check_key(key)?;
        sys::map_delete(&self.fd, key)
            .map_err(|e| Error::sys(format!("delete in map {}", self.def.name), e))
    }

    /// Iterate over the keys (`BPF_MAP_GET_NEXT_KEY`). Concurrent deletion
    /// by a program may restart the walk, as with any BPF map.
    pub fn keys(&self) -> Keys<'_> {
        Keys {
            map: self,
            last: None,
            done: false,
        }
    }

    /// Every (key, value) of a map that is not per-CPU.
    pub fn entries(&self) -> Result<Vec<Entry>, Error> {
        let mut out = vec![];
        for k in self.keys() {
            let k = k?;
            if let Some(v) = self.lookup(&k)? {
                out.push((k, v));
            }
        }
        Ok(out)
    }
}

/// A (key, value) pair of a map.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Iterator over a map's keys.
pub struct Keys<'a> {
    map: &'a Map,
    last: Option<Vec<u8>>,
    done: bool,
}

impl Iterator for Keys<'_> {
    type Item = Result<Vec<u8>, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut next = vec![0u8; self.map.def.key_size as usize];
        match sys::map_next_key(&self.map.fd, self.last.as_deref(), &mut next) {
            Ok(true) => {
                self.last = Some(next.clone());
                Some(Ok(next))
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(Error::sys(
                    format!("iterating map {}", self.map.def.name),
                    e,
                )))
            }
        }
    }
}

impl Program {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn kind(&self) -> &ProgKind {
        &self.kind
    }
    /// The kernel's id for the program (as `bpftool prog` shows it).
    pub fn id(&self) -> u32 {
        self.id
    }
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
    /// The instructions as loaded (map fds patched in).
    pub fn image(&self) -> &Image {
        &self.image
    }
    /// The verifier log, when loaded with a nonzero [`LoadOptions::log_level`].
    pub fn log(&self) -> &str {
        &self.log
    }
}

struct ProgLoad<'a> {
    name: &'a str,
    kind: &'a ProgKind,
    license: &'a str,
    image: &'a Image,
    insns: &'a [u8],
    func_info: &'a [u8],
    line_info: &'a [u8],
    btf_fd: &'a OwnedFd,
}

/// Load a program image with `func_info` (and `line_info`); on failure,
/// the verifier's log.
fn load_program(req: &ProgLoad<'_>, opts: &LoadOptions) -> Result<(OwnedFd, String), Error> {
    let ProgLoad {
        name,
        kind,
        license,
        image,
        insns,
        func_info,
        line_info,
        btf_fd,
    } = *req;
    let license =
        std::ffi::CString::new(license).map_err(|_| Error::Invalid("license has a NUL".into()))?;
    let attempt = |level: u32, log: &mut Vec<u8>| -> io::Result<OwnedFd> {
        let mut a = Attr::default();
        a.u32(0, kind.prog_type())
            .u32(4, (insns.len() / 8) as u32)
            .ptr(8, insns.as_ptr())
            .ptr(16, license.as_ptr())
            .name(48, name)
            .u32(72, btf_fd.as_raw_fd() as u32)
            .u32(76, 8)
            .ptr(80, func_info.as_ptr())
            .u32(88, (func_info.len() / 8) as u32);
        if !line_info.is_empty() {
            a.u32(92, 16)
                .ptr(96, line_info.as_ptr())
                .u32(104, (line_info.len() / 16) as u32);
        }
        if level > 0 {
            a.u32(24, level)
                .u32(28, log.len() as u32)
                .ptr(32, log.as_mut_ptr());
        }
        sys::bpf_fd_retry(sys::BPF_PROG_LOAD, &mut a)
    };
    let mut log = if opts.log_level > 0 {
        vec![0u8; opts.log_size.max(4096)]
    } else {
        vec![]
    };
    let first = attempt(opts.log_level, &mut log);
    let (errno, log) = match first {
        Ok(fd) => return Ok((fd, cstr(&log))),
        Err(e) if opts.log_level > 0 => (e, cstr(&log)),
        Err(_) => {
            let mut log = vec![0u8; opts.log_size.max(4096)];
            match attempt(1, &mut log) {
                // Loads with a log but not without: keep it, odd as it is.
                Ok(fd) => return Ok((fd, cstr(&log))),
                Err(e) => (e, cstr(&log)),
            }
        }
    };
    let (message, insn) = parse_verifier_log(&log);
    let func = insn.and_then(|i| image.func_at(i)).map(|f| f.name.clone());
    let tag = insn.and_then(|i| image.tag_at(i));
    Err(Error::Verifier(Box::new(VerifierError {
        program: name.to_string(),
        errno,
        log,
        message,
        insn,
        func,
        tag,
    })))
}

impl Loaded {
    /// Create the maps and load every program of `m`.
    pub fn load(m: &Module, opts: &LoadOptions) -> Result<Loaded, Error> {
        m.validate()?;
        let ncpus = sys::possible_cpus().map_err(|e| Error::sys("reading possible CPUs", e))?;
        let mut mb = btf::module_btf(m, None);
        // Link everything first: line info adds strings to the BTF.
        let mut linked = Vec::with_capacity(m.programs().len());
        for i in 0..m.programs().len() {
            let image = m.link(ProgId(i as u32))?;
            let mut li = vec![];
            if !m.sources().is_empty() {
                let funcs: Vec<(usize, usize)> =
                    image.funcs.iter().map(|f| (f.start, f.len)).collect();
                for (at, file, text, lc) in
                    btf::line_records(&mut mb.builder, m, &funcs, &image.insns, &image.tags)
                {
                    for v in [at as u32, file, text, lc] {
                        li.extend_from_slice(&v.to_ne_bytes());
                    }
                }
            }
            linked.push((image, li));
        }
        let btf_fd = load_btf(&mb.builder.finish(), opts.log_size)?;
        let maps = create_maps(m.maps(), ncpus)?;
        let mut programs = Vec::with_capacity(m.programs().len());
        for (p, (mut image, line_info)) in m.programs().iter().zip(linked) {
            for r in &image.map_relocs {
                let fd = maps[r.map.0 as usize].fd.as_raw_fd();
                let ins = &mut image.insns[r.insn];
                ins.src = if r.value {
                    op::PSEUDO_MAP_VALUE
                } else {
                    op::PSEUDO_MAP_FD
                };
                ins.imm = fd;
            }
            let mut func_info = Vec::with_capacity(image.funcs.len() * 8);
            for f in &image.funcs {
                func_info.extend_from_slice(&(f.start as u32).to_ne_bytes());
                func_info.extend_from_slice(&mb.funcs[&f.id].to_ne_bytes());
            }
            let bytes = crate::insn::encode_all(&image.insns);
            let req = ProgLoad {
                name: &p.name,
                kind: &p.kind,
                license: &m.license,
                image: &image,
                insns: &bytes,
                func_info: &func_info,
                line_info: &line_info,
                btf_fd: &btf_fd,
            };
            let (fd, log) = load_program(&req, opts)?;
            let id = sys::prog_info(&fd).map(|i| i.0).unwrap_or(0);
            programs.push(Program {
                name: p.name.clone(),
                kind: p.kind.clone(),
                fd,
                image,
                id,
                log,
            });
        }
        Ok(Loaded {
            maps,
            programs,
            _btf: btf_fd,
        })
    }

    pub fn map(&self, id: MapId) -> &Map {
        &self.maps[id.0 as usize]
    }
    pub fn map_by_name(&self, name: &str) -> Option<&Map> {
        self.maps.iter().find(|m| m.def.name == name)
    }
    pub fn maps(&self) -> &[Map] {
        &self.maps
    }
    pub fn program(&self, id: ProgId) -> &Program {
        &self.programs[id.0 as usize]
    }
    pub fn program_by_name(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }
    /// Ids of everything loaded: (program ids, map ids), for leak checks.
    pub fn kernel_ids(&self) -> (Vec<u32>, Vec<u32>) {
        (
            self.programs.iter().map(|p| p.id).collect(),
            self.maps.iter().map(|m| m.id).collect(),
        )
    }
}
