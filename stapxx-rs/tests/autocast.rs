//! stap's autocast: `p->member` on a variable that was given a typed
//! pointer (`p = & @cast(q, "T")`, `p = @cast(q, "T")->next`, `p =
//! p->next`), read as that type's `@cast` in the same types. In user space
//! (a list walked through `i = i->next` in a uprobe, the fixture built -O0
//! and -O2) and in the kernel (the task and socket `kernel_cast.rs` reads
//! through explicit casts, here through typed variables, and the tapset
//! tree's dentry functions, which are written that way).

mod support;

use std::path::{Path, PathBuf};

fn fixture(opt: &str) -> PathBuf {
    support::c_fixture("autocast.c", &format!("autocast{opt}"), &[opt])
}

const WALK: &str = r#"
probe process.function("walk") {
  l = & @cast($l, "struct list")
  printf("count %d\n", l->count)
  for (i = l->first; i; i = i->next)
    printf("%d %s %s\n", i->value, user_string(i->name), user_string(&i->name[1]))
  s = & l->first->next->name
  printf("second %s\n", user_string(s))
}
"#;

#[test]
fn a_user_list_walked_through_typed_variables() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let bin = fixture(opt);
        let (code, out, err) = support::stapxx_c(&bin.display().to_string(), WALK);
        assert_eq!((code, err.as_str()), (0, ""), "{opt}: {out}");
        // (The fixture's own line comes when it comes.)
        let (own, traced): (Vec<&str>, Vec<&str>) =
            out.lines().partition(|l| l.starts_with("autocast walked"));
        assert_eq!(own, ["autocast walked 60"], "{opt}: {out}");
        assert_eq!(
            traced,
            [
                "count 3",
                "10 ten en",
                "20 twenty wenty",
                "30 thirty hirty",
                "second twenty"
            ],
            "{opt}"
        );
    }
}

/// The facts `kernel_cast.rs` reads with explicit casts, through typed
/// variables: the task, its parent, its file table and the socket at
/// descriptor 77; `task_current()` itself is typed.
const KERNEL: &str = r#"
probe kernel.trace("syscalls:sys_enter_getsockname") {
  if (pid() != target() || $fd != 77) next
  t = & @cast(task_current(), "task_struct", "kernel")
  p = t->real_parent
  printf("task tgid=%d pid=%d parent=%d comm=%s policy=%d reset_on_fork=%d\n",
    t->tgid, t->pid, p->tgid, kernel_string(t->comm), t->policy, t->sched_reset_on_fork)
  c = task_current()
  printf("task_current() typed: %d %d\n", task_current()->tgid == t->tgid, c->real_parent == p)
  fdt = t->files->fdt
  file = fdt->fd[$fd]
  sock = & @cast(file, "struct file", "kernel")
  sock = sock->private_data
  printf("private_data typed void *: %d\n", @defined(sock->state))
  s = & @cast(sock, "socket", "kernel")
  common = & s->sk->__sk_common
  printf("socket state=%d type=%d family=%d reuseport=%d file_back=%d\n",
    s->state, s->type, common->skc_family, common->skc_reuseport, s->file == file)
}
"#;

#[test]
fn kernel_structures_through_typed_variables() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        support::missing("the kernel's BTF (/sys/kernel/btf/vmlinux)");
        return;
    }
    let bin = support::c_fixture("kcast.c", "kcast", &[]);
    let (code, out, err) = support::stapxx_c(&bin.display().to_string(), KERNEL);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let report = out
        .lines()
        .find_map(|l| l.strip_prefix("kcast pid "))
        .unwrap_or_else(|| panic!("no report in {out}"));
    let ids: Vec<&str> = report.split(' ').collect();
    let (pid, ppid) = (ids[0], ids[2]);
    let traced: Vec<&str> = out.lines().filter(|l| !l.starts_with("kcast ")).collect();
    assert_eq!(
        traced,
        [
            format!("task tgid={pid} pid={pid} parent={ppid} comm=kcast policy=3 reset_on_fork=1"),
            // As in stap's tapset, where it is `& @task(current)`.
            "task_current() typed: 1 1".to_string(),
            // `private_data` is a `void *`: nothing to follow.
            "private_data typed void *: 0".to_string(),
            // SS_UNCONNECTED, SOCK_STREAM, AF_INET.
            "socket state=1 type=1 family=2 reuseport=1 file_back=1".to_string(),
        ],
        "{out}"
    );
}

