//! Containers as they are really built, for tests: an overlayfs root (a
//! lower directory holding the target's files, an upper and a work
//! directory, the merged mount) in new mount and pid namespaces
//! (`unshare --mount --propagation private --pid --fork`), entered either
//! with `chroot` or with `pivot_root` (then with its own `/proc` and the
//! old root unmounted).
//!
//! The files go to paths only the container has (under [`APP`]); the
//! libraries `ldd` lists go to [`LIB`] (found through `LD_LIBRARY_PATH`),
//! only the dynamic loader keeps its own path. Host directories can be
//! bind-mounted in as well ([`Root::bind`]), as volumes are. The overlay is mounted
//! inside the new mount namespace, so from here the merged directory
//! stays empty: the container's files are reachable through the kernel's
//! handles on its processes only (or, as plain copies, in the lower
//! directory under other paths).
//!
//! The program is the child of `unshare` (pid 1 of its namespace):
//! `unshare --kill-child` takes it down, and with it the namespace, when
//! the [`Container`] is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{must, scratch, wait_until, Proc};

/// Where the applications live inside (no such directory on the host).
pub const APP: &str = "/opt/stapxx-ctr";
/// Where the libraries the programs need live inside.
pub const LIB: &str = "/opt/stapxx-ctr/lib";

/// How the program enters its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `chroot MERGED PROGRAM`: the root's path stays in what this host's
    /// `/proc` prints for it.
    Chroot,
    /// `pivot_root` onto the merged mount, `/proc` mounted inside, the old
    /// root detached: the container's root is its mount namespace's.
    PivotRoot,
}

impl Entry {
    pub fn name(self) -> &'static str {
        match self {
            Entry::Chroot => "chroot",
            Entry::PivotRoot => "pivot_root",
        }
    }
}

/// What the tests need to build and enter containers: root, and the
/// tools. `None` (after [`super::missing`]) when something lacks.
pub fn available() -> Option<()> {
    if !super::is_root() {
        super::missing("root (mounts and namespaces for containers)");
        return None;
    }
    for tool in ["unshare", "chroot", "pivot_root", "umount", "ldd"] {
        if !super::have_tool(tool) {
            super::missing(&format!("{tool} (util-linux, coreutils, libc-bin)"));
            return None;
        }
    }
    Some(())
}

/// A container's root: the overlay's directories, filled before start,
/// and host directories bind-mounted into it.
pub struct Root {
    pub dir: PathBuf,
    binds: Vec<(PathBuf, String)>,
}

impl Root {
    /// Fresh directories `lower`, `upper`, `work`, `merged` under the
    /// scratch directory.
    pub fn new(name: &str) -> Root {
        let dir = scratch().join("containers").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        Root {
            dir,
            binds: Vec::new(),
        }
    }

    /// Mounts the host directory `host` at `inner` when the container
    /// starts (`mount --bind`, inside its mount namespace).
    pub fn bind(&mut self, host: &Path, inner: &str) {
        assert!(inner.starts_with('/') && !inner.contains('\''), "{inner}");
        assert!(!host.to_string_lossy().contains('\''));
        self.binds.push((host.to_path_buf(), inner.to_string()));
    }

    pub fn lower(&self) -> PathBuf {
        self.dir.join("lower")
    }

    /// Where a file the container wrote at `inner` is seen from here (the
    /// overlay's upper directory).
    pub fn written(&self, inner: &str) -> PathBuf {
        self.dir.join("upper").join(inner.trim_start_matches('/'))
    }

