//! SDT (USDT) markers: the `.note.stapsdt` notes that `<sys/sdt.h>` emits,
//! what `process("P").mark("name")` probes are placed on.
//!
//! Each note (owner `stapsdt`, type 3) holds three addresses — the marker's
//! `nop`, the link-time address of `_.stapsdt.base`, the semaphore (0 when
//! none) — then the provider, the name and the argument specs, each
//! NUL-terminated. A [`Marker`] adds what a uprobe needs: the file offset
//! of the `nop` and of the semaphore (the kernel's `ref_ctr_offset`), and
//! the arguments decoded ([`Arg`]).

mod operand;
#[cfg(test)]
mod tests;

use std::fmt;

pub use operand::{parse_arg, reg, Arg, Operand, Reg, SymbolLookup};

use super::elf::ElfFile;
use super::error::{DebugError, Result};
use super::symbols::{vaddr_to_file_offset, SymbolTable};

/// The note type sys/sdt.h gives its notes (version 3 of the format).
pub const NT_STAPSDT: u32 = 3;

/// One `.note.stapsdt` note as stored (addresses not adjusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The marker's address.
    pub pc: u64,
    /// Where the note says `_.stapsdt.base` is.
    pub base: u64,
    /// The semaphore's address, 0 when the marker has none.
    pub semaphore: u64,
    pub provider: String,
    pub name: String,
    /// The argument specs, space-separated (empty for no arguments).
    pub args: String,
}

/// A marker's semaphore: a 16-bit counter the program tests before firing
/// the marker, raised by tracers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Semaphore {
    /// Link-time address (prelink-adjusted).
    pub address: u64,
    /// File offset: what the kernel's uprobe `ref_ctr_offset` takes.
    pub file_offset: u64,
}

/// An argument that could not be decoded; names the marker and the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    pub provider: String,
    pub name: String,
    /// 0-based (`$arg1` is index 0).
    pub index: usize,
    /// The spec as written, e.g. `8f@%xmm0`.
    pub spec: String,
    pub reason: String,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "argument {} ('{}') of SDT marker {}:{}: {}",
            self.index + 1,
            self.spec,
            self.provider,
            self.name,
            self.reason
        )
    }
}

impl std::error::Error for ArgError {}

/// One SDT marker of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub provider: String,
    pub name: String,
    /// Link-time address of the `nop` (prelink-adjusted).
    pub pc: u64,
    /// File offset of `pc`: where the uprobe goes.
    pub file_offset: u64,
    pub semaphore: Option<Semaphore>,
    /// One entry per spec, in order; a spec we cannot decode is an error
    /// value, so the marker stays usable when its other arguments are.
    pub args: Vec<std::result::Result<Arg, ArgError>>,
    /// The specs as the note has them (`-4@%edi 8@-24(%rbp)`).
    pub arg_text: String,
}

impl Marker {
    /// Argument `index` (0-based): an error when it cannot be decoded or
    /// the marker has fewer arguments.
    pub fn arg(&self, index: usize) -> std::result::Result<&Arg, ArgError> {
        match self.args.get(index) {
            Some(Ok(a)) => Ok(a),
            Some(Err(e)) => Err(e.clone()),
            None => Err(ArgError {
                provider: self.provider.clone(),
                name: self.name.clone(),
                index,
                spec: String::new(),
                reason: format!("the marker has {} arguments", self.args.len()),
            }),
        }
    }
}

/// Decodes the specs of one marker; see [`parse_arg`].
pub fn parse_args(
    provider: &str,
    name: &str,
    text: &str,
    lookup: SymbolLookup<'_>,
) -> Vec<std::result::Result<Arg, ArgError>> {
    text.split_whitespace()
        .enumerate()
        .map(|(index, spec)| {
            parse_arg(spec, lookup).map_err(|reason| ArgError {
                provider: provider.to_string(),
                name: name.to_string(),
                index,
                spec: spec.to_string(),
                reason,
            })
        })
        .collect()
}

/// The stapsdt notes of a note section's bytes (other notes are skipped).
/// `addr_size` is 4 or 8 (the ELF class).
pub fn parse_notes(
    data: &[u8],
    little_endian: bool,
    addr_size: usize,
) -> std::result::Result<Vec<Note>, String> {
    let mut r = Reader {
        data,
        pos: 0,
        little_endian,
    };
    let mut out = Vec::new();
    while r.pos + 12 <= data.len() {
        let namesz = r.uint(4)? as usize;
        let descsz = r.uint(4)? as usize;
        let ntype = r.uint(4)? as u32;
        let owner = r.bytes(namesz)?;
        r.align4();
        let desc = r.bytes(descsz)?;
        r.align4();
        if owner != b"stapsdt\0" || ntype != NT_STAPSDT {
            continue;
        }
        out.push(parse_desc(desc, little_endian, addr_size)?);
    }
    Ok(out)
}