/// Where `path` is below the mount point it is on: `reverse_path_walk`
/// stops at the root of the dentry's own file system.
fn below_its_mount(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let point = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| path.starts_with(m))
        .max_by_key(|m| m.len())
        .expect("a mount point");
    path.strip_prefix(point)
        .expect("below")
        .display()
        .to_string()
}

/// The tree's dentry functions (`d_name`, `inode_name`,
/// `reverse_path_walk`, `task_dentry_path`) are autocast code: the name,
/// the path within its file system and the full path of the fixture's
/// executable, and its working directory.
#[test]
fn the_tree_dentry_functions() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !Path::new("/usr/share/systemtap/tapset/linux/dentry.stp").exists() {
        support::missing("SystemTap's tapset tree (systemtap-common)");
        return;
    }
    let bin = support::c_fixture("kcast.c", "kcast", &[]);
    let script = r#"
probe kernel.trace("sched:sched_process_exec") {
  if (pid() != target()) next
  t = task_current()
  f = @cast(t, "task_struct", "kernel")->mm->exe_file
  fs = @cast(t, "task_struct", "kernel")->fs
  printf("name %s\n", d_name(@cast(f, "file", "kernel")->f_path->dentry))
  printf("inode %s\n", inode_name(@cast(f, "file", "kernel")->f_inode))
  printf("exe %s\n", task_dentry_path(t, @cast(f, "file", "kernel")->f_path->dentry,
                                          @cast(f, "file", "kernel")->f_path->mnt))
  printf("cwd %s\n", task_dentry_path(t, @cast(fs, "fs_struct", "kernel")->pwd->dentry,
                                          @cast(fs, "fs_struct", "kernel")->pwd->mnt))
}
"#;
    let dir = support::scratch();
    let (code, out, err) =
        support::stapxx_in(dir, &["-c", &bin.display().to_string(), "-e", script]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let real = std::fs::canonicalize(&bin).expect("fixture path");
    let cwd = std::fs::canonicalize(dir).expect("scratch");
    let traced: Vec<&str> = out.lines().filter(|l| !l.starts_with("kcast ")).collect();
    assert_eq!(
        traced,
        [
            "name kcast".to_string(),
            format!("inode {}", below_its_mount(&real)),
            format!("exe {}", real.display()),
            format!("cwd {}", cwd.display()),
        ],
        "{out}"
    );
}

/// `->` on a variable with no typed value: the error names it and says
/// what autocast follows; a member the type lacks names the nearest ones.
#[test]
fn errors_name_the_variable_and_the_nearest_members() {
    let (code, _, err) = support::stapxx(&[
        "-p2",
        "-e",
        "probe kernel.trace(\"sched:sched_process_exec\") { x = 5; printf(\"%d\\n\", x->pid) }",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("-e:1:72: error: '->' on 'x', which holds no typed pointer here"),
        "{err}"
    );
    let (code, _, err) = support::stapxx(&[
        "-p2",
        "-e",
        "probe kernel.trace(\"sched:sched_process_exec\") { t = & @cast(task_current(), \"task_struct\", \"kernel\"); printf(\"%d\\n\", t->tgidd) }",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: struct task_struct has no member 'tgidd'; nearest: tgid"),
        "{err}"
    );
    // A host probe cannot read kernel memory: said with the type.
    let (code, _, err) = support::stapxx(&[
        "-p2",
        "-e",
        "probe begin { t = & @cast(0, \"task_struct\", \"kernel\"); print(t->real_parent) }",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: @cast to kernel type 'struct task_struct' reads kernel memory"),
        "{err}"
    );
}
