//! The running kernel's types, from its BTF (`/sys/kernel/btf/vmlinux`):
//! a type graph for `@cast(p, "T", "kernel")` and typed tracepoint
//! arguments ([`Kernel`], [`BtfGraph`]), and the member offsets of the few
//! builtins that read kernel memory (`ppid()`:
//! `current->real_parent->tgid`). Reading the offsets at load time keeps
//! the programs right on any kernel build, as CO-RE does.

use std::sync::OnceLock;

mod graph;
mod kernel;
mod ptregs;

pub use graph::BtfGraph;
pub use kernel::{Kernel, TpArg, VMLINUX_BTF};
pub use ptregs::PtRegsOffsets;

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
        *CACHE.get_or_init(|| TaskOffsets::from_graph(Kernel::get()?.graph()))
    }

    pub fn from_btf(btf: &[u8]) -> Option<TaskOffsets> {
        TaskOffsets::from_graph(&BtfGraph::from_btf(btf)?)
    }

    fn from_graph(t: &BtfGraph<'_>) -> Option<TaskOffsets> {
        Some(TaskOffsets {
            real_parent: t.member_offset("task_struct", "real_parent")?,
            tgid: t.member_offset("task_struct", "tgid")?,
        })
    }
}

/// Where `process("P").begin/.end` find the current task's executable:
/// `current->mm->exe_file->f_inode->{i_ino, i_sb->s_dev}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExeOffsets {
    pub task_mm: u32,
    pub mm_exe_file: u32,
    pub file_inode: u32,
    pub inode_ino: u32,
    pub inode_sb: u32,
    pub sb_dev: u32,
}

impl ExeOffsets {
    pub fn get() -> Option<ExeOffsets> {
        static CACHE: OnceLock<Option<ExeOffsets>> = OnceLock::new();
        *CACHE.get_or_init(|| ExeOffsets::from_graph(Kernel::get()?.graph()))
    }

    pub fn from_btf(btf: &[u8]) -> Option<ExeOffsets> {
        ExeOffsets::from_graph(&BtfGraph::from_btf(btf)?)
    }

    fn from_graph(t: &BtfGraph<'_>) -> Option<ExeOffsets> {
        Some(ExeOffsets {
            task_mm: t.member_offset("task_struct", "mm")?,
            mm_exe_file: t.member_offset("mm_struct", "exe_file")?,
            file_inode: t.member_offset("file", "f_inode")?,
            inode_ino: t.member_offset("inode", "i_ino")?,
            inode_sb: t.member_offset("inode", "i_sb")?,
            sb_dev: t.member_offset("super_block", "s_dev")?,
        })
    }
}

use ebpf_backend::btf_kind::{
    ARRAY, DATASEC, DECL_TAG, ENUM, ENUM64, FUNC_PROTO, INT, STRUCT as KIND_STRUCT,
    UNION as KIND_UNION, VAR,
};

/// The types of a BTF blob: where each type id's record starts.
pub struct Types<'b> {
    btf: &'b [u8],
    strings: usize,
    /// Byte position of type id `i + 1`.
    at: Vec<usize>,
}

impl<'b> Types<'b> {
    pub fn parse(btf: &'b [u8]) -> Option<Types<'b>> {
        if btf.get(0..2)? != [0x9f, 0xeb] {
            return None; // not little-endian BTF
        }
        let u32_at = |off: usize| -> Option<u32> {
            Some(u32::from_le_bytes(btf.get(off..off + 4)?.try_into().ok()?))
        };
        let hdr_len = u32_at(4)? as usize;
        let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let str_off = u32_at(16)? as usize;
        let types = hdr_len + type_off;
        let mut t = Types {
            btf,
            strings: hdr_len + str_off,
            at: Vec::new(),
        };
        let mut at = types;
        while at + 12 <= types + type_len {
            t.at.push(at);
            let info = t.u32_at(at + 4)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            // Skip the kind's trailing data.
            at += 12
                + match kind {
                    INT | VAR | DECL_TAG => 4,
                    ARRAY => 12,
                    KIND_STRUCT | KIND_UNION | DATASEC | ENUM64 => vlen * 12,
                    ENUM | FUNC_PROTO => vlen * 8,
                    _ => 0,
                };
        }
        Some(t)
    }

    fn u32_at(&self, off: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.btf.get(off..off + 4)?.try_into().ok()?,
        ))
    }

    fn str_at(&self, off: u32) -> Option<&'b [u8]> {
        let s = self.btf.get(self.strings + off as usize..)?;
        Some(&s[..s.iter().position(|&b| b == 0)?])
    }

    /// (kind, vlen, kflag, name offset, type/size field) of a record.
    fn head(&self, at: usize) -> Option<(u32, usize, bool, u32, u32)> {
        let info = self.u32_at(at + 4)?;
        Some((
            (info >> 24) & 0x1f,
            (info & 0xffff) as usize,
            info >> 31 == 1,
            self.u32_at(at)?,
            self.u32_at(at + 8)?,
        ))
    }
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
        let g = BtfGraph::from_btf(&b).unwrap();
        assert_eq!(g.member_offset("task_struct", "nope"), None);
        assert_eq!(g.member_offset("mm_struct", "a"), None);
    }
}
