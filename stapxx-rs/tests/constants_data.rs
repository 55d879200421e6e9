//! The generator of `stapxx-rs/data/constants.tsv` and
//! `stapxx-rs/data/errnos.txt`, and the test that the committed files are
//! what it makes now.
//!
//! `@const("NAME")` in SystemTap's tapsets names a C constant that stap's C
//! compiler knows from the kernel's headers. We have no C compiler at run
//! time, so the values are computed here, once, from the real headers of
//! x86-64 Linux (`linux-libc-dev`, `libc6-dev`) with the C compiler, and
//! committed. To regenerate after a header or tapset change:
//!
//!     STAPXX_WRITE_CONSTANTS=1 cargo test --release -p stapxx-rs --test constants_data
//!
//! Which names: every `@const("IDENT")` of the tapset tree
//! (`$STAP_TAPSET_DIR`, default `/usr/share/systemtap/tapset`), every
//! `V(IDENT)` and `{IDENT, "..."}` (or `{(TYPE)IDENT, "..."}`) entry of its embedded-C value tables
//! (`_stp_val_array`, whose names the formatters print), the errno names
//! of `errno.stp`'s `errlist` and of `<errno.h>`, and [`EXTRA`] (names our
//! own translations of embedded-C functions use).
//!
//! Where a value comes from: the first of [`HEADERS`] that defines the name
//! as a macro (`gcc -E -dM`), kernel UAPI headers before glibc's, because
//! the tapsets run in the kernel (`O_LARGEFILE` is 0 in glibc on x86-64,
//! 0100000 to the kernel); each header is compiled on its own, as kernel
//! and libc headers do not mix. The value is what a program compiled with
//! that header prints for `(long long)(NAME)`. `__NR_compat_X` is the i386
//! number, `__NR_X` of `<asm/unistd_32.h>` (stap's compat_unistd.h maps it
//! to `__NR_ia32_X` on x86-64).
//!
//! Names left out (no header here defines them; 132 of the 1079 plain
//! `@const` names with systemtap-common 4.8 and linux-libc-dev 6.1):
//! * kernel-internal, not in the UAPI headers: `GFP_KERNEL`, `PAGE_SIZE`,
//!   `BITS_PER_LONG`, `TASK_WAKEKILL`, `__TASK_STOPPED`, `__TASK_TRACED`,
//!   `MM_ANONPAGES`, `MM_FILEPAGES`, `VERIFY_READ`, `VERIFY_WRITE`,
//!   `ITER_IOVEC`, `NET_RX_DROP`, `LLC_SAP_BSPAN`, `NF_ARP`, ...;
//! * SystemTap's own C names: `MAXSTRINGLEN`, `_STP_PAGE_SIZE`,
//!   `_stp_target`, `_stp_remote_id`, the `SA_*` sockaddr formats;
//! * other architectures: `PPC_PTRACE_*`, `COMPAT_PTRACE_*` (arm64),
//!   `PTRACE_GETCRUNCHREGS`, `PTRACE_PEEKUSR_AREA` (s390), ...;
//! * syscalls x86-64 (or i386 for `__NR_compat_*`) does not have, except
//!   those stap's runtime (`runtime/linux/compat_unistd.h`, shipped with
//!   the tapsets) gives an impossible number, one past its default maximum
//!   0xffff: those get that number here too, so a gate on one never
//!   matches (`__NR_socketcall`, `__NR_chown32`, ...).
//!
//! The test prints how many names were left out, and which.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Headers in priority order: a name is taken from the first header
/// defining it.
const HEADERS: &[&str] = &[
    // Kernel UAPI (what the kernel, and so the tapsets, see).
    "linux/fcntl.h",
    "linux/stat.h",
    "linux/mman.h",
    "linux/sched.h",
    "asm/unistd_64.h",
    "linux/errno.h",
    "linux/ptrace.h",
    "asm/ptrace-abi.h",
    "linux/in.h",
    "linux/in6.h",
    "linux/tcp.h",
    "linux/futex.h",
    "linux/keyctl.h",
    "linux/quota.h",
    "linux/resource.h",
    "linux/net.h",
    "linux/magic.h",
    "linux/ipc.h",
    "linux/shm.h",
    "linux/sem.h",
    "linux/msg.h",
    "linux/icmp.h",
    "linux/rtnetlink.h",
    "linux/prctl.h",
    "asm/prctl.h",
    "linux/signal.h",
    "linux/socket.h",
    "linux/wait.h",
    "linux/eventpoll.h",
    "linux/fs.h",
    "linux/capability.h",
    "linux/time.h",
    "linux/timex.h",
    "linux/mount.h",
    "linux/xattr.h",
    "linux/inotify.h",
    "linux/fanotify.h",
    "linux/personality.h",
    "linux/reboot.h",
    "linux/mempolicy.h",
    "linux/kexec.h",
    "linux/membarrier.h",
    "linux/seccomp.h",
    "linux/bpf.h",
    "linux/perf_event.h",
    "linux/module.h",
    "linux/random.h",
    "linux/falloc.h",
    "linux/fadvise.h",
    "linux/memfd.h",
    "linux/userfaultfd.h",
    "linux/netlink.h",
    "linux/if_ether.h",
    "linux/termios.h",
    "linux/kcmp.h",
    "linux/mqueue.h",
    "linux/ioprio.h",
    "linux/nfs.h",
    "linux/sysctl.h",
    "linux/utsname.h",
    "linux/elf.h",
    // glibc, for what the UAPI headers above do not define.
    "errno.h",
    "fcntl.h",
    "sys/socket.h",
    "netinet/in.h",
    "netinet/tcp.h",
    "sys/ptrace.h",
    "sys/resource.h",
    "sys/stat.h",
    "sys/mman.h",
    "signal.h",
    "sys/ipc.h",
    "sys/shm.h",
    "sys/sem.h",
    "sys/msg.h",
    "sys/wait.h",
    "sys/epoll.h",
    "sys/mount.h",
    "sched.h",
    "sys/prctl.h",
    "sys/xattr.h",
    "sys/inotify.h",
    "sys/timerfd.h",
    "sys/eventfd.h",
    "sys/signalfd.h",
    "sys/swap.h",
    "sys/klog.h",
    "unistd.h",
    "time.h",
    "sys/time.h",
    "sys/quota.h",
    "sys/file.h",
    "poll.h",
    "linux/if_packet.h",
];

