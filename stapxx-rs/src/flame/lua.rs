//! Names for Lua frames: `@path/to/mod.lua:LINE` (LINE: the line the
//! function is defined at, as `lj-lua-stacks.sxx` prints it) becomes
//! `MODULE:FUNC`, as OpenResty's `fix-lua-bt` does, but with a real Lua
//! parser (emmylua_parser) instead of a regular expression on one line.
//!
//! * MODULE comes from the path: the part after the last directory whose
//!   name ends in `lib` (`lualib/`, `lib/`) or is a Lua version (`5.1/`),
//!   where `package.path` keeps modules; without one, a relative path
//!   as it is and an absolute path's file name. A leading `./`, a `.lua`
//!   ending are dropped and `/` becomes `.`:
//!   `/usr/local/openresty/lualib/resty/core/base.lua` -> `resty.core.base`,
//!   `./app/init.lua` -> `app.init`, `/srv/x/bench.lua` -> `bench`.
//! * FUNC is the name of the function whose definition starts at LINE:
//!   `local function f`, `function M.f` / `function M:f` (the last part,
//!   `f`), `f = function`, `t.f = function`, `t["f"] = function`,
//!   `local f = function`, `{ f = function ... }`. An anonymous function
//!   gives the line number (`mod:123`), and so does a line where no
//!   function starts (a source changed since the run, or `detailed`
//!   backtraces). Line 0 is the main chunk: `mod:main`.
//! * `T:@file.lua:LINE` (where a JIT trace starts) becomes `T:mod:func`.
//! * `builtin#N` becomes the LuaJIT fast function's name (`string.byte`)
//!   when the run's LuaJIT gives it ([`super::fflookup`]).
//! * Frames of sources that cannot be read stay as printed; the first such
//!   file is named in one warning ([`Namer::warning`]).
//!
//! Sources are read from the traced process's view of the file system
//! (`/proc/PID/root`, relative names from `/proc/PID/cwd`), from a
//! `--lua-root DIR`, or from the current directory.

use super::fflookup::FastLookup;
use emmylua_parser::{
    LuaAstNode, LuaAstToken, LuaClosureExpr, LuaExpr, LuaFeaturesSet, LuaIndexKey,
    LuaLanguageLevel, LuaLocalFuncStat, LuaParser, LuaSyntaxKind, LuaTableField, LuaTokenKind,
    LuaVarExpr, ParserConfig,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Lua sources larger than this are not parsed.
const MAX_SOURCE: u64 = 8 << 20;
/// The Lua parser's stack.
const PARSE_STACK: usize = 64 << 20;
/// A definition's `function` keyword and its `(` are at most this many
/// lines apart for the line between them to name it.
const MAX_HEADER_LINES: u32 = 16;

/// What a frame is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameKind {
    /// A Lua function (`@file:line` or `=chunk:line`).
    Lua,
    /// A C function (`C:sym`, or a native frame of stap's symbolic
    /// backtraces: see [`native`](super::native)).
    C,
    /// A LuaJIT fast function (`builtin#N`).
    Builtin,
    /// Where the running JIT trace starts (`T:...`).
    Trace,
    /// Anything else (frames in other scripts' own formats).
    Other,
}

impl FrameKind {
    /// The kind of a frame as stap printed it.
    pub fn of(frame: &str) -> FrameKind {
        if frame.starts_with("C:") {
            FrameKind::C
        } else if frame.starts_with("builtin#") {
            FrameKind::Builtin
        } else if frame.starts_with("T:") {
            FrameKind::Trace
        } else if (frame.starts_with('@') || frame.starts_with('=')) && split_line(frame).is_some()
        {
            FrameKind::Lua
        } else {
            FrameKind::Other
        }
    }
}

/// `chunk:LINE` -> (`chunk`, LINE).
fn split_line(frame: &str) -> Option<(&str, u32)> {
    let (chunk, line) = frame.rsplit_once(':')?;
    if chunk.is_empty() || line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((chunk, line.parse().ok()?))
}

