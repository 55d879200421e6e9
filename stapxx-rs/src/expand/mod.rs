//! The stapxx macro layer: turns `.sxx` text into plain SystemTap text.
//!
//! This is the first pass of the pipeline. It knows nothing of the stap
//! language: like OpenResty's `stap++` (a Perl script), it rewrites the text
//! line by line, and every construct it understands lies within one line.
//! Every output line comes from the input line with the same number, so the
//! parser's line numbers are the `.sxx` file's; a line holding only a binding
//! or an `@use` becomes an empty line.
//!
//! # What stap++ does (and what this module does)
//!
//! The rewriting is purely textual: it applies inside string literals (that
//! is how `"$^exec_path"` and `%( "$^arg_time :default()" != "" %? ...`
//! work), and also inside comments. On each line stap++ substitutes, in this
//! order: `$^arg_*` variables, `@pfunc(...)`, all other `$^` variables,
//! `$*` bindings, `$*` uses, `@use`. This module makes one left-to-right
//! pass per line instead, which gives the same text for every script that
//! stap++ accepts, except that a `$*NAME` used on the same line *before* its
//! binding is an error here. A first line starting with `#!` is replaced by
//! `#!/usr/bin/env stap` and nothing else on it is looked at.
//!
//! ## Built-in variables `$^NAME`
//!
//! `NAME` is a run of letters, digits and `_`. It may be followed by a trait,
//! `$^NAME :default(VALUE)`: optional blanks, a colon, the trait name, then
//! `(`, and the value is everything up to the *first* `)` (no nesting, no
//! quoting). The whole construct, trait included, is replaced by the value.
//! `default` is the only trait; stap++ complains about any other one with
//! "unknown trait name: X" (here: always, even when the variable has a value).
//!
//! A variable's value is looked up in this order:
//!
//! 1. A value fixed by the command line: `--arg NAME=V` for `$^arg_NAME`,
//!    and the target variables below.
//! 2. A default seen earlier in the run. stap++ stores the first default it
//!    meets as the variable's value for the rest of the run, across files:
//!    after `$^arg_time :default(5)`, a later plain `$^arg_time` (even in
//!    another module) is `5`, and a later `:default(10)` is ignored.
//! 3. This use's own default, which then becomes the stored value.
//! 4. Otherwise an error (or, for `$^libNAME_path`, a search).
//!
//! The variables:
//!
//! * `$^arg_NAME`: the value of `--arg NAME=V`. With neither value nor default
//!   stap++ stops with "`FILE: line N: $^arg_NAME is used but no --arg
//!   NAME=VAL option is specified.`". An `--arg` that the script and its
//!   modules never use draws, after expansion, the warning
//!   "`WARNING: $^arg_NAME is defined by "--arg NAME=VAL", but never used.`".
//! * `$^exec_path`: the `--exec PATH` (which must be an existing file), or
//!   the `--procs-of PATH`, else
//!   the link `/proc/PID/exe` of the `-x PID` process, else that of the
//!   `--master PID` process. Without any of them: "`$^exec_path is used but
//!   neither -x <pid> nor --exec <path> is specified.`".
//! * `$^libNAME_path` (any variable `lib` + word + `_path`): the shared
//!   library `libNAME` in the target. Candidates are the `*.so[.N...]` files
//!   mapped by the `-x` process (for `--master`, by its first child; also by
//!   `--sample-pid`), or listed by `ldd` for `--exec`. An exact
//!   `libNAME[-.0-9]*.so[.N]*` match wins, else a looser
//!   `[lib]NAME*.so[.N]*` one; further matches are ignored with a warning
//!   (see [`crate::target::find_library`]). If nothing matches, stap++ warns
//!   "`FILE: line N: libNAME is not found, assuming it is statically
//!   linked.`" and uses `$^exec_path` (an error if there is none). Here the
//!   same warning is kept aside ([`Expansion::assumed_static`]): a library
//!   linked into the executable is the normal case of a plain `luajit` or
//!   an nginx built with lua-nginx-module, and the tapsets look up more
//!   libraries than any one target has. The driver shows it with `-v`, and
//!   before an error about that executable, where the assumption may be
//!   why. The result is remembered per library, so it comes once. Note: the word
//!   after `$^` cannot contain `-` or `.`, so `$^libluajit-5.1_path` is the
//!   unknown variable `$^libluajit` followed by text; use `$^libluajit_path`.
//! * `$^target`: the `-x` pid; under `--master`, the children's pids at start
//!   joined by spaces (under `--procs-of`, the processes running the
//!   executable at start); with only `--exec` (or `--procs-of` and no such
//!   process), the word `ANY`.
//! * `$^pid_ok`: a stap condition selecting the traced processes:
//!   `pid() == target()` for `-x`, `1` with only `--exec`. Under `--master`
//!   (stap++: `(pid() == A || pid() == B)`, the children at start) and
//!   `--procs-of`, a call of a generated function that follows processes as
//!   they come and go; its code is added as one more file (see [`follow`]).
//! * anything else: "`Undefined built-in variable $^NAME.`"
//!
//! Values are inserted as they are, never re-scanned, except `--arg`
//! values: as stap++ expands `$^arg_NAME` before the rest of the line, a
//! value's own `$^exec_path`, `$^libNAME_path`, `@pfunc(...)` and `$*NAME`
//! are expanded (its `$^arg_` are not: no recursion). Since a value with a
//! newline would shift every later line, that is an error here.
//!
//! ## `@pfunc(NAME)`
//!
//! `@pfunc`, optional blanks, `(`, a function name, `)` becomes
//! `process("$^exec_path").function("NAME")`, with `$^exec_path` expanded.
//!
//! ## User variables `$*NAME`
//!
//! `$*NAME := @cast(...)` or `:= @var(...)`, optionally with a leading `&` and
//! a trailing `[N]`, binds the expression text to `$*NAME`; the binding is
//! removed from the line. Every later `$*NAME` in the same file is replaced by
//! that text, verbatim (no parentheses are added). Bindings belong to their
//! file: a module does not see the main script's and vice versa. Re-binding
//! replaces the old text. Using an unbound name is an error ("`Undefined user
//! varaible $*NAME.`", sic). stap++ ends the bound expression at the first
//! `)`; here the parentheses must balance (skipping string literals), which is
//! the same for every binding that stap++ handles correctly. Bound text is
//! expanded when bound, so it may itself use `$^` and `$*` variables.
//!
//! ## Modules: `@use a.b, c`
//!
//! `@use`, blanks, then a comma-separated list of dotted names. `a.b` is the
//! file `a/b.sxx`, searched in each directory of the search path in turn.
//! stap++'s path is its `-I` directories, then `.`, then the `tapset`
//! directory next to the script; here the caller passes the list
//! ([`ExpandOptions::search_path`]). The `@use` text is removed. A module is
//! expanded (with its own bindings, and the run's variables) where it is
//! first used; stap++ does not append it to the script but writes it as
//! `a.b.stp` into a temporary directory that it passes to stap with `-I`, so
//! modules are stap *tapset* files: stap pulls a tapset file in only when the
//! script refers to something it defines, and its `@define` macros stay
//! private to it. stap++ re-expands a module at every `@use` (and would loop
//! forever on a cycle); here each module is loaded once. A missing module:
//! "`FILE: line N: cannot find @use library a.b`".
//!
//! ## `--args` and `--dump-src`
//!
//! `--args` (which stap++ refuses together with `--arg`: "No --arg is allowed
//! when --args is specified.") expands everything in a lenient mode where a
//! variable without value or default becomes the empty string instead of an
//! error, then prints, sorted by name, one line per `$^arg_NAME` used
//! anywhere (modules included): a tab, `--arg NAME=VALUE` (the word
//! `VALUE`), and ` (default: D)` if a default was seen (the first one seen
//! wins). See [`ExpandMode::ListArgs`] and [`format_args_listing`].
//!
//! `--dump-src` prints the expanded main script (not the modules), then the
//! code `$^pid_ok` generated, if any (the script calls it), and exits,
//! before `--args` is handled and before the unused-`--arg` warnings.
//!
//! ## `-D` defaults
//!
//! stap++ passes `-D MAXACTION=100000`, `-D MAXMAPENTRIES=5000` and
//! `-D MAXBACKTRACE=200` unless the command line sets that macro itself
//! (a `-D NAME=...` with that name). It sets no `MAXSTRINGLEN`. See
//! [`DEFAULT_DEFINES`].

