//! The few x86-64 machine-code facts call sites need: the target of the
//! `call rel32` that ends at a return address, and every `call rel32` of a
//! function whose DWARF describes no call (gcc at -O0 emits no
//! `DW_TAG_call_site`).
//!
//! No disassembler crate: only one instruction form matters (`e8 rel32`,
//! the direct near call compilers emit for calls within a module and to
//! PLT stubs), the answer is checked against known function entries, and a
//! full decoder would cost the build far more than these lines.

use object::{Object, ObjectSection};

use crate::debuginfo::elf::ElfFile;

/// The opcode of `call rel32`.
const CALL_REL32: u8 = 0xe8;
/// Its length: opcode and 32-bit displacement.
const CALL_LEN: u64 = 5;

/// The bytes of the module at link-time addresses `[begin, end)`, from the
/// section that holds them.
pub(super) fn bytes(file: &ElfFile, begin: u64, end: u64) -> Option<Vec<u8>> {
    let obj = file.object().ok()?;
    if obj.architecture() != object::Architecture::X86_64 {
        return None;
    }
    let size = end.checked_sub(begin)?;
    obj.sections()
        .find_map(|s| s.data_range(begin, size).ok().flatten())
        .map(<[u8]>::to_vec)
}

/// Whether `file` is x86-64 code, the only machine decoded here.
pub(super) fn is_x86_64(file: &ElfFile) -> bool {
    file.object()
        .is_ok_and(|o| o.architecture() == object::Architecture::X86_64)
}

/// The target of the `call rel32` whose last byte is just before
/// `return_pc`, if the five bytes there are one.
pub(super) fn call_target(file: &ElfFile, return_pc: u64) -> Option<u64> {
    let start = return_pc.checked_sub(CALL_LEN)?;
    let b = bytes(file, start, return_pc)?;
    (b[0] == CALL_REL32).then(|| rel32_target(&b[1..5], return_pc))
}

fn rel32_target(disp: &[u8], return_pc: u64) -> u64 {
    let rel = i32::from_le_bytes([disp[0], disp[1], disp[2], disp[3]]);
    return_pc.wrapping_add_signed(i64::from(rel))
}

/// Every `call rel32` in `code` (starting at link-time address `base`)
/// whose target `known` accepts, as (return address, target).
///
/// The scan reads bytes, not decoded instructions: an `e8` byte inside
/// another instruction could pass for a call. Asking that the target be
/// the exact entry of a known function or PLT stub makes such a false hit
/// need four further bytes equal to that one displacement; a hit's five
/// bytes are then skipped so calls never overlap.
pub(super) fn scan_calls(base: u64, code: &[u8], known: &dyn Fn(u64) -> bool) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i + CALL_LEN as usize <= code.len() {
        if code[i] == CALL_REL32 {
            let ret = base + i as u64 + CALL_LEN;
            let target = rel32_target(&code[i + 1..i + 5], ret);
            if known(target) {
                out.push((ret, target));
                i += CALL_LEN as usize;
                continue;
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_calls_to_known_targets_only() {
        // mov %rdx,%rsi; call +0x10; call -0x20 (unknown); nop
        let code = [
            0x48, 0x89, 0xd6, 0xe8, 0x10, 0, 0, 0, 0xe8, 0xe0, 0xff, 0xff, 0xff, 0x90,
        ];
        let base = 0x1000;
        let known = |t: u64| t == 0x1000 + 8 + 0x10;
        assert_eq!(scan_calls(base, &code, &known), vec![(0x1008, 0x1018)]);
        let all = |_: u64| true;
        assert_eq!(
            scan_calls(base, &code, &all),
            vec![(0x1008, 0x1018), (0x100d, 0x100d - 0x20)]
        );
    }
}