/// Where Lua source files are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRoot {
    /// Paths as they are (relative ones from the current directory).
    Host,
    /// `--lua-root DIR`: relative names under DIR; absolute names under DIR
    /// when there (a copy of the target's root), else as they are.
    Dir(PathBuf),
    /// A live process: absolute names under `/proc/PID/root`, relative ones
    /// under `/proc/PID/cwd`; as they are once the process is gone.
    Process(u32),
}

impl SourceRoot {
    /// The files to try for a chunk path, in order.
    fn candidates(&self, path: &str) -> Vec<PathBuf> {
        let p = Path::new(path);
        let rel = path.trim_start_matches('/');
        match self {
            SourceRoot::Host => vec![p.to_path_buf()],
            SourceRoot::Dir(dir) if p.is_absolute() => vec![dir.join(rel), p.to_path_buf()],
            SourceRoot::Dir(dir) => vec![dir.join(p)],
            // The target decides how its files are reached (a container's
            // root, links inside it).
            SourceRoot::Process(pid) => match crate::target::process_path(*pid, p) {
                Some(host) => vec![host],
                None => vec![p.to_path_buf()],
            },
        }
    }
}

/// The module name of a chunk's file path (see the module docs).
pub fn module_name(path: &str) -> String {
    let absolute = path.starts_with('/');
    let parts: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect();
    let Some((file, dirs)) = parts.split_last() else {
        return path.to_string();
    };
    let is_root_dir = |d: &str| {
        d.ends_with("lib")
            || (d.len() >= 3 && d.bytes().next().is_some_and(|b| b.is_ascii_digit()) && {
                let mut it = d.split('.');
                it.clone().count() == 2
                    && it.all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
            })
    };
    let start = match dirs.iter().rposition(|d| is_root_dir(d)) {
        Some(i) => i + 1,
        None if absolute => dirs.len(),
        None => 0,
    };
    let file = file
        .strip_suffix(".lua")
        .filter(|f| !f.is_empty())
        .unwrap_or(file);
    let mut name: Vec<&str> = dirs[start..].to_vec();
    name.push(file);
    name.join(".")
}

/// Where functions are defined in one source file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Functions {
    /// Line -> the function whose definition starts there (its name, or
    /// `None` when anonymous). The outermost one when several share a line.
    by_line: BTreeMap<u32, Option<String>>,
}

/// What a definition line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defined<'a> {
    /// The main chunk (line 0).
    Main,
    Named(&'a str),
    Anonymous,
    /// No function starts at the line.
    Nothing,
}

impl Functions {
    /// Parse Lua source text (any bytes: invalid UTF-8 is replaced, which
    /// keeps line numbers). Syntax errors leave out what they hide; a
    /// source nested deeper than Lua allows is refused (see [`nesting`]).
    ///
    /// [`nesting`]: super::nesting
    pub fn parse(source: &[u8]) -> Result<Functions, String> {
        super::nesting::check(source)?;
        let text = String::from_utf8_lossy(source).into_owned();
        // The parser recurses per syntax level: give it a stack of its own,
        // whatever thread calls. It is third-party code run on arbitrary
        // files: a panic there costs the names of this file, not the run.
        let worker = std::thread::Builder::new()
            .name("stapxx-lua-parse".into())
            .stack_size(PARSE_STACK)
            .spawn(move || Functions::parse_text(&text))
            .map_err(|e| format!("cannot start the Lua parser: {e}"))?;
        worker
            .join()
            .map_err(|_| "the Lua parser failed on it".to_string())
    }