pub mod follow;
mod scan;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use grammar::{Diagnostic, FileId, SourceMap, Span};

use crate::target::TargetInfo;

/// The `-D NAME=VALUE` settings stap++ adds when the command line does not
/// set `NAME` itself.
pub const DEFAULT_DEFINES: [(&str, &str); 3] = [
    ("MAXACTION", "100000"),
    ("MAXMAPENTRIES", "5000"),
    ("MAXBACKTRACE", "200"),
];

/// What the expansion is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpandMode {
    /// Expand for running: every variable must have a value.
    #[default]
    Run,
    /// Expand only to collect the `$^arg_NAME`s for `--args`: `--arg` values
    /// are ignored, and a variable without value or default expands to the
    /// empty string. Missing modules and unbound `$*` names are still errors,
    /// as in stap++.
    ListArgs,
}

/// Everything the expansion needs from the command line and the target.
#[derive(Clone, Debug, Default)]
pub struct ExpandOptions {
    /// `--arg NAME=VALUE`, by name.
    pub args: BTreeMap<String, String>,
    /// The process whose executable and mapped libraries the script refers
    /// to: the `-x PID` process, or under `--master` the first child.
    pub target: Option<TargetInfo>,
    /// Under `--master`: the children at start (see
    /// [`crate::target::children_of`]); under `--procs-of`: the processes
    /// running the executable at start. When non-empty, `$^target` names
    /// these pids rather than `target`'s.
    pub workers: Vec<u32>,
    /// `--master`, `--procs-of`: the processes `$^pid_ok` follows as they
    /// come and go (see [`follow`]).
    pub follow: Option<follow::Follow>,
    /// `--exec PATH`, or under `--master` the master's `exe` link. Takes
    /// precedence over `target`'s executable for `$^exec_path`.
    pub exec_path: Option<PathBuf>,
    /// More candidate libraries for `$^libNAME_path`, besides those mapped by
    /// `target`: `ldd` of `--exec` ([`crate::target::ldd_libraries`]), the
    /// maps of `--sample-pid`.
    pub extra_libraries: Vec<PathBuf>,
    /// Where `@use` looks for modules, in order (stap++: the `-I` directories,
    /// then `.`, then the bundled tapsets).
    pub search_path: Vec<PathBuf>,
    pub mode: ExpandMode,
}

