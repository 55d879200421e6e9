//! The line scanner behind [`super::expand_program`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use grammar::diag::Severity;
use grammar::{Diagnostic, FileId, SourceMap, Span};

use super::{Edit, ExpandMode, ExpandOptions, ExpandedFile, Expansion};
use crate::target::{find_library, LibMatch};

/// State shared by all files of one run.
pub(super) struct Expander<'a> {
    pub(super) sources: &'a mut SourceMap,
    opts: &'a ExpandOptions,
    /// Candidate DSOs for `$^libNAME_path`.
    libraries: Vec<PathBuf>,
    /// Values established by `:default(...)`, by variable name.
    defaults: HashMap<String, String>,
    /// Resolved `$^libNAME_path` values, by `NAME`.
    lib_paths: HashMap<String, String>,
    /// Every `$^` variable name met.
    used_vars: HashSet<String>,
    used_args: BTreeMap<String, Option<String>>,
    warnings: Vec<Diagnostic>,
    assumed_static: Vec<super::Assumption>,
    /// Modules already loaded (or being loaded), by dotted name.
    loaded: HashSet<String>,
    /// Expanded files in load order; a slot is reserved when a file starts so
    /// that a module comes before the modules it uses.
    files: Vec<Option<ExpandedFile>>,
    /// Expanding an `--arg` value: its own `$^arg_` values go in as they are.
    in_arg_value: bool,
    /// `$^pid_ok` became [`super::follow::PID_OK`]: its code is added.
    follow_used: bool,
}

/// Where scanned text goes: the file's output and its edit list, or a
/// scratch buffer when expanding a binding's text.
struct Sink<'s> {
    out: &'s mut String,
    edits: &'s mut Vec<Edit>,
}

/// Per-file state.
struct FileCtx {
    id: FileId,
    bindings: HashMap<String, String>,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Perl's `\s`, as far as it can occur within one line.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_blank(b[i]) {
        i += 1;
    }
    i
}

fn skip_word(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_word(b[i]) {
        i += 1;
    }
    i
}

/// A dotted module name `\w+(\.\w+)*` starting at `i`; returns its end.
fn dotted_name(b: &[u8], i: usize) -> Option<usize> {
    let mut end = skip_word(b, i);
    if end == i {
        return None;
    }
    while end + 1 < b.len() && b[end] == b'.' && is_word(b[end + 1]) {
        end = skip_word(b, end + 1);
    }
    Some(end)
}

/// The `)` matching the `(` at `open`, skipping string literals.
fn matching_paren(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn warning(span: Option<Span>, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning,
        message,
        span,
        notes: Vec::new(),
        places: Vec::new(),
    }
}

