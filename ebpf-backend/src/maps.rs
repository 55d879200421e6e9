//! Map definitions (what the program declares); the live maps are
//! [`crate::Map`] handles of a [`crate::Loaded`] module.

/// A BPF map type (`enum bpf_map_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapKind {
    Hash,
    Array,
    PercpuHash,
    PercpuArray,
    StackTrace,
    LruHash,
    LruPercpuHash,
    PerfEventArray,
    /// A BPF ring buffer: `key_size` and `value_size` must be 0 and
    /// `max_entries` a power-of-two multiple of the page size (bytes).
    RingBuf,
    /// Programs for `bpf_tail_call`: 4-byte keys, program fds as values.
    ProgArray,
    /// Any other `bpf_map_type` number.
    Other(u32),
}

impl MapKind {
    /// The kernel's `bpf_map_type` number.
    pub fn type_id(self) -> u32 {
        match self {
            MapKind::Hash => 1,
            MapKind::Array => 2,
            MapKind::ProgArray => 3,
            MapKind::PerfEventArray => 4,
            MapKind::PercpuHash => 5,
            MapKind::PercpuArray => 6,
            MapKind::StackTrace => 7,
            MapKind::LruHash => 9,
            MapKind::LruPercpuHash => 10,
            MapKind::RingBuf => 27,
            MapKind::Other(n) => n,
        }
    }
    /// Whether values are per CPU (userspace sees one value per possible CPU).
    pub fn is_percpu(self) -> bool {
        matches!(
            self,
            MapKind::PercpuHash | MapKind::PercpuArray | MapKind::LruPercpuHash
        )
    }
}

/// `map_flags` bits.
pub mod flags {
    /// Do not preallocate hash map elements.
    pub const NO_PREALLOC: u32 = 1 << 0;
    /// The program may only read the map.
    pub const RDONLY_PROG: u32 = 1 << 7;
    /// The program may only write the map.
    pub const WRONLY_PROG: u32 = 1 << 8;
    /// The map may be mmap()ed (arrays).
    pub const MMAPABLE: u32 = 1 << 10;
}

/// A map the program uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    /// The name: a C identifier. The kernel keeps the first 15 bytes (use the
    /// `stx_` prefix so our objects are recognisable in `bpftool map`).
    pub name: String,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    /// Initial contents of entry 0 of a single-entry array map (global data:
    /// constants, format strings). With [`MapDef::frozen`] the map is frozen after
    /// the write, so the verifier treats reads from it as constants. Such a map
    /// is emitted to ELF as a `.rodata.NAME` / `.data.NAME` section.
    pub data: Option<Vec<u8>>,
    /// Freeze the map after writing `data` (read-only for userspace too).
    pub frozen: bool,
}

impl MapDef {
    /// A map with no flags and no initial data.
    pub fn new(
        name: impl Into<String>,
        kind: MapKind,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> MapDef {
        MapDef {
            name: name.into(),
            kind,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            data: None,
            frozen: false,
        }
    }

    /// A ring buffer of `bytes` bytes (a power-of-two multiple of the page size).
    pub fn ringbuf(name: impl Into<String>, bytes: u32) -> MapDef {
        MapDef::new(name, MapKind::RingBuf, 0, 0, bytes)
    }

    /// A single-entry array holding `bytes`; read only for programs and frozen
    /// when `readonly` (the verifier then knows the contents, as `bpf_snprintf`
    /// needs for its format string).
    pub fn global_data(name: impl Into<String>, bytes: Vec<u8>, readonly: bool) -> MapDef {
        let mut m = MapDef::new(name, MapKind::Array, 4, bytes.len().max(1) as u32, 1);
        if readonly {
            m.flags = flags::RDONLY_PROG;
        }
        m.frozen = readonly;
        m.data = Some(bytes);
        m
    }
}