/// One expanded file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandedFile {
    /// The file in the [`SourceMap`], which holds the *original* text, so
    /// that diagnostics quote what the user wrote. Spans into [`Self::text`]
    /// must go through [`Self::map_span`] (or [`Expansion::map_span`]) first.
    pub id: FileId,
    /// The main script's name as given, or where a module was found.
    pub path: PathBuf,
    /// `Some("nginx.lua")` for a module, `None` for the main script.
    pub module: Option<String>,
    /// The expanded text, with as many lines as the original.
    pub text: String,
    /// Code the expansion wrote itself ([`follow`]), not a file of the
    /// user's.
    pub generated: bool,
    /// Replacements made, in text order.
    edits: Vec<Edit>,
}

/// One replacement: original bytes `orig` became expanded bytes `exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Edit {
    orig_start: usize,
    orig_end: usize,
    exp_start: usize,
    exp_end: usize,
}

impl ExpandedFile {
    /// The byte offset in the original text that corresponds to `offset` in
    /// [`Self::text`]. Text that came from a replacement maps to the start of
    /// the construct it replaced; other text maps to itself.
    pub fn original_offset(&self, offset: usize) -> usize {
        let i = self.edits.partition_point(|e| e.exp_start <= offset);
        match i.checked_sub(1).and_then(|i| self.edits.get(i)) {
            None => offset,
            Some(e) if offset < e.exp_end => e.orig_start,
            Some(e) => offset - e.exp_end + e.orig_end,
        }
    }

