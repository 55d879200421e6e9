//! PLT stubs: `process("P").plt("name")` and `.plt("*")` probe the stub
//! a module calls an imported function through.
//!
//! A stub is found by what it does rather than by its position: on x86-64
//! every stub holds one `jmp *disp32(%rip)` through the GOT slot of its
//! function, and the dynamic relocation of that slot names the function
//! (`R_X86_64_JUMP_SLOT` from `.rela.plt` for `.plt`/`.plt.sec`,
//! `R_X86_64_GLOB_DAT` for `.plt.got`). Decoding the jump covers the
//! layouts linkers emit: the classic lazy `.plt` (16-byte stubs after the
//! PLT0 header), the IBT layout where calls go to `.plt.sec` (`endbr64;
//! bnd jmp`) and `.plt` keeps only the lazy-binding halves, and `.plt.got`
//! for functions whose address is also taken. A stub whose jump matches no
//! relocation (PLT0, the lazy halves) is no function's stub.

use std::collections::HashMap;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, ObjectSymbolTable as _};

use super::error::{DebugError, Result};
use super::layout::nearest;
use super::symbols::{glob_match, vaddr_to_file_offset};
use super::Module;

/// The stub of one imported function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PltEntry {
    /// The function's name in `.dynsym` (no version).
    pub name: String,
    /// Link-time address of the stub (add the load bias at run time).
    pub address: u64,
    /// Where the stub is in the file (for a uprobe).
    pub file_offset: u64,
    /// `.plt`, `.plt.sec` or `.plt.got`.
    pub section: String,
}

/// The sections that hold stubs, in the order they are searched.
const STUB_SECTIONS: [&str; 3] = [".plt", ".plt.sec", ".plt.got"];

impl Module {
    /// Every PLT stub of the module, by address. Only x86-64 stubs are
    /// decoded; other machines get an error saying so.
    pub fn plt_entries(&self) -> Result<Vec<PltEntry>> {
        let elf = self.elf();
        let obj = elf.object()?;
        if obj.architecture() != object::Architecture::X86_64 {
            return Err(DebugError::NotFound {
                what: format!(
                    "PLT stubs (only x86-64 stubs are decoded; this is {:?})",
                    obj.architecture()
                ),
                file: elf.name().to_path_buf(),
            });
        }
        let slots = got_slots(&obj);
        let mut out = Vec::new();
        for name in STUB_SECTIONS {
            let Some(section) = obj.section_by_name(name) else {
                continue;
            };
            let data = section.data().map_err(|e| DebugError::BadElf {
                path: elf.name().to_path_buf(),
                error: format!("section {name}: {e}"),
            })?;
            let step = match section_entsize(&obj, name) {
                Some(n) if n > 0 => n,
                _ => 16,
            };
            for (i, stub) in data.chunks(step as usize).enumerate() {
                let address = section.address() + i as u64 * step;
                let Some(slot) = jump_slot(stub, address) else {
                    continue;
                };
                let Some(func) = slots.get(&slot) else {
                    continue;
                };
                let Some(file_offset) = vaddr_to_file_offset(elf.load_segments(), address) else {
                    continue;
                };
                out.push(PltEntry {
                    name: func.clone(),
                    address,
                    file_offset,
                    section: name.to_string(),
                });
            }
        }
        out.sort_by_key(|e| e.address);
        Ok(out)
    }

    /// The stubs whose function matches a stap pattern (`puts`, `*`,
    /// `str*`); none is an error naming the nearest imported names.
    pub fn plt_matching(&self, pattern: &str) -> Result<Vec<PltEntry>> {
        let all = self.plt_entries()?;
        let (hit, miss): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|e| glob_match(pattern, &e.name));
        if hit.is_empty() {
            let near = nearest(pattern, miss.iter().map(|e| e.name.as_str()), 3);
            let mut what = format!("a PLT stub of '{pattern}'");
            if !near.is_empty() {
                what.push_str(&format!(" (nearest: {})", near.join(", ")));
            }
            return Err(DebugError::NotFound {
                what,
                file: self.elf().name().to_path_buf(),
            });
        }
        Ok(hit)
    }
}

