//! One ELF file (executable, DSO or separate debug file), read with `object`.
//!
//! [`ElfFile::open`] maps the file and keeps what later passes need without
//! re-parsing: the GNU build-id, `.gnu_debuglink`, `.gnu_debugaltlink`, the
//! `PT_LOAD` segments and whether `.debug_info` is present. Section data and
//! symbols are extracted on demand from the mapping.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SectionKind, SegmentFlags};

use super::error::{DebugError, Result};

/// The bytes of a file: mapped when possible, read otherwise.
enum FileData {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
    /// Data built into stapxx-rs (the shipped LuaJIT layouts).
    Static(&'static [u8]),
}

impl Deref for FileData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileData::Mapped(m) => m,
            FileData::Read(v) => v,
            FileData::Static(b) => b,
        }
    }
}

/// The `e_type` of an ELF file, as far as we care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfType {
    /// `ET_EXEC`: linked at a fixed address, load bias 0.
    Executable,
    /// `ET_DYN`: a DSO or a PIE executable, loaded at a bias.
    Shared,
    /// Anything else (`ET_REL`, core files ...).
    Other,
}

/// One `PT_LOAD` program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    /// `p_vaddr`: link-time address of the segment's first byte.
    pub vaddr: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_offset`: file offset of the segment's first byte.
    pub offset: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_flags` (`PF_X` = 1, `PF_W` = 2, `PF_R` = 4).
    pub flags: u32,
}

impl LoadSegment {
    /// Whether the segment is executable (`PF_X`).
    pub fn is_executable(&self) -> bool {
        self.flags & 1 != 0
    }
}

/// The `.gnu_debuglink` section: the separate debug file's name and the CRC32 of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugLink {
    pub name: String,
    pub crc: u32,
}

/// The `.gnu_debugaltlink` section (dwz supplementary file): path and build-id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AltLink {
    pub path: PathBuf,
    pub build_id: Vec<u8>,
}

/// A mapped ELF file and the facts we keep about it.
pub struct ElfFile {
    path: PathBuf,
    /// What messages call the file, when not `path`: its path in the
    /// target's file system where `path` is a handle on it
    /// (`/proc/PID/root/...`, `/proc/PID/map_files/...`).
    name: Option<PathBuf>,
    data: Arc<FileData>,
    is_64: bool,
    little_endian: bool,
    elf_type: ElfType,
    build_id: Option<Vec<u8>>,
    debuglink: Option<DebugLink>,
    altlink: Option<AltLink>,
    segments: Vec<LoadSegment>,
    /// `e_entry`: where the program starts (0 for most libraries).
    entry: u64,
    has_debug_info: bool,
    has_symtab: bool,
}

impl std::fmt::Debug for ElfFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElfFile")
            .field("path", &self.path)
            .field("elf_type", &self.elf_type)
            .field("build_id", &self.build_id_hex())
            .field("debuglink", &self.debuglink)
            .field("has_debug_info", &self.has_debug_info)
            .finish()
    }
}

/// Lower-case hex of a byte string (build-ids).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// What a file that is not a regular file is, for the error.
fn not_regular(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory, not a regular file"
    } else if t.is_fifo() {
        "a FIFO, not a regular file"
    } else if t.is_char_device() || t.is_block_device() {
        "a device, not a regular file"
    } else if t.is_socket() {
        "a socket, not a regular file"
    } else {
        "not a regular file"
    }
}

pub(crate) fn bad(path: &Path, error: impl std::fmt::Display) -> DebugError {
    DebugError::BadElf {
        path: path.to_path_buf(),
        error: error.to_string(),
    }
}

