//! The pass pipeline, in order, each pass one call:
//!
//! 1. read the script, find the target (`-x`, `--master`, `--exec`)
//! 2. expand stapxx macros (`$^arg_x`, `@use`, ...) per file, line-preserving
//! 3. preprocess + parse every file (`-p1` stops here and prints the listing)
//! 4. resolve probe points and target variables (`-p2`)
//! 5. lower to IR and generate BPF (`-p3`); [`Session::translate_source`]
//!    runs 2 to 5 on a script given as text, for callers other than the
//!    command line (the fuzz targets)
//! 6. preflight (privileges per probe kind), load (`-p4`), run

use crate::cli::Options;
use crate::codegen;
use crate::expand::follow::Follow;
use crate::expand::{self, ExpandMode, ExpandOptions, Expansion};
use crate::ir;
use crate::loadinfo;
use crate::resolve::{self, modules::Modules};
use crate::runtime;
use crate::script_options;
use crate::system;
use crate::target::{self, watch::Watch, FileIdentity, TargetInfo};
use grammar::{ast, printer, Diagnostic, MacroTable, PpConfig, SourceMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Run the whole command; returns the process exit code.
pub fn run(opts: &Options) -> i32 {
    let mut session = Session::new(opts);
    match session.run() {
        Ok(()) => session.exit_code,
        Err(diag) => {
            crate::ewrite!("{}", diag.render(&session.sources));
            1
        }
    }
}

/// Everything one invocation knows: options and every source file read.
pub struct Session<'o> {
    pub opts: &'o Options,
    pub sources: SourceMap,
    /// The traced process (`-x`, or the first worker of `--master`, or the
    /// first process of `--procs-of`): what addresses are resolved against.
    pub target: Option<TargetInfo>,
    /// `--master`, `--procs-of`: the processes followed as they come and go.
    pub follow: Option<Follow>,
    /// `$^exec_path`: the executable `@cast`/`@var` default to.
    pub exec_path: Option<PathBuf>,
    /// The exit status of pass 5 (the script's run).
    pub exit_code: i32,
}

/// The parsed program: the main file first, then its `@use` modules; from
/// pass 2 on also the tapset library files it uses (`library/`).
pub struct Program {
    pub files: Vec<ast::File>,
    pub library: Vec<ast::File>,
    /// Every alias name of the library, pulled in or not (for "nearest").
    pub alias_names: Vec<String>,
}

/// What passes 0 to 3 make of a script ([`Session::translate_source`]).
pub struct Translated {
    /// The typed IR (`-p3`'s first listing).
    pub program: ir::Program,
    /// The BPF module, when the program has kernel probes.
    pub compiled: Option<codegen::Compiled>,
}

