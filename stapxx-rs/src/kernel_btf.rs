//! Member offsets of the running kernel's structures, from its BTF
//! (`/sys/kernel/btf/vmlinux`), for the few builtins that read kernel
//! memory (`ppid()`: `current->real_parent->tgid`). Reading the offsets at
//! load time keeps the programs right on any kernel build, as CO-RE does.

use std::sync::OnceLock;

/// Where `ppid()` reads: offsets in `struct task_struct`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskOffsets {
    pub real_parent: u32,
    pub tgid: u32,
}

impl TaskOffsets {
    /// This kernel's offsets (read once), if its BTF is available.
    pub fn get() -> Option<TaskOffsets> {
        static CACHE: OnceLock<Option<TaskOffsets>> = OnceLock::new();
        *CACHE.get_or_init(|| {
            let btf = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
            TaskOffsets::from_btf(&btf)
        })
    }

    pub fn from_btf(btf: &[u8]) -> Option<TaskOffsets> {
        Some(TaskOffsets {
            real_parent: member_offset(btf, "task_struct", "real_parent")?,
            tgid: member_offset(btf, "task_struct", "tgid")?,
        })
    }
}

const KIND_STRUCT: u32 = 4;

/// The byte offset of `member` in the struct named `name` (a direct
/// member; BTF of the kernel lists `task_struct`'s fields directly).
pub fn member_offset(btf: &[u8], name: &str, member: &str) -> Option<u32> {
    let u32_at = |off: usize| -> Option<u32> {
        Some(u32::from_le_bytes(btf.get(off..off + 4)?.try_into().ok()?))
    };
    if btf.get(0..2)? != [0x9f, 0xeb] {
        return None; // not little-endian BTF
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let str_off = u32_at(16)? as usize;
    let types = hdr_len + type_off;
    let strings = hdr_len + str_off;
    let str_at = |off: u32| -> Option<&[u8]> {
        let s = btf.get(strings + off as usize..)?;
        Some(&s[..s.iter().position(|&b| b == 0)?])
    };
    let mut at = types;
    while at + 12 <= types + type_len {
        let name_off = u32_at(at)?;
        let info = u32_at(at + 4)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let kflag = info >> 31 == 1;
        let body = at + 12;
        if kind == KIND_STRUCT && str_at(name_off)? == name.as_bytes() {
            for i in 0..vlen {
                let m = body + i * 12;
                if str_at(u32_at(m)?)? == member.as_bytes() {
                    let off = u32_at(m + 8)?;
                    let bits = if kflag { off & 0xff_ffff } else { off };
                    return Some(bits / 8);
                }
            }
            return None;
        }
        // Skip the kind's trailing data.
        at = body
            + match kind {
                1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
                3 => 12,                      // ARRAY
                4 | 5 | 15 | 19 => vlen * 12, // STRUCT, UNION, DATASEC, ENUM64
                6 | 13 => vlen * 8,           // ENUM, FUNC_PROTO
                _ => 0,
            };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob with an INT, then `struct task_struct { int a; int tgid;
    /// void *real_parent (at byte 16) }`.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0task_struct\0a\0tgid\0real_parent\0".to_vec();
        let mut types = Vec::new();
        let w = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
        // [1] INT "int": name 1, kind 1, size 4, then the int's encoding.
        w(&mut types, 1);
        w(&mut types, 1 << 24);
        w(&mut types, 4);
        w(&mut types, 32);
        // [2] STRUCT "task_struct", 3 members, size 24.
        w(&mut types, 5);
        w(&mut types, (4 << 24) | 3);
        w(&mut types, 24);
        for (name, off_bits) in [(17u32, 0u32), (19, 32), (24, 128)] {
            w(&mut types, name);
            w(&mut types, 1);
            w(&mut types, off_bits);
        }
        let mut out = vec![0x9f, 0xeb, 1, 0];
        w(&mut out, 24);
        w(&mut out, 0);
        w(&mut out, types.len() as u32);
        w(&mut out, types.len() as u32);
        w(&mut out, strings.len() as u32);
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn finds_members_after_other_kinds() {
        let b = sample();
        assert_eq!(
            TaskOffsets::from_btf(&b),
            Some(TaskOffsets {
                real_parent: 16,
                tgid: 4
            })
        );
        assert_eq!(member_offset(&b, "task_struct", "nope"), None);
        assert_eq!(member_offset(&b, "mm_struct", "a"), None);
    }
}
