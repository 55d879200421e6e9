//! Kernel struct offsets read from the running kernel's BTF, checked
//! against `pahole` (package dwarves) reading the same BTF: the members
//! `process("P").begin/.end` follow to the current task's executable,
//! `mm_struct.exe_file` inside an anonymous struct among them.

mod support;

use std::process::Command;

/// `pahole -F btf -C STRUCT`'s byte offset of `member`.
fn pahole_offset(strukt: &str, member: &str) -> u32 {
    let out = Command::new("pahole")
        .args(["-F", "btf", "-C", strukt, "/sys/kernel/btf/vmlinux"])
        .output()
        .expect("run pahole");
    let text = String::from_utf8_lossy(&out.stdout);
    let hits: Vec<u32> = text
        .lines()
        .filter(|l| {
            let decl = l.split(';').next().unwrap_or("");
            decl.split(|c: char| !c.is_alphanumeric() && c != '_')
                .next_back()
                == Some(member)
        })
        .filter_map(|l| {
            let c = l.split("/*").nth(1)?;
            c.split_whitespace().next()?.parse().ok()
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{strukt}.{member} in pahole's output:\n{text}"
    );
    hits[0]
}

#[test]
fn exe_offsets_match_pahole() {
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        support::missing("the kernel's BTF (/sys/kernel/btf/vmlinux)");
        return;
    }
    if !support::have_tool("pahole") {
        support::missing("pahole (package dwarves)");
        return;
    }
    let o = stapxx::kernel_btf::ExeOffsets::get().expect("offsets from the kernel's BTF");
    assert_eq!(o.task_mm, pahole_offset("task_struct", "mm"));
    assert_eq!(o.mm_exe_file, pahole_offset("mm_struct", "exe_file"));
    assert_eq!(o.file_inode, pahole_offset("file", "f_inode"));
    assert_eq!(o.inode_ino, pahole_offset("inode", "i_ino"));
    assert_eq!(o.inode_sb, pahole_offset("inode", "i_sb"));
    assert_eq!(o.sb_dev, pahole_offset("super_block", "s_dev"));
    let t = stapxx::kernel_btf::TaskOffsets::get().expect("task offsets");
    assert_eq!(t.real_parent, pahole_offset("task_struct", "real_parent"));
    assert_eq!(t.tgid, pahole_offset("task_struct", "tgid"));
}