/// The i386 syscall numbers, named `__NR_compat_*` and `__NR_ia32_*` here
/// (stap's compat_unistd.h names them both ways on x86-64).
const COMPAT_HEADER: &str = "asm/unistd_32.h";

/// Headers whose enumerators (no macros) the tapsets name: tried, after
/// the macros, for the names still without a value.
const ENUM_HEADERS: &[&str] = &[
    "linux/rtnetlink.h",
    "linux/in.h",
    "linux/tcp.h",
    "linux/bpf.h",
    "linux/kcmp.h",
    "linux/membarrier.h",
    "linux/ioprio.h",
];

/// Names the hand translations of embedded-C functions use
/// (`stapxx-rs/src/resolve/cfuncs.rs`) beyond the tapsets' own.
const EXTRA: &[&str] = &[
    "O_ACCMODE",
    "O_RDONLY",
    "O_WRONLY",
    "O_RDWR",
    "MAP_HUGE_SHIFT",
    "MAP_HUGE_MASK",
];

#[test]
fn committed_constants_are_the_headers() {
    let Some(tapsets) = tapset_dir() else {
        return support::missing("SystemTap's tapset tree (package systemtap-common)");
    };
    if !support::have_tool("gcc") {
        return support::missing("gcc (and linux-libc-dev, libc6-dev)");
    }
    if !cfg!(target_arch = "x86_64") {
        panic!("the constants are x86-64's: regenerate on an x86-64 machine");
    }
    let g = generate(&tapsets);
    let data = support::workspace_root().join("stapxx-rs/data");
    let tsv = data.join("constants.tsv");
    let errnos = data.join("errnos.txt");
    if std::env::var_os("STAPXX_WRITE_CONSTANTS").is_some() {
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(&tsv, &g.tsv).unwrap();
        std::fs::write(&errnos, &g.errnos).unwrap();
    }
    eprintln!(
        "{} names asked for, {} defined, {} left out: {}",
        g.asked,
        g.defined,
        g.left_out.len(),
        g.left_out.join(" ")
    );
    let committed = std::fs::read_to_string(&tsv).unwrap_or_default();
    assert!(
        committed == g.tsv,
        "stapxx-rs/data/constants.tsv differs from what the headers give now \
         (STAPXX_WRITE_CONSTANTS=1 rewrites it); first difference: {:?}",
        first_difference(&committed, &g.tsv)
    );
    let committed = std::fs::read_to_string(&errnos).unwrap_or_default();
    assert_eq!(committed, g.errnos, "stapxx-rs/data/errnos.txt");
    // A few values known by heart, so a broken generator cannot agree with
    // itself.
    for (name, want) in [
        ("AT_FDCWD", "-100"),
        ("O_CREAT", "64"),
        ("O_LARGEFILE", "32768"),
        ("O_CLOEXEC", "524288"),
        ("__NR_openat", "257"),
        ("__NR_compat_openat", "295"),
        ("ENOENT", "2"),
        ("EHWPOISON", "133"),
        // No socketcall on x86-64: stap's runtime makes it 0xffff + 1.
        ("__NR_socketcall", "65536"),
    ] {
        let line = format!("{name}\t{want}\n");
        assert!(g.tsv.contains(&line), "{name} should be {want}");
    }
}