impl<'o> Session<'o> {
    pub fn new(opts: &'o Options) -> Session<'o> {
        Session {
            opts,
            sources: SourceMap::new(),
            target: None,
            follow: None,
            exec_path: None,
            exit_code: 0,
        }
    }

    /// A warning of passes 0 to 4, unless `-w` silences them.
    fn warn(&self, text: &str) {
        if !self.opts.cli.no_warnings {
            crate::ewrite!("{text}");
        }
    }

    /// With -v, how long each pass took (as stap -v reports its passes).
    fn timing(&self, pass: &str, since: &mut std::time::Instant) {
        if self.opts.cli.verbose > 0 {
            crate::ewriteln!("{pass} in {:.1} ms", since.elapsed().as_secs_f64() * 1000.0);
        }
        *since = std::time::Instant::now();
    }

    fn run(&mut self) -> Result<(), Diagnostic> {
        let mut t = std::time::Instant::now();
        let (name, text) = self.read_script()?;
        let opts = self.expand_options()?;
        let expansion = self.expand_text(&name, &text, &opts)?;
        self.timing("Pass 0: stapxx expansion", &mut t);
        // One warning per message: a library looked up from several files
        // is reported once.
        let mut seen = std::collections::HashSet::new();
        for w in &expansion.warnings {
            if seen.insert(w.message.clone()) {
                self.warn(&w.render(&self.sources));
            }
        }
        // A library taken to be linked into the executable is normal (a
        // plain luajit, an nginx with the Lua module built in): said with
        // -v, or below with an error that names the executable.
        if self.opts.cli.verbose > 0 {
            for a in &expansion.assumed_static {
                crate::ewrite!("{}", a.warning.render(&self.sources));
            }
        }
        if self.opts.cli.list_args {
            emit(&expansion.args_listing())?;
            return Ok(());
        }
        if self.opts.cli.dump_src {
            // The main script, and the code `$^pid_ok` became under
            // --master/--procs-of (it calls a function defined there).
            let shown = expansion.files.iter().enumerate();
            for (_, f) in shown.filter(|(i, f)| *i == 0 || f.generated) {
                emit(&f.text)?;
            }
            return Ok(());
        }
        // A target in a container: say that its pids are the host's.
        if self.opts.cli.pass >= 5 || self.opts.cli.verbose > 0 {
            let pid = self.target.as_ref().map(|t| t.pid);
            if let Some(note) = pid.and_then(target::ns::pid_namespace_note) {
                self.warn(&format!("WARNING: {note}\n"));
            }
        }
        // Every pass after the expansion reports spans in the expanded text;
        // move them to the original once, here.
        self.passes(&expansion, t).map_err(|d| {
            let d = expansion.map_diagnostic(d);
            if self.opts.cli.verbose == 0 {
                self.explain_assumptions(&expansion, &d);
            }
            d
        })
    }

    /// Before an error that names an executable some `$^libNAME_path`
    /// fell back to, the warnings that say so (the library may be missing
    /// rather than linked in: that would be why a type or symbol is not
    /// found there).
    fn explain_assumptions(&self, expansion: &Expansion, error: &Diagnostic) {
        let text = error.render(&self.sources);
        for a in &expansion.assumed_static {
            if text.contains(&a.path) {
                crate::ewrite!("{}", a.warning.render(&self.sources));
            }
        }
    }

    /// Passes 1 to 5 over the expanded program.
    fn passes(
        &mut self,
        expansion: &Expansion,
        mut t: std::time::Instant,
    ) -> Result<(), Diagnostic> {
        let prefetch = (self.opts.cli.pass >= 2).then(|| {
            resolve::modules::Prefetch::start(
                self.target.as_ref(),
                self.exec_path.as_deref(),
                expansion.files.iter().map(|f| f.text.as_str()),
            )
        });
        // The library's files are found meanwhile, on another thread.
        let library =
            (self.opts.cli.pass >= 2).then(|| crate::library::Library::start(&self.library_dirs()));
        let program = self.parse(expansion)?;
        self.timing("Pass 1: parsed the script and its modules", &mut t);
        if self.opts.cli.pass == 1 {
            let mut text = String::new();
            for (i, f) in program.files.iter().enumerate() {
                if expansion.file(f.id).is_some_and(|e| e.generated) {
                    text.push_str(&format!("# {}\n", self.sources.get(f.id).name));
                } else if i > 0 {
                    text.push_str(&format!("# @use {}\n", self.sources.get(f.id).name));
                }
                text.push_str(&printer::print_file(f));
            }
            emit(&text)?;
            return Ok(());
        }
        let mut program = program;
        if let Some(secs) = self.opts.cli.timeout {
            program.files[0]
                .items
                .push(script_options::timeout_probe(secs));
        }
        script_options::set_globals(&mut program.files, &self.opts.cli.globals)?;
        let program = self.pull_library(program, library)?;
        self.timing("Pass 2a: pulled in tapset library files", &mut t);
        let resolved = self.resolve(&program, self.opts.cli.pass >= 3, prefetch)?;
        for w in &resolved.warnings {
            self.warn(&w.render(&self.sources));
        }
        self.timing("Pass 2: resolved against debuginfo", &mut t);
        if self.opts.cli.pass == 2 {
            emit(&resolve::print(&resolved))?;
            return Ok(());
        }
        let program = ir::lower::lower(&resolved)?;
        if self.opts.cli.pass >= 4 {
            self.preflight(&program, expansion)?;
            self.warn_placement(&program);
        }
        let compiled = self.compile(&program, self.opts.cli.pass >= 4, &mut t)?;
        // The object is written at any pass that compiles (a run too).
        if let (Some(path), Some(c)) = (&self.opts.cli.dump_bpf, &compiled) {
            let elf = ebpf_backend::to_elf(&c.module)
                .map_err(|e| Diagnostic::bare(format!("writing the ELF object failed: {e}")))?;
            std::fs::write(path, elf)
                .map_err(|e| Diagnostic::bare(format!("cannot write {}: {e}", path.display())))?;
        }
        if self.opts.cli.pass == 3 {
            emit(&ir::print::print_program(&program))?;
            if let Some(c) = &compiled {
                let listing = c.listing(&self.sources).map_err(|e| {
                    Diagnostic::bare(format!("linking the BPF programs failed: {e}"))
                })?;
                emit(&listing)?;
            }
            return Ok(());
        }
        if self.opts.cli.pass == 4 {
            if let Some(c) = &compiled {
                let loaded = self.load(c, &program)?;
                self.timing("Pass 4: loaded into the kernel", &mut t);
                let mut text = String::new();
                for p in loaded.programs() {
                    text.push_str(&format!(
                        "{}: verified, {} instructions\n",
                        p.name(),
                        p.image().insns.len()
                    ));
                }
                emit(&text)?;
            }
            return Ok(());
        }
        let config = runtime::Config {
            target: self.target.as_ref().map(|t| t.pid),
            command: self.opts.cli.command.clone(),
            command_exe: self.command_exe().map(Path::to_path_buf),
            limits: runtime::Limits::from_defines(&self.opts.defines),
            skip_badvars: self.opts.cli.skip_badvars,
            verbose: self.opts.cli.verbose,
            signals: true,
            watch: self.watch(),
            interval: self.opts.cli.interval.map(std::time::Duration::from_secs),
        };
        let src = runtime::ScriptSources {
            sources: &self.sources,
            expansion,
        };
        if let Some(path) = &self.opts.cli.output {
            let file = std::fs::File::create(path).map_err(|e| {
                Diagnostic::bare(format!("-o: cannot write {}: {e}", path.display()))
            })?;
            runtime::output::set_output_file(file);
        }
        // Flame outputs (src/flame) learn the traced process and start
        // pushing; a no-op without those flags.
        crate::flame::start_run(self.opts, self.sources_pid(), self.exec_path.as_deref())
            .map_err(Diagnostic::bare)?;
        self.exit_code = match &compiled {
            // Host probes only (begin/end/error/timers): run them here.
            None => {
                if config.interval.is_some() {
                    crate::ewriteln!(
                        "WARNING: --interval cuts what kernel probes aggregate; this script \
                         has none, so it reports once, at its end"
                    );
                }
                runtime::run(&program, config, Some(&src))?
            }
            Some(c) => {
                runtime::kernel_bridge::run(&program, config, Some(&src), c, self.target.as_ref())?
            }
        };
        // Flame graphs (--flamegraph/--folded, src/flame): fold the
        // backtraces the run printed; a no-op without those flags.
        crate::flame::finish_live(self.opts).map_err(Diagnostic::bare)?;
        Ok(())
    }

    /// Passes 0 to 3 of a script given as text, as `-p3` runs them: the
    /// stapxx expansion with `opts` (from [`Session::expand_options`]),
    /// preprocessing with the library macros, parsing, pass 2 resolution
    /// against debuginfo, lowering and code generation. Nothing is loaded,
    /// run or printed. An error is placed in the script as written (render
    /// it with [`Session::sources`]).
    pub fn translate_source(
        &mut self,
        name: &str,
        text: &str,
        opts: &ExpandOptions,
    ) -> Result<Translated, Diagnostic> {
        let expansion = self.expand_text(name, text, opts)?;
        let passes = |s: &mut Self| -> Result<Translated, Diagnostic> {
            let parsed = s.parse(&expansion)?;
            let parsed = s.pull_library(parsed, None)?;
            let resolved = s.resolve(&parsed, true, None)?;
            let program = ir::lower::lower(&resolved)?;
            let compiled = s.compile(&program, false, &mut std::time::Instant::now())?;
            Ok(Translated { program, compiled })
        };
        passes(self).map_err(|d| expansion.map_diagnostic(d))
    }

    /// Pass 2: every probe point matched, target variables resolved
    /// (`prefetch`: start reading what pass 3 will need meanwhile).
    /// (`opened`: modules [`resolve::modules::Prefetch`] started opening).
    fn resolve(
        &self,
        program: &Program,
        prefetch: bool,
        opened: Option<resolve::modules::Prefetch>,
    ) -> Result<resolve::Resolved, Diagnostic> {
        let mut modules = Modules::new(self.target.as_ref(), self.exec_path.clone());
        modules.prefetch = prefetch;
        if let Some(p) = opened {
            modules.adopt(p);
        }
        let resolved = resolve::resolve(
            &program.files,
            &program.library,
            &program.alias_names,
            &mut modules,
            &self.opts.defines,
            self.opts.cli.skip_badvars,
        );
        if self.opts.cli.verbose > 0 {
            for line in modules.shipped_layouts() {
                crate::ewriteln!("Pass 2: {line}");
            }
        }
        resolved
    }

    /// Pass 3b, for a program with kernel probes: the load-time facts
    /// (`loading`: for a real load, not a listing) and the BPF module.
    fn compile(
        &self,
        program: &ir::Program,
        loading: bool,
        t: &mut std::time::Instant,
    ) -> Result<Option<codegen::Compiled>, Diagnostic> {
        if !codegen::has_kernel_probes(program) {
            return Ok(None);
        }
        let copts = loadinfo::codegen_options(
            self.opts,
            self.target.as_ref(),
            self.command_exe(),
            program,
            loading,
        )?;
        self.timing("Pass 3a: load-time facts (symbols, load biases)", t);
        if let (Some(_), Some(target), true) =
            (copts.ucfi, self.target.as_ref(), self.opts.cli.verbose > 0)
        {
            if let Ok(table) = crate::unwind::process_table(target) {
                for l in crate::unwind::table_lines(&table) {
                    crate::ewriteln!("{l}");
                }
            }
        }
        let c = codegen::compile(program, &copts)?;
        self.timing("Pass 3: lowered and generated BPF", t);
        if loading {
            if let Some(w) = check_footprint(&c, program, copts.ncpus)? {
                self.warn(&w);
            }
        }
        Ok(Some(c))
    }

    /// The executable of a `-c` command that has not run yet (no `-x`).
    fn command_exe(&self) -> Option<&Path> {
        self.exec_path
            .as_deref()
            .filter(|_| self.target.is_none() && self.opts.cli.command.is_some())
    }

    /// The script's name for messages and its text: `-e`'s, or the file's.
    fn read_script(&mut self) -> Result<(String, String), Diagnostic> {
        match (&self.opts.cli.source, &self.opts.file) {
            (Some(src), _) => Ok(("-e".to_string(), src.clone())),
            (None, Some(path)) => {
                let name = path.display().to_string();
                let text = crate::scriptfile::read(path, &name, &mut self.sources)?;
                Ok((name, text))
            }
            (None, None) => Err(Diagnostic::bare("no input file specified")),
        }
    }

    /// The stapxx expansion over `text` and its modules; the session's
    /// target and executable become `opts`'s.
    fn expand_text(
        &mut self,
        name: &str,
        text: &str,
        opts: &ExpandOptions,
    ) -> Result<Expansion, Diagnostic> {
        self.target = opts.target.clone();
        self.follow = opts.follow.clone();
        self.exec_path = opts
            .exec_path
            .clone()
            .or_else(|| opts.target.as_ref().map(|t| t.exe.clone()));
        expand::expand_program(&mut self.sources, name, text, opts)
    }

    /// What the stapxx expansion needs from the command line and the
    /// target: reads `/proc` (`-x`, `--master`, `--sample-pid`) and runs
    /// `ldd` (`--exec`), so a caller translating many scripts computes it
    /// once.
    pub fn expand_options(&self) -> Result<ExpandOptions, Diagnostic> {
        let cli = &self.opts.cli;
        if cli.list_args && !self.opts.args.is_empty() {
            return Err(Diagnostic::bare(
                "no --arg is allowed when --args is specified",
            ));
        }
        let mut opts = ExpandOptions {
            args: self.opts.args.clone(),
            exec_path: cli.exec.clone(),
            search_path: self.search_path(),
            mode: if cli.list_args {
                ExpandMode::ListArgs
            } else {
                ExpandMode::Run
            },
            ..ExpandOptions::default()
        };
        if let Some(pid) = cli.pid {
            opts.target = Some(TargetInfo::from_pid(pid).map_err(Diagnostic::from)?);
        }
        if let Some(master) = cli.master {
            // The workers are the traced processes; the master names the
            // executable, the first worker's maps name the libraries.
            let workers = target::children_of(master).map_err(Diagnostic::from)?;
            let Some(&first) = workers.first() else {
                return Err(Diagnostic::bare(format!(
                    "no child processes found for master {master}"
                )));
            };
            let master_info = TargetInfo::from_pid(master).map_err(Diagnostic::from)?;
            if opts.exec_path.is_none() {
                opts.exec_path = Some(master_info.exe.clone());
            }
            opts.target = Some(TargetInfo::from_pid(first).map_err(Diagnostic::from)?);
            opts.workers = workers;
            opts.follow = Some(Follow::Master { pid: master });
        }
        if let Some(path) = &cli.procs_of {
            procs_of(&mut opts, path)?;
        }
        if let Some(sample) = cli.sample_pid {
            // A sibling process's maps help find the libraries (stap++ does
            // the same with --sample-pid).
            let info = TargetInfo::from_pid(sample).map_err(Diagnostic::from)?;
            opts.extra_libraries.extend(info.libraries());
        }
        if let Some(cmd) = &cli.command {
            check_command(cmd)?;
        }
        if let (Some(cmd), None, None) = (&cli.command, &opts.exec_path, &opts.target) {
            // `-c CMD`: process probes without a path, `@cast`/`@var` and
            // `$^exec_path` mean CMD's executable, as with stap.
            opts.exec_path = command_executable(cmd);
        }
        if let (Some(exe), None) = (&cli.exec, &opts.target) {
            // Without a process, the executable's own dependencies stand in
            // for the mapped libraries (as stap++ does with ldd).
            opts.extra_libraries = target::ldd_libraries(exe).unwrap_or_default();
        }
        Ok(opts)
    }

    /// `.`, then the `-I` dirs, then the bundled tapsets, then SystemTap's
    /// installed tapset tree (see [`system_tapsets`]).
    pub fn search_path(&self) -> Vec<PathBuf> {
        let mut dirs = vec![PathBuf::from(".")];
        dirs.extend(self.opts.cli.include.iter().cloned());
        if let Some(bundled) = bundled_tapsets() {
            dirs.push(bundled);
        }
        if let Some(tree) = system_tapsets() {
            dirs.push(tree);
        }
        dirs
    }

    /// Pass 2a: the tapset library files the program uses, pulled in
    /// whole (`library/`); each is preprocessed and parsed as stap parses
    /// tapsets, in guru mode. A library file that does not parse is
    /// skipped with a warning.
    /// (`library`: the library already started, else it is opened here.)
    fn pull_library(
        &mut self,
        program: Program,
        library: Option<crate::library::Library>,
    ) -> Result<Program, Diagnostic> {
        let dirs = self.library_dirs();
        let library = library.unwrap_or_else(|| crate::library::Library::open(&dirs));
        let config = PpConfig {
            args: self.opts.script_args.clone(),
            ..system::pp_config(true)
        };
        // The macros (every `.stpm` file read again, in guru mode) only
        // when a library file is parsed: most scripts need none.
        let mut macros: Option<Result<MacroTable, Diagnostic>> = None;
        let mut warnings = Vec::new();
        let sources = &mut self.sources;
        let mut parse = |c: &crate::library::Candidate| {
            let table = macros.get_or_insert_with(|| library_macros(&dirs, &config, sources));
            let Ok(table) = table else {
                // Reported below, as an error of its own.
                return Err(Diagnostic::bare(String::new()));
            };
            let id = sources.add(c.path.display().to_string(), c.text().to_string());
            grammar::parse_source(id, c.text(), &config, table).map_err(|d| Diagnostic {
                severity: grammar::diag::Severity::Warning,
                message: format!(
                    "tapset '{}' has errors, and will be skipped: {}",
                    c.path.display(),
                    d.message
                ),
                ..d
            })
        };
        let pulled = library.pull(&program.files, &mut parse, &mut warnings);
        if let Some(Err(e)) = macros {
            return Err(e);
        }
        for w in warnings {
            self.warn(&w.render(&self.sources));
        }
        if self.opts.cli.verbose > 0 {
            match library.read_len() {
                Some(n) => crate::ewrite!("Pass 2a: {} of {n} library files used\n", pulled.len()),
                None => crate::ewrite!(
                    "Pass 2a: no library file needed (the script defines all it uses)\n"
                ),
            }
        }
        Ok(Program {
            files: program.files,
            library: pulled,
            alias_names: library.alias_names(),
        })
    }

    /// Preprocess and parse every expanded file.
    fn parse(&mut self, expansion: &Expansion) -> Result<Program, Diagnostic> {
        let config = PpConfig {
            args: self.opts.script_args.clone(),
            ..system::pp_config(self.opts.cli.guru)
        };
        let library = self.library_macros(&config)?;
        let mut files = Vec::new();
        for f in &expansion.files {
            let file = grammar::parse_source(f.id, &f.text, &config, &library)?;
            files.push(file);
        }
        Ok(Program {
            files,
            library: Vec::new(),
            alias_names: Vec::new(),
        })
    }

    /// The search path without `.`: the library's directories.
    fn library_dirs(&self) -> Vec<PathBuf> {
        self.search_path().into_iter().skip(1).collect()
    }

    /// Macros from every `.stpm` file in the search path.
    fn library_macros(&mut self, config: &PpConfig) -> Result<MacroTable, Diagnostic> {
        let dirs = self.library_dirs();
        library_macros(&dirs, config, &mut self.sources)
    }
}

/// Macros from every `.stpm` file of the library directories `dirs` (stap
/// loads its tapset directories' `.stpm` files before parsing the script).
fn library_macros(
    dirs: &[PathBuf],
    config: &PpConfig,
    sources: &mut SourceMap,
) -> Result<MacroTable, Diagnostic> {
    let mut table = MacroTable::new();
    let mut paths = Vec::new();
    for dir in dirs {
        collect_stpm(dir, &mut paths);
    }
    paths.sort();
    for path in paths {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let name = path.display().to_string();
        let text = grammar::decode_source(bytes).map_err(|e| e.report(sources, &name))?;
        let id = sources.add(name, text.clone());
        table.add_library_file(id, &text, config)?;
    }
    Ok(table)
}

/// `--procs-of PATH`: the executable, the processes running it now (the
/// first of them stands for all in what is resolved against one address
/// space), or, with none, its `ldd` libraries as `--exec` has them.
fn procs_of(opts: &mut ExpandOptions, path: &Path) -> Result<(), Diagnostic> {
    let what =
        |e: &dyn std::fmt::Display| Diagnostic::bare(format!("--procs-of {}: {e}", path.display()));
    let path = std::path::absolute(path).map_err(|e| what(&e))?;
    if !std::fs::metadata(&path).map_err(|e| what(&e))?.is_file() {
        return Err(what(&"not a regular file"));
    }
    let exe = FileIdentity::of(&path).map_err(|e| what(&e))?;
    let pids = target::processes_running(exe).map_err(Diagnostic::from)?;
    // One may exit while we look: take the first that can be read.
    opts.target = pids.iter().find_map(|&p| TargetInfo::from_pid(p).ok());
    if opts.target.is_none() {
        opts.extra_libraries = target::ldd_libraries(&path).unwrap_or_default();
    }
    opts.workers = pids;
    opts.exec_path = Some(path.clone());
    opts.follow = Some(Follow::Procs { path, exe });
    Ok(())
}

/// The `.stpm` files of one tapset directory that apply here: as stap does,
/// the directory itself, its `ARCH/` subdirectory, and the same under the
/// runtime's directory (`linux/` for the kernel runtime); other arches' and
/// runtimes' directories are skipped.
fn collect_stpm(dir: &Path, out: &mut Vec<PathBuf>) {
    let arch = std::env::consts::ARCH;
    for sub in [
        dir.to_path_buf(),
        dir.join(arch),
        dir.join("linux"),
        dir.join("linux").join(arch),
    ] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            // The name first: a stat of each of the tree's ~600 entries
            // costs more than reading the few `.stpm` files.
            if p.extension().is_some_and(|x| x == "stpm") && p.is_file() {
                out.push(p);
            }
        }
    }
}