    /// Maps a span of the expanded text to the original text. Spans of other
    /// files are returned unchanged.
    pub fn map_span(&self, span: Span) -> Span {
        if span.file != self.id {
            return span;
        }
        let start = self.original_offset(span.start as usize);
        let end = self.original_offset(span.end as usize).max(start);
        Span::new(span.file, start, end)
    }
}

/// The result of [`expand_program`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The main script first, then the `@use` modules in the order they were
    /// first used (a module used inside a module comes right after it).
    pub files: Vec<ExpandedFile>,
    /// Every `$^arg_NAME` used anywhere, by `NAME`, with the first default
    /// seen for it (what `--args` lists).
    pub used_args: BTreeMap<String, Option<String>>,
    /// Warnings to show (ambiguous or replaced libraries; in
    /// [`ExpandMode::Run`] also `--arg`s that nothing uses).
    pub warnings: Vec<Diagnostic>,
    /// `$^libNAME_path`s that fell back to the executable because no such
    /// library is mapped: shown only with `-v` or with an error that names
    /// the executable (see the module notes).
    pub assumed_static: Vec<Assumption>,
}

/// A `$^libNAME_path` taken to be the executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assumption {
    /// "libNAME is not found, assuming it is statically linked (into EXE)",
    /// at the first use.
    pub warning: Diagnostic,
    /// The executable's path, as substituted.
    pub path: String,
}

impl Expansion {
    /// The expanded main script.
    pub fn main(&self) -> Option<&ExpandedFile> {
        self.files.first()
    }

    /// The expanded file registered as `id`.
    pub fn file(&self, id: FileId) -> Option<&ExpandedFile> {
        self.files.iter().find(|f| f.id == id)
    }

    /// Maps a span into expanded text back to the original text.
    pub fn map_span(&self, span: Span) -> Span {
        match self.file(span.file) {
            Some(f) => f.map_span(span),
            None => span,
        }
    }

    /// A diagnostic from a later pass, with its span moved to the original
    /// text so that [`Diagnostic::render`] quotes the right line and column.
    pub fn map_diagnostic(&self, mut diag: Diagnostic) -> Diagnostic {
        diag.span = diag.span.map(|s| self.map_span(s));
        for (s, _) in &mut diag.places {
            *s = self.map_span(*s);
        }
        diag
    }

    /// What `--args` prints.
    pub fn args_listing(&self) -> String {
        format_args_listing(&self.used_args)
    }
}

/// The `--args` listing: for each argument, sorted by name, a tab,
/// `--arg NAME=VALUE`, ` (default: D)` when it has a default, and a newline.
pub fn format_args_listing(used_args: &BTreeMap<String, Option<String>>) -> String {
    let mut out = String::new();
    for (name, default) in used_args {
        out.push_str("\t--arg ");
        out.push_str(name);
        out.push_str("=VALUE");
        if let Some(d) = default {
            out.push_str(" (default: ");
            out.push_str(d);
            out.push(')');
        }
        out.push('\n');
    }
    out
}

/// Expands the main script `main_text` (shown as `main_name`) and every
/// module it uses, registering each original text in `sources`.
///
/// Fails on the first error: an unknown `$^` variable or trait, a variable
/// with no value (in [`ExpandMode::Run`]), an unbound `$*` name, a malformed
/// binding, `@pfunc` or `@use`, a module that cannot be found or read, or a
/// value that would add a line. The error's span points into the original
/// text of the file where it happened.
pub fn expand_program(
    sources: &mut SourceMap,
    main_name: &str,
    main_text: &str,
    opts: &ExpandOptions,
) -> Result<Expansion, Diagnostic> {
    let mut ex = scan::Expander::new(sources, opts);
    let id = ex.sources.add(main_name, main_text);
    ex.expand_file(id, PathBuf::from(main_name), None, main_text)?;
    Ok(ex.finish())
}
