//! The target's ELF modules that `@cast`/`@var` name, opened once each.

use crate::debuginfo::{DebugError, DebugSource, LocateOptions, Module};
use crate::target::TargetInfo;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Opens modules by the path the script names, through the target
/// process ([`TargetInfo::open_module`]) when there is one.
pub struct Modules {
    target: Option<TargetInfo>,
    /// The module used when `@cast` names none.
    default: Option<PathBuf>,
    open: HashMap<PathBuf, Result<Module, String>>,
    /// Modules being opened on other threads ([`Prefetch`]).
    pending: HashMap<PathBuf, std::thread::JoinHandle<Result<Module, String>>>,
    /// Later passes will run: load-time facts may be fetched early.
    pub prefetch: bool,
    /// The traced process exists (`-x`, `--master`): load biases are known
    /// when the programs are built. Without it (`-c`), a function probe
    /// finds its module's bias from where it fired.
    pub has_process: bool,
}

impl Modules {
    pub fn new(target: Option<&TargetInfo>, default: Option<PathBuf>) -> Modules {
        Modules {
            target: target.cloned(),
            default,
            open: HashMap::new(),
            pending: HashMap::new(),
            prefetch: false,
            has_process: target.is_some(),
        }
    }

    /// Take over what `prefetch` has started opening.
    pub fn adopt(&mut self, prefetch: Prefetch) {
        self.pending.extend(prefetch.0);
    }

    /// The module for a `@cast`/`@var` module argument (`None`: the default).
    pub fn get(&mut self, name: Option<&str>) -> Result<&Module, String> {
        let path = match name {
            // (`@cast`s of kernel types never come here: see casts.rs.)
            Some(k) if super::casts::is_kernel_module(k) => {
                return Err("the kernel's variables are not available to @var: its BTF describes no global variables (only per-CPU ones), and /proc/kallsyms has data symbols only on kernels built with CONFIG_KALLSYMS_ALL (kernel types are: @cast(p, \"T\", \"kernel\"))".into())
            }
            Some(p) => PathBuf::from(p),
            None => self.default.clone().ok_or_else(|| {
                "no module given and no target executable to default to (use -x, --master or --exec, or name the module)".to_string()
            })?,
        };
        if let Some(h) = self.pending.remove(&path) {
            let opened = h
                .join()
                .unwrap_or_else(|_| Err("opening the module failed".into()));
            self.open.entry(path.clone()).or_insert(opened);
        }
        let target = self.target.as_ref();
        let entry = self.open.entry(path.clone()).or_insert_with(|| {
            match target {
                Some(t) => t.open_module(&path),
                None => Module::open_in(&path, LocateOptions::default()),
            }
            .map_err(|e| e.to_string())
        });
        entry.as_ref().map_err(|e| e.clone())
    }