fn parse_desc(
    desc: &[u8],
    little_endian: bool,
    addr_size: usize,
) -> std::result::Result<Note, String> {
    let mut r = Reader {
        data: desc,
        pos: 0,
        little_endian,
    };
    let pc = r.uint(addr_size)?;
    let base = r.uint(addr_size)?;
    let semaphore = r.uint(addr_size)?;
    let provider = r.cstr()?;
    let name = r.cstr()?;
    // Notes of markers without arguments may end right after the name.
    let args = if r.pos < desc.len() {
        r.cstr()?
    } else {
        String::new()
    };
    Ok(Note {
        pc,
        base,
        semaphore,
        provider,
        name,
        args,
    })
}

/// A bounds-checked cursor: a damaged note is an error, not a panic.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    little_endian: bool,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("note truncated at byte {}", self.pos))?;
        let b = &self.data[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn uint(&mut self, n: usize) -> std::result::Result<u64, String> {
        let b = self.bytes(n)?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = if self.little_endian {
                b[n - 1 - i]
            } else {
                b[i]
            };
            v = (v << 8) | u64::from(byte);
        }
        Ok(v)
    }

    fn align4(&mut self) {
        self.pos = (self.pos + 3) & !3;
    }

    fn cstr(&mut self) -> std::result::Result<String, String> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("unterminated string at byte {}", self.pos))?;
        self.pos += len + 1;
        Ok(String::from_utf8_lossy(&rest[..len]).into_owned())
    }
}

/// The markers of `elf`. `symbols` is asked (once, and only if an argument
/// is `%rip`-relative or absolute by symbol) for the table to resolve it.
pub(crate) fn markers<'a>(
    elf: &ElfFile,
    symbols: impl FnOnce() -> Result<&'a SymbolTable>,
) -> Result<Vec<Marker>> {
    use object::{Object, ObjectSection};
    let bad = |error: String| DebugError::BadElf {
        path: elf.name().to_path_buf(),
        error,
    };
    let Some(data) = elf.section_data(".note.stapsdt")? else {
        return Ok(Vec::new());
    };
    let addr_size = usize::from(elf.pointer_size());
    let notes = parse_notes(&data, elf.is_little_endian(), addr_size)
        .map_err(|e| bad(format!(".note.stapsdt: {e}")))?;
    let obj = elf.object()?;
    // The specs are assembler operands: only x86-64's are decoded.
    let x86_64 = obj.architecture() == object::Architecture::X86_64;
    // sys/sdt.h's rule for prelinked files: the section moved with the code,
    // the note's copy of its address did not; the difference applies to the
    // marker and semaphore addresses.
    let base_section = obj.section_by_name(".stapsdt.base").map(|s| s.address());
    let segments = elf.load_segments();

    let table = std::cell::OnceCell::new();
    let symbols = std::cell::Cell::new(Some(symbols));
    let lookup = |name: &str| -> Option<u64> {
        let t = table.get_or_init(|| symbols.take().and_then(|f| f().ok()));
        let t: &SymbolTable = t.as_ref()?;
        t.object(name)
            .or_else(|| t.function(name))
            .map(|s| s.address)
    };

    let mut out = Vec::with_capacity(notes.len());
    for n in notes {
        let delta = base_section.map_or(0, |b| b.wrapping_sub(n.base));
        let what = format!("SDT marker {}:{}", n.provider, n.name);
        let pc = n.pc.wrapping_add(delta);
        let file_offset = vaddr_to_file_offset(segments, pc)
            .ok_or_else(|| bad(format!("{what} at {pc:#x} is in no PT_LOAD segment")))?;
        let semaphore = match n.semaphore {
            0 => None,
            s => {
                let address = s.wrapping_add(delta);
                let file_offset = vaddr_to_file_offset(segments, address).ok_or_else(|| {
                    bad(format!(
                        "{what}: semaphore at {address:#x} is in no file-backed PT_LOAD segment"
                    ))
                })?;
                Some(Semaphore {
                    address,
                    file_offset,
                })
            }
        };
        let args = if x86_64 {
            parse_args(&n.provider, &n.name, &n.args, &lookup)
        } else {
            undecoded_args(
                &n,
                &format!("{:?} operands are not decoded", obj.architecture()),
            )
        };
        out.push(Marker {
            provider: n.provider,
            name: n.name,
            pc,
            file_offset,
            semaphore,
            args,
            arg_text: n.args,
        });
    }
    Ok(out)
}

/// Every spec of `n` as an error saying `why`.
fn undecoded_args(n: &Note, why: &str) -> Vec<std::result::Result<Arg, ArgError>> {
    n.args
        .split_whitespace()
        .enumerate()
        .map(|(index, spec)| {
            Err(ArgError {
                provider: n.provider.clone(),
                name: n.name.clone(),
                index,
                spec: spec.to_string(),
                reason: why.to_string(),
            })
        })
        .collect()
}
