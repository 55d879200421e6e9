//! Where a run's fast-function names come from, and the one note when
//! `builtin#N` frames have to keep their numbers.
//!
//! * A live run: the LuaJIT of the traced process, found as the tapsets
//!   find `$^libluajit_path`: a mapped `libluajit*.so`, else the
//!   executable (LuaJIT linked in). Without a process, `--exec`'s
//!   executable and the libraries `ldd` lists for it. The names are read
//!   on a thread of their own from the start of the run, so the run does
//!   not wait for the DWARF and the target may exit before the end.
//! * `stapxx-rs flamegraph --luajit PATH`: that file, read when the first
//!   `builtin#N` frame is named.
//!
//! Nothing is guessed: when the names cannot be had, or an id is not a
//! fast function of that LuaJIT, the frames stay `builtin#N` and one
//! warning per run says why (only when there are such frames).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::ffnames::{self, FastNames};
use crate::debuginfo::{LocateOptions, Module};
use crate::target::{self, TargetInfo};

/// Where the names stand.
enum State {
    /// Being read on a thread.
    Reading(JoinHandle<Result<FastNames, String>>),
    /// A module opened, read on first use.
    Opened(Box<Module>),
    /// Read, or why not.
    Done(Result<Arc<FastNames>, String>),
}

/// The fast-function names of one run, shared by its outputs.
pub struct FastLookup {
    state: Mutex<Option<State>>,
    /// What the names are read from, for messages (`/usr/bin/luajit, the
    /// executable of process 42`).
    source: String,
    /// The note was given.
    noted: AtomicBool,
}

impl FastLookup {
    fn new(state: State, source: String) -> Arc<FastLookup> {
        Arc::new(FastLookup {
            state: Mutex::new(Some(state)),
            source,
            noted: AtomicBool::new(false),
        })
    }

    /// Names that cannot be had: `why` is said at the first frame.
    pub fn unavailable(why: impl Into<String>) -> Arc<FastLookup> {
        FastLookup::new(State::Done(Err(why.into())), String::new())
    }

    /// A live run's: the LuaJIT of process `pid`, or of executable `exe`
    /// when there is no process; read in the background from now on.
    pub fn for_run(pid: Option<u32>, exe: Option<&Path>) -> Arc<FastLookup> {
        let (path, opts, source) = match locate(pid, exe) {
            Ok(found) => found,
            Err(why) => {
                return FastLookup::unavailable(format!(
                    "cannot read LuaJIT's fast-function names: {why}"
                ))
            }
        };
        let read = move || {
            let module = Module::open_in(&path, opts).map_err(|e| e.to_string())?;
            ffnames::from_module(&module)
        };
        match std::thread::Builder::new()
            .name("stapxx-ffnames".into())
            .spawn(read)
        {
            Ok(handle) => FastLookup::new(State::Reading(handle), source),
            Err(e) => FastLookup::unavailable(format!(
                "cannot start a thread to read LuaJIT's fast-function names: {e}"
            )),
        }
    }

    /// `--luajit PATH`: that LuaJIT executable or library (a host path).
    /// A file that cannot be opened as ELF is an error now; its names are
    /// read at the first `builtin#N` frame.
    pub fn for_binary(path: &Path) -> Result<Arc<FastLookup>, String> {
        let module = Module::open(path).map_err(|e| format!("--luajit: {e}"))?;
        Ok(FastLookup::new(
            State::Opened(Box::new(module)),
            format!("--luajit {}", path.display()),
        ))
    }

    /// The names, read now if they were not yet.
    fn names(&self) -> Result<Arc<FastNames>, String> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let done = match guard.take() {
            Some(State::Reading(h)) => h
                .join()
                .unwrap_or_else(|_| Err("reading them failed".into()))
                .map(Arc::new),
            Some(State::Opened(m)) => ffnames::from_module(&m).map(Arc::new),
            Some(State::Done(d)) => d,
            None => Err("reading them failed".into()),
        };
        *guard = Some(State::Done(done.clone()));
        done
    }

    /// The name of fast function `id`, or `None` (the frame keeps its
    /// number; the first time, a warning says why).
    pub fn name(&self, id: u32) -> Option<String> {
        match self.names() {
            Ok(n) => match n.get(id) {
                Some(name) => Some(name.to_string()),
                None => {
                    let ids = n
                        .id_range()
                        .map_or("none".to_string(), |(a, b)| format!("{a} to {b}"));
                    self.note(format!(
                        "builtin#{id} is not a fast function of {}: its ids are {ids}; is \
                         that the LuaJIT that ran?",
                        self.source
                    ));
                    None
                }
            },
            // Said as it is when nothing was read (see `unavailable`).
            Err(why) if self.source.is_empty() => {
                self.note(why);
                None
            }
            Err(why) => {
                self.note(format!(
                    "cannot read LuaJIT's fast-function names from {}: {why}",
                    self.source
                ));
                None
            }
        }
    }

    fn note(&self, msg: String) {
        if !self.noted.swap(true, Ordering::Relaxed) {
            crate::ewriteln!("WARNING: builtin#N frames keep their numbers: {msg}");
        }
    }
}

/// The LuaJIT a live run's names come from: its path in the target's file
/// system, how to open it, and what it is (for messages).
fn locate(
    pid: Option<u32>,
    exe: Option<&Path>,
) -> Result<(PathBuf, LocateOptions, String), String> {
    if let Some(pid) = pid {
        let t = TargetInfo::from_pid(pid).map_err(|e| e.to_string())?;
        let opts = LocateOptions::with_root(format!("/proc/{pid}/root"));
        return Ok(match t.find_library("luajit").path() {
            Some(lib) => (
                lib.to_path_buf(),
                opts,
                format!("{}, mapped by process {pid}", lib.display()),
            ),
            None => (
                t.exe.clone(),
                opts,
                format!(
                    "{}, the executable of process {pid} (no libluajit is mapped)",
                    t.exe.display()
                ),
            ),
        });
    }
    let Some(exe) = exe else {
        return Err(
            "there is no traced process (-x, --master) or executable (--exec) to read them from"
                .into(),
        );
    };
    let libs = target::ldd_libraries(exe).unwrap_or_default();
    Ok(match target::find_library(&libs, "luajit").path() {
        Some(lib) => (
            lib.to_path_buf(),
            LocateOptions::default(),
            format!("{}, linked by {}", lib.display(), exe.display()),
        ),
        None => (
            exe.to_path_buf(),
            LocateOptions::default(),
            format!("{}, the executable (no libluajit linked)", exe.display()),
        ),
    })
}