    /// The file `.library("NAME")` names: a path as it is; a bare name
    /// (`libc.so.6`, `libssl.so`) among the shared objects the process
    /// maps (`-x`), else among those `exe` (the point's process, or the
    /// `-c` command's) links against as `ldd` lists them, by file name or
    /// a prefix of it up to a `.` (`libc.so` finds `libc.so.6`), as stap
    /// finds a library by the program's own search path.
    pub fn library(&self, exe: Option<&str>, name: &str) -> Result<PathBuf, String> {
        if name.contains('/') {
            return Ok(PathBuf::from(name));
        }
        let (libs, from) = match &self.target {
            Some(t) => (t.libraries(), "the process maps".to_string()),
            None => {
                let exe = exe.map(PathBuf::from).or_else(|| self.default.clone()).ok_or_else(|| {
                    format!("library \"{name}\" is a bare name: name the process (process(\"PATH\").library) or give -c, -x or a path")
                })?;
                let libs = crate::target::ldd_libraries(&exe).map_err(|e| e.to_string())?;
                (libs, format!("{} links against (ldd)", exe.display()))
            }
        };
        let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let named = |p: &Path| {
            file_name(p).is_some_and(|f| {
                f == name || f.strip_prefix(name).is_some_and(|r| r.starts_with('.'))
            })
        };
        // By the name it is mapped or listed under, else by the file a
        // link of that name leads to.
        if let Some(p) = libs.iter().find(|p| named(p)) {
            return Ok(p.clone());
        }
        if let Some(p) = libs
            .iter()
            .find(|p| std::fs::canonicalize(p).is_ok_and(|c| named(&c)))
        {
            return Ok(p.clone());
        }
        let names: Vec<String> = libs.iter().filter_map(|p| file_name(p)).collect();
        Err(format!(
            "library \"{name}\" is none of the shared objects {from}: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    }

    /// Whether an error means "that name does not exist" (so `@defined` is 0).
    pub fn is_unresolved(e: &DebugError) -> bool {
        e.is_unresolved_name()
    }

    /// Whether a `@cast`/`@var` cannot be known from this file: its name
    /// does not exist, or the file has no debug info anywhere (`@defined`
    /// is 0 for both).
    pub fn is_unknown_here(e: &DebugError) -> bool {
        e.is_unresolved_name() || matches!(e, DebugError::NoDebugInfo { .. })
    }

    /// For `-v`: each module whose types come from a shipped LuaJIT layout
    /// (it has no DWARF anywhere), and which layout its code matched.
    pub fn shipped_layouts(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .open
            .values()
            .filter_map(|m| {
                let m = m.as_ref().ok()?;
                match m.debug_source() {
                    Ok(DebugSource::Shipped(name)) => Some(format!(
                        "{}: no DWARF; its machine code matches the shipped LuaJIT layout {name}",
                        m.target_path().display()
                    )),
                    _ => None,
                }
            })
            .collect();
        out.sort();
        out
    }

    /// The traced process, when there is one.
    pub fn target(&self) -> Option<&TargetInfo> {
        self.target.as_ref()
    }

    pub fn default_module(&self) -> Option<&Path> {
        self.default.as_deref()
    }
}

/// Modules opened, and their DWARF indexed, on other threads while the
/// script is parsed (indexing a large binary's DWARF, e.g. LuaJIT's, takes
/// about as long as parsing the script and its tapsets): the target's
/// files that a script using `@cast`/`@var` may name, which are its
/// executable (the default module) and the mapped files whose path the
/// script's text holds (`$^libNAME_path` expanded). Each becomes the
/// module [`Modules::get`] returns for that path, exactly as if opened
/// there; one never asked for costs only the other core's time.
pub struct Prefetch(Vec<(PathBuf, std::thread::JoinHandle<Result<Module, String>>)>);

impl Prefetch {
    pub fn start<'a>(
        target: Option<&TargetInfo>,
        default: Option<&Path>,
        texts: impl Iterator<Item = &'a str> + Clone,
    ) -> Prefetch {
        let mut handles = Vec::new();
        let Some(target) = target else {
            return Prefetch(handles);
        };
        if !texts
            .clone()
            .any(|t| t.contains("@cast") || t.contains("@var"))
        {
            return Prefetch(handles);
        }
        let mut paths: Vec<PathBuf> = default.map(Path::to_path_buf).into_iter().collect();
        for m in &target.maps {
            let Some(f) = m.file() else { continue };
            let quoted = format!("\"{}\"", f.display());
            if !paths.iter().any(|p| p == f) && texts.clone().any(|t| t.contains(&quoted)) {
                paths.push(f.to_path_buf());
            }
        }
        for path in paths {
            let t = target.clone();
            let p = path.clone();
            let spawned = std::thread::Builder::new().spawn(move || {
                let m = t.open_module(&p).map_err(|e| e.to_string())?;
                m.preload_embedded();
                Ok(m)
            });
            if let Ok(h) = spawned {
                handles.push((path, h));
            }
        }
        Prefetch(handles)
    }
}