/// Before loading: the memory the kernel maps would take, refused past
/// the bound and told when large (see [`crate::footprint`]).
fn check_footprint(
    c: &codegen::Compiled,
    program: &ir::Program,
    ncpus: u32,
) -> Result<Option<String>, Diagnostic> {
    let Some(mem) = crate::footprint::mem_total() else {
        return Ok(None);
    };
    let costs = crate::footprint::costs(c, program, ncpus);
    Ok(crate::footprint::check(&costs, mem)?.map(|w| w.render(&SourceMap::new())))
}

/// Write a pass's listing to standard output. A reader that went away
/// (`stapxx-rs -p2 ... | head`) ends the run quietly, as command-line tools
/// do (status 141, as if by SIGPIPE); any other write error is an error.
fn emit(text: &str) -> Result<(), Diagnostic> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        Err(e) => Err(Diagnostic::bare(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// A `-c` command whose program is a path that cannot be run is an error
/// before anything is loaded (the shell that runs it would only say so on
/// its own stderr, and the session would run on without a target).
fn check_command(cmd: &str) -> Result<(), Diagnostic> {
    use std::os::unix::fs::PermissionsExt;
    if cmd.trim().is_empty() {
        return Err(Diagnostic::bare("-c needs a command"));
    }
    let Some(first) = first_word(cmd) else {
        return Ok(()); // only the shell can tell
    };
    let first = first.as_str();
    if !first.contains('/') {
        return Ok(());
    }
    match std::fs::metadata(first) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(Diagnostic::bare(format!(
            "cannot run the -c command: {first} is not an executable file"
        ))),
        Err(e) => Err(Diagnostic::bare(format!(
            "cannot run the -c command: {first}: {e}"
        ))),
    }
}

/// The first word of a `-c` command as the shell reads it (quotes and
/// backslashes removed); `None` when only running the shell could tell
/// (an expansion: `$`, a backquote, a glob).
fn first_word(cmd: &str) -> Option<String> {
    let mut word = String::new();
    let mut chars = cmd.trim_start().chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => break,
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => word.push(c),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '$' | '`' => return None,
                    '\\' => word.push(chars.next()?),
                    c => word.push(c),
                }
            },
            '\\' => word.push(chars.next()?),
            '$' | '`' | '*' | '?' | '[' | '~' | ';' | '&' | '|' | '<' | '>' | '(' => return None,
            c => word.push(c),
        }
    }
    // `NAME=value prog`: an assignment, not the program.
    if let Some((name, _)) = word.split_once('=') {
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
    }
    (!word.is_empty()).then_some(word)
}