impl ElfFile {
    /// Opens and maps `path` (a host path; prefix `/proc/PID/root` for a
    /// process in another mount namespace) and reads its headers.
    pub fn open(path: &Path) -> Result<ElfFile> {
        let io = |e: std::io::Error| DebugError::Io {
            path: path.to_path_buf(),
            error: e.to_string(),
        };
        // Only regular files: a FIFO or a device named as a module (by
        // `@cast(..., "/path")`, `process("/path")`, ...) would block the
        // open or never end. O_NONBLOCK keeps a FIFO swapped in after the
        // check from blocking the open; the type is checked again on the
        // file actually opened.
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(bad(path, not_regular(&meta)));
        }
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
                .map_err(io)?
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(bad(path, not_regular(&meta)));
        }
        // SAFETY: the mapping is read-only and private to us. Like every
        // debugger we accept that a file truncated while mapped may fault.
        let data = match unsafe { memmap2::Mmap::map(&file) } {
            Ok(m) => FileData::Mapped(m),
            Err(_) => FileData::Read(std::fs::read(path).map_err(io)?),
        };
        Self::parse(path, Arc::new(data))
    }

    /// An ELF file built into stapxx-rs, called `name` in messages.
    pub fn from_static(name: &Path, bytes: &'static [u8]) -> Result<ElfFile> {
        Self::parse(name, Arc::new(FileData::Static(bytes)))
    }

    fn parse(path: &Path, data: Arc<FileData>) -> Result<ElfFile> {
        let obj = object::File::parse(&**data).map_err(|e| bad(path, e))?;
        let elf_type = match obj.kind() {
            object::ObjectKind::Executable => ElfType::Executable,
            object::ObjectKind::Dynamic => ElfType::Shared,
            _ => ElfType::Other,
        };
        let build_id = obj
            .build_id()
            .map_err(|e| bad(path, format!("build-id note: {e}")))?
            .map(<[u8]>::to_vec);
        let debuglink = obj
            .gnu_debuglink()
            .map_err(|e| bad(path, format!(".gnu_debuglink: {e}")))?
            .map(|(name, crc)| DebugLink {
                name: String::from_utf8_lossy(name).into_owned(),
                crc,
            });
        let altlink = obj
            .gnu_debugaltlink()
            .map_err(|e| bad(path, format!(".gnu_debugaltlink: {e}")))?
            .map(|(name, id)| AltLink {
                path: PathBuf::from(String::from_utf8_lossy(name).into_owned()),
                build_id: id.to_vec(),
            });
        let segments = obj
            .segments()
            .map(|s| {
                let (offset, filesz) = s.file_range();
                let flags = match s.flags() {
                    SegmentFlags::Elf { p_flags } => p_flags,
                    _ => 0,
                };
                LoadSegment {
                    vaddr: s.address(),
                    memsz: s.size(),
                    offset,
                    filesz,
                    flags,
                }
            })
            .collect();
        let has_debug_info = obj
            .section_by_name(".debug_info")
            .is_some_and(|s| s.kind() != SectionKind::UninitializedData && s.size() > 0);
        let has_symtab = obj.symbols().next().is_some();
        Ok(ElfFile {
            path: path.to_path_buf(),
            name: None,
            is_64: obj.is_64(),
            little_endian: obj.is_little_endian(),
            elf_type,
            build_id,
            debuglink,
            altlink,
            segments,
            entry: obj.entry(),
            has_debug_info,
            has_symtab,
            data,
        })
    }

    /// The host path this file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's name for messages: [`ElfFile::named`]'s, else its path.
    pub fn name(&self) -> &Path {
        self.name.as_deref().unwrap_or(&self.path)
    }

    /// The same file, called `name` in messages (the path the target knows
    /// it by; [`ElfFile::path`] stays the handle it is read through).
    pub fn named(mut self, name: &Path) -> ElfFile {
        self.name = (name != self.path).then(|| name.to_path_buf());
        self
    }
    /// ELFCLASS64?
    pub fn is_64(&self) -> bool {
        self.is_64
    }
    /// ELFDATA2LSB?
    pub fn is_little_endian(&self) -> bool {
        self.little_endian
    }
    /// Size of a pointer on the target, from the ELF class.
    pub fn pointer_size(&self) -> u8 {
        if self.is_64 {
            8
        } else {
            4
        }
    }
    pub fn elf_type(&self) -> ElfType {
        self.elf_type
    }
    /// The GNU build-id note's bytes.
    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }
    /// The build-id in lower-case hex.
    pub fn build_id_hex(&self) -> Option<String> {
        self.build_id.as_deref().map(hex)
    }
    pub fn debuglink(&self) -> Option<&DebugLink> {
        self.debuglink.as_ref()
    }
    pub fn altlink(&self) -> Option<&AltLink> {
        self.altlink.as_ref()
    }
    /// The `PT_LOAD` segments in file order.
    /// The link-time address the program starts at (`e_entry`).
    pub fn entry(&self) -> u64 {
        self.entry
    }

    pub fn load_segments(&self) -> &[LoadSegment] {
        &self.segments
    }
    /// Whether this file carries `.debug_info` itself.
    pub fn has_debug_info(&self) -> bool {
        self.has_debug_info
    }
    /// Whether this file has a (non-empty) `.symtab`.
    pub fn has_symtab(&self) -> bool {
        self.has_symtab
    }

    pub(crate) fn object(&self) -> Result<object::File<'_>> {
        object::File::parse(&**self.data).map_err(|e| bad(&self.path, e))
    }

    /// The (decompressed) contents of a section, `None` if absent or `NOBITS`.
    pub(crate) fn section_data(&self, name: &str) -> Result<Option<Arc<[u8]>>> {
        let obj = self.object()?;
        let Some(section) = obj.section_by_name(name) else {
            return Ok(None);
        };
        if section.kind() == SectionKind::UninitializedData {
            return Ok(None);
        }
        let data: Cow<'_, [u8]> = section
            .uncompressed_data()
            .map_err(|e| bad(&self.path, format!("section {name}: {e}")))?;
        Ok(Some(Arc::from(data.as_ref())))
    }

    /// The `len` bytes the file holds for link-time address `vaddr`
    /// (`None` when they are not all in one segment's file image).
    pub fn bytes_at(&self, vaddr: u64, len: u64) -> Option<&[u8]> {
        let seg = self.segments.iter().find(|s| {
            vaddr >= s.vaddr
                && vaddr
                    .checked_add(len)
                    .is_some_and(|e| e <= s.vaddr + s.filesz)
        })?;
        let start = usize::try_from(seg.offset + (vaddr - seg.vaddr)).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.data.get(start..end)
    }

    /// Whether the file's bytes contain `needle` anywhere.
    pub fn contains(&self, needle: &[u8]) -> bool {
        memchr::memmem::find(&self.data, needle).is_some()
    }

    /// The CRC32 (as used by `.gnu_debuglink`) of the whole file.
    pub fn crc32(&self) -> u32 {
        crc32(&self.data)
    }

    /// Defined symbols of the given table (`.symtab` when `dynamic` is false,
    /// `.dynsym` otherwise): functions (`STT_FUNC`, `STT_GNU_IFUNC`) and data
    /// objects (`STT_OBJECT`, `STT_COMMON`).
    pub(crate) fn raw_symbols(&self, dynamic: bool) -> Result<Vec<super::symbols::Symbol>> {
        use super::symbols::{SymKind, Symbol};
        let obj = self.object()?;
        let iter = if dynamic {
            obj.dynamic_symbols()
        } else {
            obj.symbols()
        };
        let mut out = Vec::new();
        for sym in iter {
            if sym.is_undefined() || sym.address() == 0 {
                continue;
            }
            let kind = match sym.kind() {
                object::SymbolKind::Text => SymKind::Function,
                object::SymbolKind::Data => SymKind::Object,
                _ => continue,
            };
            let Ok(name) = sym.name() else { continue };
            if name.is_empty() {
                continue;
            }
            out.push(Symbol {
                address: sym.address(),
                size: sym.size(),
                name: name.to_string(),
                kind,
                global: sym.is_global(),
                weak: sym.is_weak(),
            });
        }
        Ok(out)
    }
}

/// CRC-32 (IEEE, reflected, as zlib and `.gnu_debuglink` use it).
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0xab, 0x01, 0xff]), "ab01ff");
    }
}
