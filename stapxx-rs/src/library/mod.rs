//! The tapset library: `.stp` files of the search path that a script uses
//! without naming them, as stap's pass 2 finds them.
//!
//! Input: the parsed script (and its `@use` modules) and the library
//! directories in precedence order. Output: the library files that define
//! what the script, transitively, calls (functions), probes (aliases) or
//! reads (globals); each is added whole, as stap does, so its other
//! functions, globals and probes come along.
//!
//! Precedence: the directories in the order given (`-I` directories, then
//! the bundled tapsets, then SystemTap's installed tree); inside each, as
//! stap searches a tapset directory, `linux/ARCH/`, `linux/`, `ARCH/`, then
//! the directory itself (so `x86_64/registers.stp` comes before the
//! generic `registers.stp`, whose functions are documentation stubs). The
//! first file that defines a name is the one used for it.
//!
//! Files are found by a lexical scan ([`scan`], kept between runs by
//! [`index`]) and parsed only when needed; a file that does not parse is skipped with a warning, as stap
//! skips a broken tapset.

pub mod index;
pub mod scan;

use crate::debuginfo::symbols::glob_match;
use crate::ir::builtins::is_builtin;
use grammar::ast::{ExprKind, File, FunctionBody, Item, ProbePoint};
use grammar::Diagnostic;
use index::Stamp;
use scan::Names;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One library file found on the search path.
pub struct Candidate {
    pub path: PathBuf,
    /// Read when scanned, else when first parsed (its scan came from the
    /// cache, [`index`]).
    text: std::sync::OnceLock<String>,
    names: Arc<Names>,
}

impl Candidate {
    /// The file's text (empty when it can no longer be read: it then
    /// defines nothing).
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| {
            std::fs::read(&self.path)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        })
    }
}

/// The candidate files of the library directories, in precedence order,
/// read and scanned the first time a name is wanted from them: a script
/// whose modules define all it uses (most stapxx scripts) never pays for
/// reading the whole tree (about 600 files, 3.8 MB; 35 ms and more).
pub struct Library {
    dirs: Vec<PathBuf>,
    files: std::sync::OnceLock<Vec<Candidate>>,
    /// The files being found on another thread ([`Library::start`]).
    finding: Mutex<Option<JoinHandle<Vec<Candidate>>>>,
}