/// The executable a `-c` command runs: its first word, looked up in
/// `$PATH` when it has no `/` (as the shell that runs it does).
fn command_executable(cmd: &str) -> Option<PathBuf> {
    let first = first_word(cmd)?;
    let first = first.as_str();
    if first.contains('/') {
        return Some(PathBuf::from(first));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(first))
        .find(|p| p.is_file())
}

/// SystemTap's installed tapset tree: `$SYSTEMTAP_TAPSET` (stap's own
/// override), else where Debian's `systemtap-common` puts it, when present.
pub fn system_tapsets() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SYSTEMTAP_TAPSET") {
        return Some(PathBuf::from(dir));
    }
    let dir = Path::new("/usr/share/systemtap/tapset");
    dir.is_dir().then(|| dir.to_path_buf())
}

/// Where the bundled `tapsets/` directory is: `$STAPXX_TAPSETS`, next to the
/// binary (installed layout), or in the source tree it was built from.
pub fn bundled_tapsets() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("STAPXX_TAPSETS") {
        return Some(PathBuf::from(dir));
    }
    if let Ok(exe) = std::env::current_exe() {
        for anc in exe.ancestors().skip(1).take(4) {
            let cand = anc.join("tapsets");
            if cand.is_dir() {
                return Some(cand);
            }
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tapsets");
    built.is_dir().then_some(built)
}

impl Session<'_> {
    /// Before loading (`-p4`) or running: what each probe kind needs of
    /// this process (capabilities, tracefs, kallsyms, the target's memory)
    /// and the kernel's version; warnings are printed here, in the
    /// script's own positions.
    fn preflight(&self, program: &ir::Program, expansion: &Expansion) -> Result<(), Diagnostic> {
        use crate::preflight::{self, Stage};
        let stage = if self.opts.cli.pass == 4 {
            Stage::Load
        } else {
            Stage::Run
        };
        let target = self.target.as_ref().map(|t| t.pid);
        for w in preflight::check_program(program, stage, target)? {
            self.warn(&expansion.map_diagnostic(w).render(&self.sources));
        }
        if codegen::has_kernel_probes(program) {
            preflight::check_kernel()?;
        }
        Ok(())
    }

    /// What ends the session besides the script: the `-x` process's end;
    /// under `--master` the end of every master (workers come and go);
    /// under `--procs-of` nothing (processes come and go).
    fn watch(&self) -> Option<Watch> {
        match &self.follow {
            Some(Follow::Master { pid }) => Some(Watch::masters(*pid)),
            Some(Follow::Procs { .. }) => None,
            None => self.target.as_ref().map(TargetInfo::watch),
        }
    }

    /// The process whose root and working directory Lua source names are
    /// read through for flame graphs: the master outlives its workers.
    fn sources_pid(&self) -> Option<u32> {
        match &self.follow {
            Some(Follow::Master { pid }) => Some(*pid),
            _ => self.target.as_ref().map(|t| t.pid),
        }
    }

    /// Under `--procs-of`, a script whose kernel probes use addresses
    /// placed at load time (`@var`, symbol and unwind tables) gets them for
    /// one process: other processes of a position-independent executable
    /// are placed elsewhere, and read other memory there. Said once.
    fn warn_placement(&self, program: &ir::Program) {
        let (Some(Follow::Procs { path, .. }), Some(t)) = (&self.follow, &self.target) else {
            return;
        };
        let n = loadinfo::needs(program);
        if loadinfo::bias_modules(program).is_empty() && !n.unwind && !n.user_symbols && !n.mappings
        {
            return;
        }
        self.warn(&format!(
            "WARNING: --procs-of {}: @var addresses and the symbol and unwind tables are placed as in process {} (the first found); in processes of it placed at other addresses (address randomisation, other libraries) those reads see other memory\n",
            path.display(),
            t.pid
        ));
    }

    /// Load every program; a refusal names the script line or the probe
    /// ([`crate::load_error`]), a map the kernel refuses the global it is
    /// for ([`crate::footprint`]).
    fn load(
        &self,
        c: &codegen::Compiled,
        program: &ir::Program,
    ) -> Result<ebpf_backend::Loaded, Diagnostic> {
        let opts = ebpf_backend::LoadOptions::default();
        ebpf_backend::Loaded::load(&c.module, &opts).map_err(|e| {
            crate::footprint::load_error(&e, c, program).unwrap_or_else(|| {
                crate::load_error::diagnose(&e, c, program, self.opts.cli.verbose > 0)
            })
        })
    }
}