impl<'a> Expander<'a> {
    pub(super) fn new(sources: &'a mut SourceMap, opts: &'a ExpandOptions) -> Expander<'a> {
        let mut libraries: Vec<PathBuf> = opts
            .target
            .iter()
            .flat_map(|t| t.libraries())
            .chain(opts.extra_libraries.iter().cloned())
            .collect();
        libraries.sort();
        libraries.dedup();
        Expander {
            sources,
            opts,
            libraries,
            defaults: HashMap::new(),
            lib_paths: HashMap::new(),
            used_vars: HashSet::new(),
            used_args: BTreeMap::new(),
            warnings: Vec::new(),
            assumed_static: Vec::new(),
            loaded: HashSet::new(),
            files: Vec::new(),
            in_arg_value: false,
            follow_used: false,
        }
    }

    pub(super) fn finish(mut self) -> Expansion {
        if self.opts.mode == ExpandMode::Run {
            for (name, value) in &self.opts.args {
                if !self.used_vars.contains(&format!("arg_{name}")) {
                    self.warnings.push(warning(
                        None,
                        format!(
                            "$^arg_{name} is defined by \"--arg {name}={value}\", but never used."
                        ),
                    ));
                }
            }
        }
        let mut files: Vec<ExpandedFile> = self.files.into_iter().flatten().collect();
        if let (true, Some(f)) = (self.follow_used, &self.opts.follow) {
            // After the user's files: their line numbers stay as written.
            let text = f.source();
            let id = self.sources.add(super::follow::SOURCE_NAME, text.as_str());
            files.push(ExpandedFile {
                id,
                path: PathBuf::from(super::follow::SOURCE_NAME),
                module: None,
                text,
                generated: true,
                edits: Vec::new(),
            });
        }
        Expansion {
            files,
            used_args: self.used_args,
            warnings: self.warnings,
            assumed_static: self.assumed_static,
        }
    }

    /// Expands one file whose original `text` is registered as `id`.
    pub(super) fn expand_file(
        &mut self,
        id: FileId,
        path: PathBuf,
        module: Option<String>,
        text: &str,
    ) -> Result<(), Diagnostic> {
        let slot = self.files.len();
        self.files.push(None);
        let mut ctx = FileCtx {
            id,
            bindings: HashMap::new(),
        };
        let mut out = String::with_capacity(text.len());
        let mut edits = Vec::new();
        let mut line_start = 0;
        for (n, line) in text.split_inclusive('\n').enumerate() {
            let body = line.strip_suffix('\n').unwrap_or(line);
            if n == 0 && body.starts_with("#!") {
                let shebang = "#!/usr/bin/env stap";
                edits.push(Edit {
                    orig_start: 0,
                    orig_end: body.len(),
                    exp_start: 0,
                    exp_end: shebang.len(),
                });
                out.push_str(shebang);
            } else {
                let mut sink = Sink {
                    out: &mut out,
                    edits: &mut edits,
                };
                self.scan(&mut ctx, line_start, body, true, &mut sink)?;
            }
            out.push_str(&line[body.len()..]);
            line_start += line.len();
        }
        if let Some(s) = self.files.get_mut(slot) {
            *s = Some(ExpandedFile {
                id,
                path,
                module,
                text: out,
                generated: false,
                edits,
            });
        }
        Ok(())
    }

    /// Expands `s`, which starts at byte `base` of the current file and
    /// holds no newline, into `sink`. `top` is false inside a binding's
    /// text, where `@use` and further bindings are not recognised.
    fn scan(
        &mut self,
        ctx: &mut FileCtx,
        base: usize,
        s: &str,
        top: bool,
        sink: &mut Sink<'_>,
    ) -> Result<(), Diagnostic> {
        let b = s.as_bytes();
        let id = ctx.id;
        let span = |start: usize, end: usize| Span::new(id, base + start, base + end);
        let mut copied = 0;
        let mut i = 0;
        // Every construct starts and ends at an ASCII byte, so all slicing
        // below stays on character boundaries.
        let replace =
            |sink: &mut Sink<'_>, copied: &mut usize, start: usize, end: usize, with: &str| {
                sink.out.push_str(&s[*copied..start]);
                let exp_start = sink.out.len();
                sink.out.push_str(with);
                sink.edits.push(Edit {
                    orig_start: base + start,
                    orig_end: base + end,
                    exp_start,
                    exp_end: sink.out.len(),
                });
                *copied = end;
            };
        while i < b.len() {
            let next = |k: usize| b.get(i + k).copied().unwrap_or(0);
            if b[i] == b'$' && next(1) == b'^' && is_word(next(2)) {
                // $^NAME, maybe with ` :trait(value)`.
                let name_end = skip_word(b, i + 2);
                let name = &s[i + 2..name_end];
                let mut end = name_end;
                let mut trait_ = None;
                let j = skip_blanks(b, name_end);
                if b.get(j) == Some(&b':') {
                    let t_end = skip_word(b, j + 1);
                    let open = skip_blanks(b, t_end);
                    if t_end > j + 1 && b.get(open) == Some(&b'(') {
                        if let Some(close) = s[open + 1..].find(')') {
                            let close = open + 1 + close;
                            trait_ = Some((&s[j + 1..t_end], &s[open + 1..close]));
                            end = close + 1;
                        }
                    }
                }
                let mut value = self.eval_var(span(i, end), name, trait_)?;
                if name.starts_with("arg_") && !self.in_arg_value {
                    value = self.expand_arg_value(ctx, span(i, end), name, &value)?;
                }
                replace(sink, &mut copied, i, end, &value);
                i = end;
            } else if b[i] == b'$' && next(1) == b'*' && is_word(next(2)) {
                let name_end = skip_word(b, i + 2);
                let name = &s[i + 2..name_end];
                let j = skip_blanks(b, name_end);
                if top && s[j..].starts_with(":=") {
                    // $*NAME := [&]@cast(...)[N] or [&]@var(...)[N]
                    let expr = skip_blanks(b, j + 2);
                    let at = if b.get(expr) == Some(&b'&') {
                        expr + 1
                    } else {
                        expr
                    };
                    let open = if s[at..].starts_with("@cast(") {
                        at + 5
                    } else if s[at..].starts_with("@var(") {
                        at + 4
                    } else {
                        return Err(Diagnostic::error(
                            span(i, j + 2),
                            format!("$*{name} can only be bound to @cast(...) or @var(...)"),
                        )
                        .with_note(format!(
                            "write: $*{name} := @cast(EXPR, \"TYPE\", \"MODULE\")"
                        )));
                    };
                    let Some(close) = matching_paren(b, open) else {
                        return Err(Diagnostic::error(
                            span(at, b.len()),
                            format!("unbalanced parentheses in the binding of $*{name}"),
                        ));
                    };
                    let mut end = close + 1;
                    if b.get(end) == Some(&b'[') {
                        let digits_end = b[end + 1..]
                            .iter()
                            .position(|c| !c.is_ascii_digit())
                            .map_or(b.len(), |p| end + 1 + p);
                        if digits_end > end + 1 && b.get(digits_end) == Some(&b']') {
                            end = digits_end + 1;
                        }
                    }
                    let mut text = String::new();
                    let mut scratch = Vec::new();
                    let mut body_sink = Sink {
                        out: &mut text,
                        edits: &mut scratch,
                    };
                    self.scan(ctx, base + expr, &s[expr..end], false, &mut body_sink)?;
                    ctx.bindings.insert(name.to_string(), text);
                    replace(sink, &mut copied, i, end, "");
                    i = end;
                } else {
                    let Some(text) = ctx.bindings.get(name) else {
                        return Err(Diagnostic::error(
                            span(i, name_end),
                            format!("undefined user variable $*{name}"),
                        )
                        .with_note(format!(
                            "bind it earlier in this file: $*{name} := @cast(...) or @var(...)"
                        )));
                    };
                    let text = text.clone();
                    replace(sink, &mut copied, i, name_end, &text);
                    i = name_end;
                }
            } else if b[i] == b'@' && s[i..].starts_with("@pfunc") && !is_word(next(6)) {
                // @pfunc(NAME)
                let open = skip_blanks(b, i + 6);
                if b.get(open) != Some(&b'(') {
                    i += 6;
                    continue;
                }
                let n_start = skip_blanks(b, open + 1);
                let n_end = skip_word(b, n_start);
                let close = skip_blanks(b, n_end);
                if n_end == n_start || b.get(close) != Some(&b')') {
                    let end = s[open..].find(')').map_or(b.len(), |c| open + c + 1);
                    return Err(Diagnostic::error(
                        span(i, end),
                        "@pfunc expects one function name, as in @pfunc(ngx_http_process_request)",
                    ));
                }
                let exec = self.eval_var(span(i, close + 1), "exec_path", None)?;
                let with = format!("process(\"{}\").function(\"{}\")", exec, &s[n_start..n_end]);
                replace(sink, &mut copied, i, close + 1, &with);
                i = close + 1;
            } else if top && b[i] == b'@' && s[i..].starts_with("@use") && is_blank(next(4)) {
                // @use a.b, c
                let mut names = Vec::new();
                let mut k = skip_blanks(b, i + 4);
                let mut end;
                loop {
                    let Some(n_end) = dotted_name(b, k) else {
                        return Err(Diagnostic::error(
                            span(i, k.max(i + 4)),
                            "@use expects module names, as in @use nginx.lua, luajit",
                        ));
                    };
                    names.push((k, n_end));
                    end = n_end;
                    let comma = skip_blanks(b, n_end);
                    if b.get(comma) != Some(&b',') {
                        break;
                    }
                    k = skip_blanks(b, comma + 1);
                }
                for (n_start, n_end) in names {
                    self.use_module(span(n_start, n_end), &s[n_start..n_end])?;
                }
                replace(sink, &mut copied, i, end, "");
                i = end;
            } else {
                i += 1;
            }
        }
        sink.out.push_str(&s[copied..]);
        Ok(())
    }

    /// An `--arg` value after its own expansion, as stap++ does it (it
    /// expands `$^arg_` first, then the rest of the line, values
    /// included): `$^exec_path`, `$^libNAME_path`, `@pfunc(...)` and
    /// `$*NAME` in a value are expanded; `$^arg_` in a value is not (no
    /// recursion). An error in a value is reported at the `$^arg_NAME`
    /// that brought it in.
    fn expand_arg_value(
        &mut self,
        ctx: &mut FileCtx,
        at: Span,
        name: &str,
        value: &str,
    ) -> Result<String, Diagnostic> {
        if !value.contains("$^") && !value.contains("$*") && !value.contains("@pfunc") {
            return Ok(value.to_string());
        }
        let mut text = String::new();
        let mut scratch = Vec::new();
        let mut sink = Sink {
            out: &mut text,
            edits: &mut scratch,
        };
        let (nw, na) = (self.warnings.len(), self.assumed_static.len());
        self.in_arg_value = true;
        let r = self.scan(ctx, at.start as usize, value, false, &mut sink);
        self.in_arg_value = false;
        // Places inside the value are not places in the file: what the
        // value brought in is placed at the variable.
        for w in &mut self.warnings[nw..] {
            w.span = Some(at);
        }
        for a in &mut self.assumed_static[na..] {
            a.warning.span = Some(at);
        }
        let arg = name.strip_prefix("arg_").unwrap_or(name);
        r.map_err(|e| {
            Diagnostic::error(at, format!("in the value of --arg {arg}: {}", e.message))
                .with_note(format!("the value is: {value}"))
        })?;
        Ok(text)
    }

    /// Loads, registers and expands module `name` unless already loaded.
    fn use_module(&mut self, span: Span, name: &str) -> Result<(), Diagnostic> {
        if self.loaded.contains(name) {
            return Ok(());
        }
        // `a.b.c` is the file `a/b/c.sxx`.
        let mut rel: PathBuf = name.split('.').collect();
        rel.set_file_name(format!("{}.sxx", name.rsplit('.').next().unwrap_or(name)));
        let Some(path) = self
            .opts
            .search_path
            .iter()
            .map(|dir| dir.join(&rel))
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        else {
            let mut err = Diagnostic::error(span, format!("cannot find @use library {name}"));
            if self.opts.search_path.is_empty() {
                err = err.with_note("the module search path is empty");
            }
            for dir in &self.opts.search_path {
                err = err.with_note(format!("not found: {}", dir.join(&rel).display()));
            }
            return Err(err.with_note("add a directory to the search path with -I DIR"));
        };
        let bytes = std::fs::read(&path).map_err(|why| {
            Diagnostic::error(
                span,
                format!(
                    "cannot read @use library {name} from {}: {why}",
                    path.display()
                ),
            )
        })?;
        // Bytes that are not UTF-8 are an error at their own place.
        let text = grammar::decode_source(bytes)
            .map_err(|e| e.report(self.sources, &path.display().to_string()))?;
        self.loaded.insert(name.to_string());
        let id = self.sources.add(path.display().to_string(), text.as_str());
        self.expand_file(id, path, Some(name.to_string()), &text)
    }

    /// The value of `$^name` used at `span`, with an optional trait.
    fn eval_var(
        &mut self,
        span: Span,
        name: &str,
        trait_: Option<(&str, &str)>,
    ) -> Result<String, Diagnostic> {
        self.used_vars.insert(name.to_string());
        if let Some((t, _)) = trait_ {
            if t != "default" {
                return Err(Diagnostic::error(span, format!("unknown trait name: {t}"))
                    .with_note("the only trait is :default(VALUE)"));
            }
        }
        let default = trait_.map(|(_, v)| v);
        let arg = name.strip_prefix("arg_").filter(|a| !a.is_empty());
        if let Some(a) = arg {
            let seen = self.used_args.entry(a.to_string()).or_insert(None);
            if seen.is_none() {
                *seen = default.map(str::to_string);
            }
        }

        let value = match self.fixed_value(span, name, arg)? {
            Some(v) => v,
            None => match (self.defaults.get(name), default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => {
                    self.defaults.insert(name.to_string(), d.to_string());
                    d.to_string()
                }
                (None, None) if self.opts.mode == ExpandMode::ListArgs => String::new(),
                (None, None) => self.resolve(span, name, arg)?,
            },
        };
        if value.contains('\n') {
            return Err(Diagnostic::error(
                span,
                format!("the value of $^{name} contains a newline, which would shift the script's lines"),
            ));
        }
        Ok(value)
    }

    /// Values set by the command line and the target, before defaults.
    fn fixed_value(
        &mut self,
        span: Span,
        name: &str,
        arg: Option<&str>,
    ) -> Result<Option<String>, Diagnostic> {
        if let Some(a) = arg {
            if self.opts.mode == ExpandMode::ListArgs {
                return Ok(None);
            }
            return Ok(self.opts.args.get(a).cloned());
        }
        let opts = self.opts;
        Ok(match name {
            "exec_path" => match self.exec_path() {
                Some(p) => Some(path_text(span, p)?),
                None => None,
            },
            "target" => {
                if !opts.workers.is_empty() {
                    let pids: Vec<String> = opts.workers.iter().map(u32::to_string).collect();
                    Some(pids.join(" "))
                } else if let Some(t) = &opts.target {
                    Some(t.pid.to_string())
                } else {
                    self.exec_path().map(|_| "ANY".to_string())
                }
            }
            "pid_ok" => {
                if opts.follow.is_some() {
                    self.follow_used = true;
                    Some(super::follow::PID_OK.to_string())
                } else if opts.target.is_some() {
                    Some("pid() == target()".to_string())
                } else {
                    self.exec_path().map(|_| "1".to_string())
                }
            }
            _ => None,
        })
    }

    fn exec_path(&self) -> Option<&Path> {
        self.opts
            .exec_path
            .as_deref()
            .or(self.opts.target.as_ref().map(|t| t.exe.as_path()))
    }

    /// A variable with neither a value nor a default: a library search, or an
    /// error saying what is missing.
    fn resolve(&mut self, span: Span, name: &str, arg: Option<&str>) -> Result<String, Diagnostic> {
        if let Some(a) = arg {
            return Err(Diagnostic::error(
                span,
                format!("$^{name} is used but no --arg {a}=VAL option is specified"),
            )
            .with_note(format!("or give it a default: $^{name} :default(VALUE)")));
        }
        let lib = name
            .strip_prefix("lib")
            .and_then(|n| n.strip_suffix("_path"))
            .filter(|n| !n.is_empty());
        let no_target = |what: &str| {
            Diagnostic::error(
                span,
                format!("$^{what} is used but neither -x <pid> nor --exec <path> is specified"),
            )
        };
        match (name, lib) {
            ("exec_path", _) => Err(no_target(name)),
            ("target" | "pid_ok", _) => Err(Diagnostic::error(
                span,
                format!(
                    "$^{name} is used but none of -x <pid>, --master <pid> or --exec <path> is specified"
                ),
            )),
            (_, Some(lib)) => {
                if let Some(p) = self.lib_paths.get(lib) {
                    return Ok(p.clone());
                }
                let found = find_library(&self.libraries, lib);
                let value = match &found {
                    LibMatch::Exact { path, ambiguous } | LibMatch::Loose { path, ambiguous } => {
                        for other in ambiguous {
                            self.warnings.push(warning(
                                Some(span),
                                format!(
                                    "ignored ambiguous library {} for $^{name} (using {})",
                                    other.display(),
                                    path.display()
                                ),
                            ));
                        }
                        if let Some(t) = self.opts.target.as_ref().filter(|t| t.is_deleted(path)) {
                            self.warnings.push(warning(
                                Some(span),
                                format!(
                                    "{} was deleted or replaced after process {} mapped it: \
                                     what it runs is read from its mapping \
                                     (/proc/{}/map_files), not from the file now at that path",
                                    path.display(),
                                    t.pid,
                                    t.pid
                                ),
                            ));
                        }
                        path_text(span, path)?
                    }
                    LibMatch::NotFound => {
                        let Some(exe) = self.exec_path() else {
                            return Err(no_target(name));
                        };
                        let exe = path_text(span, exe)?;
                        self.assumed_static.push(super::Assumption {
                            warning: warning(
                                Some(span),
                                format!(
                                    "lib{lib} is not found, assuming it is statically linked (into {exe})"
                                ),
                            ),
                            path: exe.clone(),
                        });
                        exe
                    }
                };
                self.lib_paths.insert(lib.to_string(), value.clone());
                Ok(value)
            }
            _ => Err(
                Diagnostic::error(span, format!("undefined built-in variable $^{name}")).with_note(
                    "the built-in variables are $^exec_path, $^libNAME_path, $^arg_NAME, \
                     $^target and $^pid_ok",
                ),
            ),
        }
    }
}

/// A path as script text.
fn path_text(span: Span, path: &Path) -> Result<String, Diagnostic> {
    path.to_str().map(str::to_string).ok_or_else(|| {
        Diagnostic::error(
            span,
            format!("the path {} is not valid UTF-8", path.display()),
        )
    })
}