    fn parse_text(text: &str) -> Functions {
        let lines = LineIndex::new(text);
        let config = ParserConfig::new(
            // LuaJIT 2 as it is: Lua 5.1 plus goto, no extension keywords
            // (`continue` stays a name, as in `goto continue`).
            LuaLanguageLevel::LuaJIT2,
            None,
            HashMap::new(),
            LuaFeaturesSet::new(Vec::new()),
            false,
        );
        let tree = LuaParser::parse(text, config);
        let mut by_line = BTreeMap::new();
        for closure in tree.get_chunk_node().descendants::<LuaClosureExpr>() {
            let (name, keyword) = definition(&closure);
            let keyword = keyword.unwrap_or_else(|| closure.syntax().clone().into());
            let first = lines.line(usize::from(keyword.text_range().start()));
            let paren = closure
                .get_params_list()
                .map(|p| lines.line(usize::from(p.get_range().start())))
                .unwrap_or(first);
            let last = paren.min(first.saturating_add(MAX_HEADER_LINES));
            for line in first..=last.max(first) {
                by_line.entry(line).or_insert_with(|| name.clone());
            }
        }
        Functions { by_line }
    }

    /// The function defined at `line`.
    pub fn at(&self, line: u32) -> Defined<'_> {
        if line == 0 {
            return Defined::Main;
        }
        match self.by_line.get(&line) {
            Some(Some(n)) => Defined::Named(n),
            Some(None) => Defined::Anonymous,
            None => Defined::Nothing,
        }
    }
}

/// The name a closure is defined under (None: anonymous) and the
/// `function` keyword that starts its definition.
fn definition(
    closure: &LuaClosureExpr,
) -> (Option<String>, Option<emmylua_parser::LuaSyntaxElement>) {
    let own_keyword = closure
        .token_by_kind(LuaTokenKind::TkFunction)
        .map(|t| t.syntax().clone().into());
    let Some(parent) = closure.syntax().parent() else {
        return (None, own_keyword);
    };
    let kind: LuaSyntaxKind = parent.kind().into();
    let stat_keyword = || {
        parent
            .children_with_tokens()
            .find(|c| c.kind() == LuaTokenKind::TkFunction.into())
            .or_else(|| own_keyword.clone())
    };
    match kind {
        LuaSyntaxKind::LocalFuncStat => {
            let name = LuaLocalFuncStat::cast(parent.clone())
                .and_then(|s| s.get_local_name())
                .and_then(|n| n.get_name_token())
                .map(|t| t.get_name_text().to_string());
            (name, stat_keyword())
        }
        LuaSyntaxKind::FuncStat => {
            let name = emmylua_parser::LuaFuncStat::cast(parent.clone())
                .and_then(|s| s.get_func_name())
                .and_then(|v| var_name(&v));
            (name, stat_keyword())
        }
        LuaSyntaxKind::AssignStat => {
            let name = emmylua_parser::LuaAssignStat::cast(parent.clone()).and_then(|s| {
                let (vars, exprs) = s.get_var_and_expr_list();
                let i = exprs.iter().position(|e| e.syntax() == closure.syntax())?;
                var_name(vars.get(i)?)
            });
            (name, own_keyword)
        }
        LuaSyntaxKind::LocalStat => {
            let name = emmylua_parser::LuaLocalStat::cast(parent.clone())
                .and_then(|s| s.get_local_name_by_value(LuaExpr::from(closure.clone())))
                .and_then(|n| n.get_name_token())
                .map(|t| t.get_name_text().to_string());
            (name, own_keyword)
        }
        LuaSyntaxKind::TableFieldAssign => {
            let name = LuaTableField::cast(parent.clone())
                .and_then(|f| f.get_field_key())
                .and_then(|k| key_name(&k));
            (name, own_keyword)
        }
        _ => (None, own_keyword),
    }
}

/// `f`, `t.f`, `t:f`, `t["f"]` -> `f`.
fn var_name(v: &LuaVarExpr) -> Option<String> {
    match v {
        LuaVarExpr::NameExpr(n) => n.get_name_text(),
        LuaVarExpr::IndexExpr(i) => key_name(&i.get_index_key()?),
    }
}