    /// `inner` in the lower directory, its parents made.
    fn place(&self, inner: &str) -> PathBuf {
        assert!(inner.starts_with('/'), "{inner}");
        let p = self.lower().join(inner.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }

    /// Copies the host file `host` (links followed) to `inner`.
    pub fn add(&self, host: &Path, inner: &str) {
        let to = self.place(inner);
        std::fs::copy(host, &to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", host.display(), to.display()));
    }

    /// Writes `text` to `inner`.
    pub fn write(&self, inner: &str, text: &str) {
        std::fs::write(self.place(inner), text).unwrap();
    }

    /// A symbolic link at `inner` pointing to `target` (as written).
    pub fn link(&self, target: &str, inner: &str) {
        std::os::unix::fs::symlink(target, self.place(inner)).unwrap();
    }

    /// Copies the directory tree `host` to `inner`.
    pub fn add_tree(&self, host: &Path, inner: &str) {
        let to = self.place(inner);
        must(Command::new("cp").arg("-rL").arg(host).arg(&to));
    }

    /// Copies the program `host` to `inner` and every library `ldd` lists
    /// for it to [`LIB`] (the dynamic loader to its own path).
    pub fn add_program(&self, host: &Path, inner: &str) {
        self.add(host, inner);
        self.add_libraries(host);
    }

    /// The libraries of `host` (an executable or shared object), as
    /// [`Root::add_program`] places them.
    pub fn add_libraries(&self, host: &Path) {
        let out = must(Command::new("ldd").arg(host));
        for line in out.lines() {
            let line = line.trim();
            match line.split_once(" => ") {
                Some((name, rest)) => {
                    let Some(path) = rest
                        .split_whitespace()
                        .next()
                        .filter(|p| p.starts_with('/'))
                    else {
                        panic!("ldd {}: {line}", host.display());
                    };
                    self.add(Path::new(path), &format!("{LIB}/{name}"));
                }
                // The loader: `/lib64/ld-linux-x86-64.so.2 (0x...)`.
                None if line.starts_with('/') => {
                    let path = line.split_whitespace().next().unwrap();
                    self.add(Path::new(path), path);
                }
                // linux-vdso.so.1: the kernel's.
                None => {}
            }
        }
    }

    /// Starts `argv` (paths inside) in the container entered by `entry`,
    /// with `env` added to its environment; its stdout is piped.
    pub fn start(&self, entry: Entry, argv: &[&str], env: &[(&str, &str)]) -> Container {
        // Everything a pivot_root container runs after the switch comes
        // from inside: the umount that detaches the old root too.
        if entry == Entry::PivotRoot {
            self.add_program(&which("umount"), "/usr/bin/umount");
        }
        let mut script = "set -e\n\
             mount -t overlay overlay -o \"lowerdir=$1/lower,upperdir=$1/upper,workdir=$1/work\" \"$1/merged\"\n\
             shift\n"
            .to_string();
        for (host, inner) in &self.binds {
            script.push_str(&format!(
                "mkdir -p \"$M{inner}\"\nmount --bind '{}' \"$M{inner}\"\n",
                host.display()
            ));
        }
        script.push_str(match entry {
            Entry::Chroot => "exec chroot \"$M\" \"$@\"\n",
            Entry::PivotRoot => {
                "mkdir -p \"$M/proc\" \"$M/.oldroot\"\n\
                 mount -t proc proc \"$M/proc\"\n\
                 cd \"$M\"\n\
                 pivot_root . .oldroot\n\
                 cd /\n\
                 /usr/bin/umount -l /.oldroot\n\
                 exec \"$@\"\n"
            }
        });
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--kill-child",
            "--",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(&self.dir)
        .args(argv)
        .env("M", self.dir.join("merged"))
        .env("LD_LIBRARY_PATH", LIB)
        .envs(env.iter().copied());
        Container {
            proc: Proc::spawn(&mut cmd),
        }
    }
}

/// The path of a host tool.
fn which(tool: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("no {tool} on this host");
}

/// A running container.
pub struct Container {
    /// `unshare`, whose child is the container's first process.
    pub proc: Proc,
}

impl Container {
    /// Waits for the line `want` on the program's stdout.
    pub fn wait_for_line(&mut self, want: &str) {
        self.proc.wait_for_line(want, Duration::from_secs(20));
    }

    /// The host pid of the container's first process (pid 1 inside), once
    /// `unshare` forked it.
    pub fn pid(&self) -> u32 {
        let mut pid = None;
        let forked = wait_until(Duration::from_secs(10), || {
            pid = stapxx::target::children_of(self.proc.pid())
                .ok()
                .and_then(|c| c.first().copied());
            pid.is_some()
        });
        assert!(forked, "unshare forked no process");
        pid.unwrap()
    }
}

/// The pid process `host_pid` has in its own pid namespace (`NSpid`'s
/// last field).
pub fn inner_pid(host_pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no NSpid for {host_pid}: {status}"))
}