fn first_difference(a: &str, b: &str) -> Option<(String, String)> {
    let (mut x, mut y) = (a.lines(), b.lines());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return None,
            (l, r) if l != r => {
                return Some((l.unwrap_or("").into(), r.unwrap_or("").into()));
            }
            _ => {}
        }
    }
}

fn tapset_dir() -> Option<PathBuf> {
    let d = std::env::var_os("STAP_TAPSET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/systemtap/tapset"));
    d.join("errno.stp").is_file().then_some(d)
}

struct Generated {
    tsv: String,
    errnos: String,
    asked: usize,
    defined: usize,
    left_out: Vec<String>,
}

fn generate(tapsets: &Path) -> Generated {
    let mut texts = Vec::new();
    collect_texts(tapsets, &mut texts);
    texts.sort();
    let ident = r"([A-Za-z_][A-Za-z0-9_]*)";
    let at_const = regex::Regex::new(&format!(r#"@const\("{ident}"\)"#)).unwrap();
    let v_entry = regex::Regex::new(&format!(r"\bV\({ident}\)")).unwrap();
    // `{IDENT, "..."}`, also with a cast: `{ (unsigned int)IDENT, "..."}`.
    let brace_entry =
        regex::Regex::new(&format!(r#"\{{\s*(?:\([a-z ]+\)\s*)?{ident}\s*,\s*""#)).unwrap();
    let mut names = BTreeSet::new();
    let mut const_names = BTreeSet::new();
    for (_, text) in &texts {
        for c in at_const.captures_iter(text) {
            names.insert(c[1].to_string());
            const_names.insert(c[1].to_string());
        }
        for c in v_entry.captures_iter(text) {
            names.insert(c[1].to_string());
        }
        for c in brace_entry.captures_iter(text) {
            names.insert(c[1].to_string());
        }
    }
    let scratch = support::scratch().join("constgen");
    std::fs::create_dir_all(&scratch).unwrap();
    let errlist = errlist_names(tapsets, &scratch);
    names.extend(errlist.iter().cloned());
    names.extend(EXTRA.iter().map(|s| s.to_string()));
    // Every E* macro of <errno.h>: errno names whatever the tapsets use.
    for n in macro_names(&scratch, "errno.h") {
        if n.len() > 1
            && n.starts_with('E')
            && n[1..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            names.insert(n);
        }
    }
    // Which header owns each name.
    let mut owner: BTreeMap<String, (&str, String)> = BTreeMap::new();
    for h in HEADERS {
        for n in macro_names(&scratch, h) {
            if names.contains(&n) && !owner.contains_key(&n) {
                owner.insert(n.clone(), (h, n));
            }
        }
    }
    for n in macro_names(&scratch, COMPAT_HEADER) {
        if let Some(rest) = n.strip_prefix("__NR_") {
            for prefix in ["__NR_compat_", "__NR_ia32_"] {
                let compat = format!("{prefix}{rest}");
                if names.contains(&compat) && !owner.contains_key(&compat) {
                    owner.insert(compat, (COMPAT_HEADER, n.clone()));
                }
            }
        }
    }
    let mut values: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_header: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (name, (h, expr)) in &owner {
        by_header
            .entry(h)
            .or_default()
            .push((name.clone(), expr.clone()));
    }
    for (h, list) in by_header {
        values.extend(evaluate(&scratch, h, list));
    }
    for h in ENUM_HEADERS {
        let rest: Vec<(String, String)> = names
            .iter()
            .filter(|n| !values.contains_key(*n))
            .map(|n| (n.clone(), n.clone()))
            .collect();
        values.extend(evaluate(&scratch, h, rest));
    }
    // System calls x86-64 (or i386, for the compat names) lacks: stap's
    // runtime gives them an impossible number in its compat_unistd.h, one
    // past the highest (its default 0xffff, as the UAPI headers define no
    // `__NR_syscall_max`), so the tapsets' gates never match them.
    for (name, v) in impossible_syscall_numbers(tapsets) {
        if names.contains(&name) && !values.contains_key(&name) {
            values.insert(name, v);
        }
    }
    let mut tsv = String::from(
        "# C constants of x86-64 Linux for @const(\"NAME\"), from the kernel UAPI and\n\
         # glibc headers; generated by stapxx-rs/tests/constants_data.rs, do not edit.\n",
    );
    for (n, v) in &values {
        tsv.push_str(&format!("{n}\t{v}\n"));
    }
    let mut errnos = String::from(
        "# The errno names stap's errno_str() knows (errno.stp's errlist), in its\n\
         # order: a later name for the same value replaces an earlier one.\n\
         # Generated by stapxx-rs/tests/constants_data.rs, do not edit.\n",
    );
    for n in &errlist {
        if values.contains_key(n) {
            errnos.push_str(n);
            errnos.push('\n');
        }
    }
    let left_out: Vec<String> = const_names
        .iter()
        .filter(|n| !values.contains_key(*n))
        .cloned()
        .collect();
    Generated {
        tsv,
        errnos,
        asked: const_names.len(),
        defined: const_names.len() - left_out.len(),
        left_out,
    }
}

/// The syscall numbers stap's runtime (`runtime/linux/compat_unistd.h`,
/// next to the tapset tree) defines as one past the maximum, directly or
/// through `__NR_compat_X` -> `__NR_ia32_X`.
fn impossible_syscall_numbers(tapsets: &Path) -> Vec<(String, i64)> {
    let header = tapsets.join("../runtime/linux/compat_unistd.h");
    let text = std::fs::read_to_string(&header)
        .unwrap_or_else(|e| panic!("reading {}: {e}", header.display()));
    let past_max =
        regex::Regex::new(r"(?m)^#define\s+(__NR_\w+)\s+\(__NR_syscall(?:_compat)?_max \+ 1\)")
            .unwrap();
    let alias =
        regex::Regex::new(r"(?m)^#define\s+(__NR_compat_\w+)\s+(__NR_ia32_\w+)\s*$").unwrap();
    // stap's defaults for both maximums (none of the headers defines one).
    const IMPOSSIBLE: i64 = 0xffff + 1;
    let mut out: Vec<(String, i64)> = past_max
        .captures_iter(&text)
        .map(|c| (c[1].to_string(), IMPOSSIBLE))
        .collect();
    let impossible: BTreeSet<String> = out.iter().map(|(n, _)| n.clone()).collect();
    for c in alias.captures_iter(&text) {
        if impossible.contains(&c[2]) {
            out.push((c[1].to_string(), IMPOSSIBLE));
        }
    }
    out
}

fn collect_texts(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_texts(&p, out);
        } else if matches!(p.extension().and_then(|x| x.to_str()), Some("stp" | "stpm")) {
            if let Ok(t) = std::fs::read_to_string(&p) {
                out.push((p, t));
            }
        }
    }
}

/// errno.stp's `errlist` as the C compiler builds it: its `%{ %}` block
/// run through the preprocessor over <linux/errno.h>, so its `#ifdef`s
/// and `#if EDEADLOCK != EDEADLK` decide as they do for stap; the names in
/// initializer order (a later one for an index replaces an earlier one).
fn errlist_names(tapsets: &Path, scratch: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(tapsets.join("errno.stp")).unwrap();
    let at = text.find("errlist[]").expect("errno.stp has errlist");
    let start = text[..at].rfind("%{").expect("errlist is embedded C") + 2;
    let end = at + text[at..].find("%}").expect("errlist block ends");
    let src = scratch.join("errlist.c");
    std::fs::write(
        &src,
        format!("#include <linux/errno.h>\n{}", &text[start..end]),
    )
    .unwrap();
    let out = support::must(gcc().args(["-E", "-P"]).arg(&src));
    let entry = regex::Regex::new(r#"\[\s*\d+\s*\]\s*=\s*"([A-Z0-9]+)""#).unwrap();
    entry
        .captures_iter(&out)
        .map(|c| c[1].to_string())
        .collect()
}

fn gcc() -> Command {
    let mut c = Command::new("gcc");
    c.args(["-D_GNU_SOURCE", "-w"]);
    c
}

/// The object-like macros `header` defines (with what it includes).
fn macro_names(scratch: &Path, header: &str) -> Vec<String> {
    let src = scratch.join("names.c");
    std::fs::write(&src, format!("#include <{header}>\n")).unwrap();
    let out = support::must(gcc().args(["-E", "-dM"]).arg(&src));
    out.lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .filter_map(|l| {
            let name = l.split([' ', '(']).next()?;
            // Function-like macros are not constants.
            (!l[name.len()..].starts_with('(')).then(|| name.to_string())
        })
        .collect()
}

/// The values of `(name, expression)` pairs under `header`: compiled and
/// run; an expression that is no integer (a struct, a string) is dropped.
fn evaluate(scratch: &Path, header: &str, mut list: Vec<(String, String)>) -> Vec<(String, i64)> {
    let tag = header.replace(['/', '.'], "_");
    let src = scratch.join(format!("{tag}.c"));
    let exe = scratch.join(tag);
    // The header comes first and nothing of libc before it: the UAPI
    // headers hide some names when glibc's are already in (`S_IFMT` of
    // <linux/stat.h>). One function per name, as gcc names an undeclared
    // identifier once per function.
    for _round in 0..20 {
        let mut c = format!("#include <{header}>\nint printf(const char *, ...);\n");
        for (i, (name, expr)) in list.iter().enumerate() {
            c.push_str(&format!(
                "static void f{i}(void) {{ printf(\"%s\\t%lld\\n\", \"{name}\", (long long)({expr})); }}\n"
            ));
        }
        c.push_str("int main(void) {\n");
        for i in 0..list.len() {
            c.push_str(&format!("f{i}();\n"));
        }
        c.push_str("return 0;\n}\n");
        std::fs::write(&src, &c).unwrap();
        let out = gcc().arg(&src).arg("-o").arg(&exe).output().unwrap();
        if out.status.success() {
            let text = support::must(&mut Command::new(&exe));
            return text
                .lines()
                .map(|l| {
                    let (n, v) = l.split_once('\t').unwrap();
                    (n.to_string(), v.parse().unwrap())
                })
                .collect();
        }
        // Drop the names whose lines the compiler refused (line 3 is the
        // first name's).
        let err = String::from_utf8_lossy(&out.stderr);
        let file = src.display().to_string();
        let bad: BTreeSet<usize> = err
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{file}:")))
            .filter(|l| l.contains("error"))
            .filter_map(|l| l.split(':').next()?.parse::<usize>().ok())
            .filter(|&n| (3..3 + list.len()).contains(&n))
            .map(|n| n - 3)
            .collect();
        assert!(!bad.is_empty(), "{header} does not compile:\n{err}");
        list = list
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !bad.contains(i))
            .map(|(_, x)| x)
            .collect();
    }
    panic!("{header}: still not compiling after dropping refused names");
}