fn key_name(k: &LuaIndexKey) -> Option<String> {
    match k {
        LuaIndexKey::Name(n) => Some(n.get_name_text().to_string()),
        LuaIndexKey::String(s) => Some(s.get_value()).filter(|s| !s.is_empty()),
        _ => None,
    }
}

/// Byte offset -> line number (1-based), counting line breaks as Lua
/// does: `\n`, `\r`, `\r\n` and `\n\r` are one each.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let b = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'\n' || c == b'\r' {
                if i + 1 < b.len() && (b[i + 1] == b'\n' || b[i + 1] == b'\r') && b[i + 1] != c {
                    i += 1;
                }
                starts.push(i + 1);
            }
            i += 1;
        }
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> u32 {
        let n = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// Renames Lua frames, reading and parsing each source file once.
pub struct Namer {
    root: SourceRoot,
    files: HashMap<String, Option<Functions>>,
    /// Chunk paths whose source could not be read, with why (first first).
    missing: Vec<(String, String)>,
    /// Names for `builtin#N` (see [`Namer::with_fast_names`]).
    fast: Option<Arc<FastLookup>>,
}

impl Namer {
    pub fn new(root: SourceRoot) -> Namer {
        Namer {
            root,
            files: HashMap::new(),
            missing: Vec::new(),
            fast: None,
        }
    }

    /// Name `builtin#N` frames after LuaJIT's fast functions (`string.byte`)
    /// as `fast` gives them; without, they stay as printed.
    pub fn with_fast_names(mut self, fast: Option<Arc<FastLookup>>) -> Namer {
        self.fast = fast;
        self
    }

    /// The flame graph name of a frame as stap printed it.
    pub fn name(&mut self, frame: &str) -> String {
        if let Some(id) = frame.strip_prefix("builtin#") {
            let name = match (&self.fast, id.parse::<u32>()) {
                (Some(fast), Ok(id)) => fast.name(id),
                _ => None,
            };
            return name.unwrap_or_else(|| frame.to_string());
        }
        if let Some(rest) = frame.strip_prefix("T:") {
            if rest.starts_with('@') {
                return format!("T:{}", self.name(rest));
            }
            return frame.to_string();
        }
        let Some(path) = frame.strip_prefix('@') else {
            return frame.to_string();
        };
        let Some((path, line)) = split_line(path) else {
            return frame.to_string();
        };
        let module = module_name(path);
        let Some(functions) = self.functions(path) else {
            return frame.to_string();
        };
        match functions.at(line) {
            Defined::Main => format!("{module}:main"),
            Defined::Named(f) => format!("{module}:{f}"),
            Defined::Anonymous | Defined::Nothing => format!("{module}:{line}"),
        }
    }

    fn functions(&mut self, path: &str) -> Option<&Functions> {
        if !self.files.contains_key(path) {
            let parsed = self.read(path).and_then(|(file, bytes)| {
                Functions::parse(&bytes).map_err(|why| format!("{}: {why}", file.display()))
            });
            let parsed = match parsed {
                Ok(f) => Some(f),
                Err(why) => {
                    self.missing.push((path.to_string(), why));
                    None
                }
            };
            self.files.insert(path.to_string(), parsed);
        }
        self.files.get(path).and_then(Option::as_ref)
    }

    /// The file read for a chunk path, and its bytes.
    fn read(&self, path: &str) -> Result<(PathBuf, Vec<u8>), String> {
        let mut why = String::from("not found");
        for cand in self.root.candidates(path) {
            match std::fs::metadata(&cand) {
                Ok(m) if m.len() > MAX_SOURCE => {
                    why = format!("{}: larger than {} MiB", cand.display(), MAX_SOURCE >> 20);
                }
                Ok(m) if !m.is_file() => why = format!("{}: not a file", cand.display()),
                Ok(_) => match std::fs::read(&cand) {
                    Ok(b) => return Ok((cand, b)),
                    Err(e) => why = format!("{}: {e}", cand.display()),
                },
                Err(e) => why = format!("{}: {e}", cand.display()),
            }
        }
        Err(why)
    }

    /// One warning for every source that could not be read, if any.
    pub fn warning(&self) -> Option<String> {
        let ((_, why), rest) = self.missing.split_first()?;
        let more = match rest.len() {
            0 => String::new(),
            1 => " (and 1 more file)".to_string(),
            n => format!(" (and {n} more files)"),
        };
        Some(format!(
            "Lua frames keep their file:line names: cannot use the source {why}{more}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "#!/usr/bin/env luajit
local M = {}
local function foo() end
function M.bar() end
function M:baz(a) end
qux = function() end
M.x = function() end
local y = function() end
local t = { z = function() end, [\"w\"] = function() end, function() end }
M[\"s\"] = function() end
for i = 1, 2 do goto continue ::continue:: end
local function
  split
  (a, b)
  return function() end
end
return function() end
";

    #[test]
    fn finds_definitions() {
        let f = Functions::parse(SRC.as_bytes()).unwrap();
        assert_eq!(f.at(0), Defined::Main);
        assert_eq!(f.at(1), Defined::Nothing);
        assert_eq!(f.at(2), Defined::Nothing);
        assert_eq!(f.at(3), Defined::Named("foo"));
        assert_eq!(f.at(4), Defined::Named("bar"));
        assert_eq!(f.at(5), Defined::Named("baz"));
        assert_eq!(f.at(6), Defined::Named("qux"));
        assert_eq!(f.at(7), Defined::Named("x"));
        assert_eq!(f.at(8), Defined::Named("y"));
        // The first function of the line wins.
        assert_eq!(f.at(9), Defined::Named("z"));
        assert_eq!(f.at(10), Defined::Named("s"));
        assert_eq!(f.at(12), Defined::Named("split"));
        assert_eq!(f.at(13), Defined::Named("split"));
        assert_eq!(f.at(14), Defined::Named("split"));
        assert_eq!(f.at(15), Defined::Anonymous);
        assert_eq!(f.at(17), Defined::Anonymous);
    }

    #[test]
    fn line_breaks_count_as_in_lua() {
        let f =
            Functions::parse(b"-- a\r\n-- b\n\rlocal function f() end\rlocal function g() end\n")
                .unwrap();
        assert_eq!(f.at(3), Defined::Named("f"));
        assert_eq!(f.at(4), Defined::Named("g"));
    }

    #[test]
    fn broken_sources_do_not_fail() {
        for src in [
            &b"local function ("[..],
            b"function end end end",
            b"\xff\xfe\x00local function f() end",
            b"((((((((((((((((((((((((",
            b"",
        ] {
            assert!(Functions::parse(src).is_ok());
        }
        let deep = "x = ".to_string() + &"(".repeat(1_000_000);
        assert!(Functions::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn module_names() {
        assert_eq!(module_name("./app/init.lua"), "app.init");
        assert_eq!(module_name("app/init.lua"), "app.init");
        assert_eq!(
            module_name("/usr/local/openresty/lualib/resty/core/base.lua"),
            "resty.core.base"
        );
        assert_eq!(
            module_name("/usr/local/share/lua/5.1/resty/http.lua"),
            "resty.http"
        );
        assert_eq!(module_name("/srv/x/bench.lua"), "bench");
        assert_eq!(module_name("script"), "script");
        assert_eq!(module_name("../up/a.lua"), "up.a");
        assert_eq!(module_name(".lua"), ".lua");
    }

    #[test]
    fn kinds() {
        assert_eq!(FrameKind::of("C:pmain"), FrameKind::C);
        assert_eq!(FrameKind::of("builtin#21"), FrameKind::Builtin);
        assert_eq!(FrameKind::of("T:@a.lua:3"), FrameKind::Trace);
        assert_eq!(FrameKind::of("@a.lua:3"), FrameKind::Lua);
        assert_eq!(FrameKind::of("=stdin:0"), FrameKind::Lua);
        assert_eq!(FrameKind::of("main"), FrameKind::Other);
    }
}