/// GOT slot address -> imported function, from the dynamic relocations
/// that fill a slot with a function's address.
fn got_slots(obj: &object::File<'_>) -> HashMap<u64, String> {
    const R_X86_64_GLOB_DAT: u32 = 6;
    const R_X86_64_JUMP_SLOT: u32 = 7;
    let mut out = HashMap::new();
    let (Some(relocs), Some(dynsym)) = (obj.dynamic_relocations(), obj.dynamic_symbol_table())
    else {
        return out;
    };
    for (slot, r) in relocs {
        let object::RelocationFlags::Elf { r_type } = r.flags() else {
            continue;
        };
        if r_type != R_X86_64_JUMP_SLOT && r_type != R_X86_64_GLOB_DAT {
            continue;
        }
        let object::RelocationTarget::Symbol(index) = r.target() else {
            continue;
        };
        let Ok(sym) = dynsym.symbol_by_index(index) else {
            continue;
        };
        // GLOB_DAT also fills slots of data objects, which have no stub.
        if r_type == R_X86_64_GLOB_DAT
            && matches!(
                sym.kind(),
                object::SymbolKind::Data | object::SymbolKind::Tls
            )
        {
            continue;
        }
        if let Ok(name) = sym.name() {
            if !name.is_empty() {
                out.insert(slot, name.to_string());
            }
        }
    }
    out
}

/// `sh_entsize` of a section (the stub size).
fn section_entsize(obj: &object::File<'_>, name: &str) -> Option<u64> {
    use object::read::elf::SectionHeader as _;
    match obj {
        object::File::Elf64(f) => {
            let e = f.endian();
            let s = f.section_by_name(name)?;
            Some(s.elf_section_header().sh_entsize(e))
        }
        object::File::Elf32(f) => {
            let e = f.endian();
            let s = f.section_by_name(name)?;
            Some(u64::from(s.elf_section_header().sh_entsize(e)))
        }
        _ => None,
    }
}

/// The GOT slot a stub at `address` jumps through: the target of its
/// first `jmp *disp32(%rip)` (`ff 25`, possibly after `endbr64` and a
/// `bnd` prefix).
fn jump_slot(stub: &[u8], address: u64) -> Option<u64> {
    let k = stub.windows(2).position(|w| w == [0xff, 0x25])?;
    let disp = stub.get(k + 2..k + 6)?;
    let disp = i32::from_le_bytes(disp.try_into().ok()?);
    let next = address + k as u64 + 6;
    Some(next.wrapping_add_signed(i64::from(disp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_jumps() {
        // Classic: jmp *0x2fe2(%rip) at 0x1030 -> slot 0x4018.
        let classic = [
            0xff, 0x25, 0xe2, 0x2f, 0, 0, 0x68, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0,
        ];
        assert_eq!(jump_slot(&classic, 0x1030), Some(0x1030 + 6 + 0x2fe2));
        // IBT .plt.sec: endbr64; bnd jmp *0x2f86(%rip).
        let ibt = [
            0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xff, 0x25, 0x86, 0x2f, 0, 0, 0x0f, 0x1f, 0x44, 0, 0,
        ];
        assert_eq!(jump_slot(&ibt, 0x1070), Some(0x1070 + 11 + 0x2f86));
        // Lazy half of the IBT .plt: endbr64; push; bnd jmp rel32 (no GOT jump).
        let lazy = [
            0xf3, 0x0f, 0x1e, 0xfa, 0x68, 0, 0, 0, 0, 0xf2, 0xe9, 0xe1, 0xff, 0xff, 0xff, 0x90,
        ];
        assert_eq!(jump_slot(&lazy, 0x1030), None);
        // Truncated.
        assert_eq!(jump_slot(&[0xff, 0x25, 1], 0), None);
    }
}