/// The `.stp` files of one tapset directory, most specific first (see
/// the module notes).
fn tapset_files(dir: &Path) -> Vec<PathBuf> {
    let arch = std::env::consts::ARCH;
    let mut out = Vec::new();
    for sub in [
        dir.join("linux").join(arch),
        dir.join("linux"),
        dir.join(arch),
        dir.to_path_buf(),
    ] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "stp"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// One file's scan, from the cache when it is still the file scanned,
/// else read and scanned; `None` for what is not a readable regular file.
fn candidate(path: PathBuf, cache: &index::Index) -> Option<(Stamp, bool, Candidate)> {
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let stamp = Stamp::of(&meta);
    if let Some(names) = cache.get(&path, &stamp) {
        let c = Candidate {
            path,
            text: std::sync::OnceLock::new(),
            names: names.clone(),
        };
        return Some((stamp, false, c));
    }
    let bytes = std::fs::read(&path).ok()?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let names = Arc::new(scan::scan(&text));
    let c = Candidate {
        path,
        text: text.into(),
        names,
    };
    Some((stamp, true, c))
}

/// [`candidate`] for each of `paths` on a few threads (the files are
/// independent), keeping their order.
fn candidates(
    paths: Vec<PathBuf>,
    cache: &index::Index,
    threads: usize,
) -> Vec<Option<(Stamp, bool, Candidate)>> {
    if threads <= 1 {
        return paths.into_iter().map(|p| candidate(p, cache)).collect();
    }
    let chunk = paths.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<PathBuf>> = Vec::new();
    let mut it = paths.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(chunk).collect());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    c.into_iter()
                        .map(|p| candidate(p, cache))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// The candidate files of `dirs`, in precedence order: each scanned, or
/// its scan taken from the cache ([`index`]), which is rewritten when
/// anything was scanned.
/// `threads`: how many to share the files among.
fn find_files(dirs: &[PathBuf], threads: usize) -> Vec<Candidate> {
    let paths: Vec<PathBuf> = dirs.iter().flat_map(|d| tapset_files(d)).collect();
    let cache_file = index::cache_file();
    let mut cache = cache_file
        .as_deref()
        .map(index::Index::load)
        .unwrap_or_default();
    let found = candidates(paths, &cache, threads);
    let mut changed = false;
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    for (stamp, scanned, c) in found.into_iter().flatten() {
        if scanned {
            cache.insert(c.path.clone(), stamp, c.names.clone());
            changed = true;
        }
        // The same file reached twice (a symlink, `-I` naming the
        // system tree) is one file, at its first place.
        if seen.insert((stamp.dev, stamp.ino)) {
            files.push(c);
        }
    }
    if let (true, Some(path)) = (changed, &cache_file) {
        cache.prune();
        cache.save(path);
    }
    files
}

impl Library {
    /// The library of `dirs`; nothing is read yet (unreadable files are
    /// skipped when it is: a library file is only ever an offer).
    pub fn open(dirs: &[PathBuf]) -> Library {
        Library {
            dirs: dirs.to_vec(),
            files: std::sync::OnceLock::new(),
            finding: Mutex::new(None),
        }
    }

    /// [`Library::open`], finding the files on one other thread meanwhile
    /// (the script's parse runs on this one; one thread, not more, so as
    /// not to take the parse's core too): nearly every script asks the
    /// library about some name (see [`index`]).
    pub fn start(dirs: &[PathBuf]) -> Library {
        let lib = Library::open(dirs);
        let owned = dirs.to_vec();
        if let Ok(h) = std::thread::Builder::new().spawn(move || find_files(&owned, 1)) {
            *lib.finding.lock().unwrap_or_else(|p| p.into_inner()) = Some(h);
        }
        lib
    }

    /// The candidates, found on first use (scanned, or from the cache).
    fn files(&self) -> &[Candidate] {
        self.files.get_or_init(|| {
            let started = self
                .finding
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            match started.map(JoinHandle::join) {
                Some(Ok(files)) => files,
                // Waited for: as many threads as there are cores.
                _ => {
                    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                    find_files(&self.dirs, cores.clamp(1, 4))
                }
            }
        })
    }

    /// Every alias name the library's files may define (for "nearest"),
    /// when the library was read. It always is when a point needed it: a
    /// point no probe kind claims is looked up in the library, so the
    /// message about an unknown point always has these names.
    pub fn alias_names(&self) -> Vec<String> {
        let Some(files) = self.files.get() else {
            return Vec::new();
        };
        let mut v: Vec<String> = files
            .iter()
            .flat_map(|c| c.names.aliases.iter().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// How many files the library has, when it was read.
    pub fn read_len(&self) -> Option<usize> {
        self.files.get().map(Vec::len)
    }

    /// The library files `program` needs, in precedence order.
    /// `parse` turns a candidate into a file (`Err`: skipped, with the
    /// warning it returns).
    pub fn pull(
        &self,
        program: &[File],
        parse: &mut dyn FnMut(&Candidate) -> Result<File, Diagnostic>,
        warnings: &mut Vec<Diagnostic>,
    ) -> Vec<File> {
        let mut defs = Defined::default();
        for f in program {
            defs.add(f, 0);
        }
        let mut pulled: Vec<(usize, File)> = Vec::new();
        // Indexes into the files, grown when they are read.
        let mut taken: Vec<bool> = Vec::new();
        let mut failed: Vec<bool> = Vec::new();
        // Files whose references are still to be followed: indexes into
        // `program` then into `pulled`.
        let mut pending: Vec<Refs> = program.iter().map(refs).collect();
        while let Some(r) = pending.pop() {
            let mut want = Vec::new();
            // A name defined so far only by a file of lower precedence is
            // still wanted: a file before it on the search path may define
            // it too, and that definition is the one used (our bundled
            // `linux/task.stp` before the tree's, whichever was pulled in
            // first).
            for name in &r.calls {
                if defs.functions.get(name) != Some(&0) && !is_builtin(name) {
                    want.push(Want::Function(name.clone()));
                }
            }
            for name in &r.vars {
                if defs.globals.get(name) != Some(&0) {
                    want.push(Want::Global(name.clone()));
                }
            }
            for pt in r.points.iter().filter(|p| !crate::probes::claims(p)) {
                want.push(Want::Alias(pt.clone()));
            }
            if !want.is_empty() && taken.is_empty() {
                taken = vec![false; self.files().len()];
                failed = vec![false; self.files().len()];
            }
            for w in want {
                for (i, c) in self.files().iter().enumerate() {
                    if taken[i] || failed[i] || !w.may_be_in(&c.names) {
                        continue;
                    }
                    // Settled, by the program or by a file pulled for
                    // another name that comes before this one.
                    if w.settled(&defs, i + 1) {
                        break;
                    }
                    let file = match parse(c) {
                        Ok(f) => f,
                        Err(d) => {
                            failed[i] = true;
                            warnings.push(d);
                            continue;
                        }
                    };
                    if !w.defined_in(&file) {
                        continue;
                    }
                    taken[i] = true;
                    defs.add(&file, i + 1);
                    pending.push(refs(&file));
                    pulled.push((i, file));
                    // A function or global comes from its first file; an
                    // alias pattern may match aliases of many files.
                    if !matches!(w, Want::Alias(_)) {
                        break;
                    }
                }
            }
        }
        // In precedence order, so that where two pulled files define the
        // same name, the first directory's wins in pass 2 too.
        pulled.sort_by_key(|(i, _)| *i);
        pulled.into_iter().map(|(_, f)| f).collect()
    }
}

/// What the files taken so far define, each name with the rank of the
/// first file defining it: 0 for the program, 1 + its index for a
/// library file (lower ranks take precedence).
#[derive(Default)]
struct Defined {
    functions: HashMap<String, usize>,
    globals: HashMap<String, usize>,
}

impl Defined {
    fn add(&mut self, f: &File, rank: usize) {
        let keep = |m: &mut HashMap<String, usize>, n: &str| {
            let r = m.entry(n.to_string()).or_insert(rank);
            *r = (*r).min(rank);
        };
        for item in &f.items {
            match item {
                Item::Function(func) => keep(&mut self.functions, &func.name),
                Item::Global(g) => keep(&mut self.globals, &g.name),
                _ => {}
            }
        }
    }
}

/// A name a file uses that something must define.
enum Want {
    Function(String),
    Global(String),
    /// A probe point: any alias it matches (name or name prefix).
    Alias(ProbePoint),
}

impl Want {
    fn may_be_in(&self, n: &Names) -> bool {
        match self {
            Want::Function(f) => n.functions.contains(f),
            Want::Global(g) => n.globals.contains(g),
            Want::Alias(pt) => n
                .aliases
                .iter()
                .any(|a| alias_matches(&a.split('.').collect::<Vec<_>>(), pt)),
        }
    }

    /// Whether a file of rank `rank` or before already defines the name.
    fn settled(&self, defs: &Defined, rank: usize) -> bool {
        match self {
            Want::Function(f) => defs.functions.get(f).is_some_and(|&r| r <= rank),
            Want::Global(g) => defs.globals.get(g).is_some_and(|&r| r <= rank),
            Want::Alias(_) => false,
        }
    }

    fn defined_in(&self, file: &File) -> bool {
        file.items.iter().any(|item| match (self, item) {
            (Want::Function(n), Item::Function(f)) => &f.name == n,
            (Want::Global(n), Item::Global(g)) => &g.name == n,
            (Want::Alias(pt), Item::Alias(a)) => a.names.iter().any(|name| {
                let comps: Vec<&str> = name.components.iter().map(|c| c.name.as_str()).collect();
                alias_matches(&comps, pt)
            }),
            _ => false,
        })
    }
}

/// Whether an alias named `name` (components, no arguments) serves point
/// `pt`: component by component, the point's may be wildcards, and the
/// point may go on past the alias name (stap's alias suffixes:
/// `foo.return` through an alias `foo`).
pub fn alias_matches(name: &[&str], pt: &ProbePoint) -> bool {
    name.len() <= pt.components.len()
        && name
            .iter()
            .zip(&pt.components)
            .all(|(n, c)| c.arg.is_none() && glob_match(&c.name, n))
}

/// The names one file uses.
struct Refs {
    calls: Vec<String>,
    vars: Vec<String>,
    points: Vec<ProbePoint>,
}

fn refs(f: &File) -> Refs {
    let mut r = Refs {
        calls: Vec::new(),
        vars: Vec::new(),
        points: Vec::new(),
    };
    for item in &f.items {
        // A function's parameters and a foreach's or catch's variables
        // are locals, never library globals.
        let mut locals: HashSet<String> = HashSet::new();
        match item {
            Item::Probe(p) => r.points.extend(p.points.iter().cloned()),
            Item::Alias(a) => r.points.extend(a.points.iter().cloned()),
            Item::Function(func) => {
                locals.extend(func.params.iter().map(|p| p.name.clone()));
                if let FunctionBody::Script(b) = &func.body {
                    grammar::visit::bound_names(b, &mut locals);
                }
            }
            _ => {}
        }
        if let Item::Probe(grammar::ast::Probe { body, .. }) = item {
            grammar::visit::bound_names(body, &mut locals);
        }
        if let Item::Alias(a) = item {
            for b in a.prologue.iter().chain(&a.epilogue) {
                grammar::visit::bound_names(b, &mut locals);
            }
        }
        grammar::visit::walk_item(item, &mut |e| match &e.kind {
            ExprKind::Call { name, .. } => r.calls.push(name.clone()),
            ExprKind::Var(v) if !locals.contains(v) => r.vars.push(v.clone()),
            _ => {}
        });
    }
    r.calls.sort();
    r.calls.dedup();
    r.vars.sort();
    r.vars.dedup();
    r
}
