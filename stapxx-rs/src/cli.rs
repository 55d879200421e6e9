//! The command line: everything `stap++` accepts, with the same meaning,
//! plus stap's `-p N` to stop after a pass and its script arguments
//! (`FILE ARGS...` or `-e SRC ARGS...`, for `$1`, `@1`, `$#` in the script).

use clap::{ArgAction, Parser};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "stapxx-rs",
    version,
    about = "Run SystemTap/stapxx scripts on eBPF, without a kernel module",
    after_help = "Examples:\n    stapxx-rs -x 12345 -e 'probe begin { println(\"hello\") exit() }'\n    stapxx-rs -e 'probe timer.ms($1) { println(@2) exit() }' 100 hello\n    stapxx-rs examples/lj-lua-stacks.sxx -x 12345 --arg time=5 --flamegraph a.svg\n    stapxx-rs flamegraph a.bt -o a.svg   (saved output to a flame graph; see `stapxx-rs flamegraph --help`)"
)]
pub struct Cli {
    /// The script to run (`.sxx` or `.stp`), then its arguments ($1 $2 ...
    /// unquoted, @1 @2 ... as strings, $# their count); with -e every word
    /// is an argument, as with stap. Use `--` before arguments that start
    /// with `-` (negative numbers need not).
    #[arg(value_name = "FILE [ARGS]", allow_negative_numbers = true)]
    pub words: Vec<String>,

    /// Run the given script text instead of a file.
    #[arg(short = 'e', value_name = "SRC")]
    pub source: Option<String>,

    /// Trace this process: target(), $^exec_path, $^libNAME_path.
    #[arg(short = 'x', value_name = "PID", conflicts_with = "master")]
    pub pid: Option<u32>,

    /// Trace every child of this (nginx master) process, also those started
    /// later (reloads, respawns, a binary upgrade's new master's).
    #[arg(long = "master", value_name = "PID")]
    pub master: Option<u32>,

    /// Trace every process running this executable, now and later (told
    /// by the file, not by its name): $^pid_ok, $^exec_path.
    #[arg(
        long = "procs-of",
        value_name = "PATH",
        conflicts_with_all = ["pid", "master", "exec"]
    )]
    pub procs_of: Option<PathBuf>,

    /// The executable for $^exec_path when no process is given.
    #[arg(long = "exec", value_name = "PATH")]
    pub exec: Option<PathBuf>,

    /// A value for $^arg_NAME (repeatable).
    #[arg(long = "arg", value_name = "NAME=VAL", action = ArgAction::Append)]
    pub args: Vec<String>,

    /// Print the $^arg_NAME arguments the script and its tapsets use, then exit.
    #[arg(long = "args")]
    pub list_args: bool,

    /// Print the script after stapxx expansion, then exit.
    #[arg(long = "dump-src")]
    pub dump_src: bool,

    /// Add a tapset search directory (after `.`, before the bundled tapsets).
    #[arg(short = 'I', value_name = "DIR", action = ArgAction::Append)]
    pub include: Vec<PathBuf>,

    /// Set a limit: MAXACTION, MAXMAPENTRIES, MAXSTRINGLEN, MAXERRORS,
    /// MAXNESTING, MAXBACKTRACE (other names are ignored, with a warning).
    #[arg(short = 'D', value_name = "NAME=VAL", action = ArgAction::Append)]
    pub defines: Vec<String>,

    /// Megabytes of buffer between kernel probes and stapxx-rs's output
    /// (default 16, at most 1024; rounded up to a power of two).
    #[arg(short = 's', value_name = "MB", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub buffer_mb: Option<u32>,

    /// Start this command and trace it (target() is its pid).
    #[arg(short = 'c', value_name = "CMD")]
    pub command: Option<String>,

    /// More output (repeatable).
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// Read failures give 0 instead of a probe error.
    #[arg(long = "skip-badvars")]
    pub skip_badvars: bool,

    /// A process whose maps stand in for the target's when resolving.
    #[arg(long = "sample-pid", value_name = "PID")]
    pub sample_pid: Option<u32>,

    /// Extra module for symbols (accepted for stap compatibility).
    #[arg(short = 'd', value_name = "PATH", action = ArgAction::Append)]
    pub debug_modules: Vec<PathBuf>,

    /// Stop after pass N: 1 parse, 2 resolve, 3 translate, 4 load, 5 run.
    #[arg(short = 'p', value_name = "N", value_parser = clap::value_parser!(u8).range(1..=5), default_value_t = 5)]
    pub pass: u8,

    /// With -p3: also write the BPF ELF object here (for bpftool/llvm-objdump).
    #[arg(long = "dump-bpf", value_name = "FILE.o")]
    pub dump_bpf: Option<PathBuf>,

    /// Guru mode (as stap -g): `guru_mode` is 1 in `%( %)` conditions.
    #[arg(short = 'g')]
    pub guru: bool,

    /// End the run after SECONDS, as `exit()` would (stap's -T): the `end`
    /// probes run and what was collected is reported.
    #[arg(short = 'T', value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub timeout: Option<u64>,

    /// Write the script's output to FILE instead of standard output
    /// (stap's -o; messages stay on standard error).
    #[arg(short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Do not print the warnings of passes 0 to 4 (stap's -w).
    #[arg(short = 'w')]
    pub no_warnings: bool,

    /// Start the script's global NAME at VALUE, a number or a string
    /// (stap's -G; repeatable).
    #[arg(short = 'G', value_name = "NAME=VALUE", action = ArgAction::Append)]
    pub globals: Vec<String>,

    /// Accepted for stap compatibility: the target's libraries are read
    /// as it maps them (or, under -c, as `ldd` lists them) anyway.
    #[arg(long = "ldd")]
    pub ldd: bool,

    /// Accepted for stap compatibility: this kernel loads no modules, so
    /// the kernel's own symbols are all there are.
    #[arg(long = "all-modules")]
    pub all_modules: bool,

    /// After the run, draw the backtraces it printed as a flame graph (SVG).
    #[arg(long = "flamegraph", value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,

    /// After the run, write the backtraces it printed as folded stacks.
    #[arg(long = "folded", value_name = "FILE")]
    pub folded: Option<PathBuf>,

    /// After the run, write the backtraces it printed as a pprof profile
    /// (gzipped profile.proto; samples taken every 1/CONFIG_HZ s, as
    /// timer.profile takes them).
    #[arg(long = "pprof", value_name = "FILE.pb.gz")]
    pub pprof: Option<PathBuf>,

    /// Push the backtraces the run printed, as a pprof profile, to this
    /// Grafana Pyroscope server (http:// or https://; its /ingest API).
    #[arg(long = "pyroscope", value_name = "URL")]
    pub pyroscope: Option<String>,

    /// The application name pushed profiles carry (default: the traced
    /// executable's file name, else stapxx-rs).
    #[arg(long = "pyroscope-app", value_name = "NAME")]
    pub pyroscope_app: Option<String>,

    /// A tag pushed profiles carry (repeatable).
    #[arg(long = "pyroscope-tag", value_name = "K=V", action = ArgAction::Append)]
    pub pyroscope_tags: Vec<String>,

    /// Megabytes of profiles kept while the server does not take them
    /// (default 64); what does not fit is dropped and reported.
    #[arg(long = "push-buffer", value_name = "MB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub push_buffer_mb: Option<u64>,

    /// Seconds a profile is kept for the server at most (default 300);
    /// older ones are dropped and reported.
    #[arg(long = "push-max-age", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub push_max_age_s: Option<u64>,

    /// Read the Lua sources that name Lua frames under DIR (default: the
    /// traced process's root and working directory).
    #[arg(long = "lua-root", value_name = "DIR")]
    pub lua_root: Option<PathBuf>,

    /// Every SECONDS, end an interval as a run ends: the statistics the
    /// kernel probes aggregate start afresh and the `end` probes report
    /// the interval's; --flamegraph/--folded/--pprof files are numbered
    /// (`a.svg` -> `a.1.svg`, ...).
    #[arg(long = "interval", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub interval: Option<u64>,
}

/// `stapxx-rs flamegraph`: saved backtrace output to a flame graph.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "stapxx-rs flamegraph",
    version,
    about = "Draw saved stap backtrace output (e.g. from lj-lua-stacks.sxx) as a flame graph",
    after_help = "Examples:\n    stapxx-rs examples/lj-lua-stacks.sxx -x 12345 --arg time=5 > a.bt\n    stapxx-rs flamegraph a.bt -o a.svg --lua-root /proc/12345/root"
)]
pub struct FlameCli {
    /// The saved output (frame lines, then a `\t<count>` line per
    /// backtrace); standard input when absent or `-`.
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,

    /// Write here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Read the Lua sources that name Lua frames under DIR (default: the
    /// paths as they are, relative ones from the current directory).
    #[arg(long = "lua-root", value_name = "DIR")]
    pub lua_root: Option<PathBuf>,

    /// Write folded stacks (`root;...;leaf count`) instead of an SVG.
    #[arg(long = "folded")]
    pub folded: bool,

    /// Write a pprof profile (gzipped profile.proto) instead of an SVG.
    #[arg(long = "pprof", conflicts_with = "folded")]
    pub pprof: bool,

    /// The sampling period behind each count, in nanoseconds, for the
    /// pprof profile's cpu time (default: 1/CONFIG_HZ of this machine,
    /// timer.profile's).
    #[arg(long = "period-ns", value_name = "NS")]
    pub period_ns: Option<u64>,

    /// The SVG's title.
    #[arg(long = "title", value_name = "TEXT")]
    pub title: Option<String>,

    /// The LuaJIT that ran (its executable, or the libluajit it used), with
    /// debug info: `builtin#N` frames get its fast functions' names
    /// (`string.byte`).
    #[arg(long = "luajit", value_name = "PATH")]
    pub luajit: Option<PathBuf>,
}

/// The command line after validation.
#[derive(Debug, Clone)]
pub struct Options {
    pub cli: Cli,
    /// The script file (none with `-e`).
    pub file: Option<PathBuf>,
    /// The script's own arguments, for `$1`, `@1`, `$#`.
    pub script_args: Vec<String>,
    /// `--arg` values by name.
    pub args: BTreeMap<String, String>,
    /// `-D` values, the defaults of the limits filled in (see
    /// [`crate::limits`]).
    pub defines: BTreeMap<String, String>,
    /// What the command line asks that is ignored (unknown `-D` names),
    /// one line each, printed before anything runs.
    pub warnings: Vec<String>,
}

impl Options {
    /// Validate the parsed flags; the error is one line for the user.
    pub fn from_cli(cli: Cli) -> Result<Options, String> {
        // stap takes every word as an argument once -e gave the script,
        // wherever -e stands.
        let mut words = cli.words.clone().into_iter();
        let file = match cli.source {
            Some(_) => None,
            None => match words.next() {
                Some(f) => Some(PathBuf::from(f)),
                None => return Err("no input file specified (give FILE or -e SRC)".into()),
            },
        };
        let script_args = words.collect();
        if cli.command.is_some()
            && (cli.pid.is_some() || cli.master.is_some() || cli.procs_of.is_some())
        {
            return Err("-c cannot be combined with -x, --master or --procs-of".into());
        }
        crate::flame::pyroscope::config::check_cli(&cli)?;
        let mut args = BTreeMap::new();
        for a in &cli.args {
            let (k, v) = split_pair(a, "--arg")?;
            args.insert(k, v);
        }
        let mut defines: BTreeMap<String, String> = crate::limits::LIMITS
            .iter()
            .map(|l| (l.name.to_string(), l.default.to_string()))
            .collect();
        let mut warnings = Vec::new();
        for d in &cli.defines {
            let (k, v) = match d.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (d.as_str(), None),
            };
            // A C macro name, as stap requires.
            let name_ok = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                return Err(format!("bad -D value '{d}': expected NAME=VAL"));
            }
            warnings.extend(crate::limits::check(k, v)?);
            defines.insert(k.to_string(), v.unwrap_or_default().to_string());
        }
        Ok(Options {
            cli,
            file,
            script_args,
            args,
            defines,
            warnings,
        })
    }

    /// A `-D` limit (checked), or its default; `None` for a name that is
    /// not a limit.
    pub fn limit(&self, name: &str) -> Option<u64> {
        crate::limits::limit(name).map(|_| crate::limits::value(&self.defines, name))
    }
}

fn split_pair(s: &str, flag: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v))
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!("bad {flag} value '{s}': expected NAME=VALUE")),
    }
}

/// Parse the process arguments. Help and version print and exit 0; any
/// other problem prints one line and exits 1.
pub fn parse_args<I, T>(argv: I) -> Options
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // Arguments that are not UTF-8 get an error that shows where.
    let argv = crate::cli_utf8::checked(argv.into_iter().map(Into::into).collect());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => clap_exit(e),
    };
    match Options::from_cli(cli) {
        Ok(o) => {
            if !o.cli.no_warnings {
                for w in &o.warnings {
                    crate::ewriteln!("stapxx-rs: warning: {w}");
                }
            }
            o
        }
        Err(msg) => {
            crate::ewriteln!("stapxx-rs: {msg}");
            std::process::exit(1);
        }
    }
}

/// Parse the arguments after `stapxx-rs flamegraph`, as [`parse_args`]
/// does (help and version exit 0, errors print one line and exit 1).
pub fn parse_flame_args<I, T>(args: I) -> FlameCli
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let argv = std::iter::once(std::ffi::OsString::from("stapxx-rs flamegraph"))
        .chain(args.into_iter().map(Into::into));
    match FlameCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => clap_exit(e),
    }
}

/// Print a clap error (one line) or the help/version text, and exit.
fn clap_exit(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Not print!: it panics when stdout cannot be written.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match write!(out, "{e}").and_then(|()| out.flush()) {
                Ok(()) => std::process::exit(0),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
                Err(e) => {
                    crate::ewriteln!("stapxx-rs: cannot write to standard output: {e}");
                    std::process::exit(1);
                }
            }
        }
        _ => {
            let text = e.to_string();
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("bad command line")
                .trim_start_matches("error: ");
            crate::ewriteln!("stapxx-rs: {line}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        let cli = Cli::try_parse_from(std::iter::once("stapxx-rs").chain(args.iter().copied()))
            .map_err(|e| e.kind().to_string())?;
        Options::from_cli(cli)
    }

    #[test]
    fn defaults_match_stapxx() {
        let o = parse(&["x.sxx"]).unwrap();
        assert_eq!(o.limit("MAXACTION"), Some(100000));
        assert_eq!(o.limit("MAXMAPENTRIES"), Some(5000));
        assert_eq!(o.limit("MAXBACKTRACE"), Some(200));
        assert_eq!(o.limit("MAXSTRINGLEN"), Some(4096));
        assert_eq!(o.cli.pass, 5);
    }

    #[test]
    fn args_and_defines() {
        let o = parse(&[
            "x.sxx",
            "--arg",
            "time=5",
            "--arg",
            "depth=30",
            "-D",
            "MAXACTION=7",
            "-x",
            "42",
        ])
        .unwrap();
        assert_eq!(o.args.get("time").map(String::as_str), Some("5"));
        assert_eq!(o.args.get("depth").map(String::as_str), Some("30"));
        assert_eq!(o.limit("MAXACTION"), Some(7));
        assert_eq!(o.cli.pid, Some(42));
    }

    #[test]
    fn defines_are_checked() {
        let o = parse(&["x.sxx", "-D", "MAXSTRINGLEN=0x100", "-D", "FOO=bar"]).unwrap();
        assert_eq!(o.limit("MAXSTRINGLEN"), Some(256));
        assert_eq!(o.limit("MAXERRORS"), Some(0));
        assert_eq!(o.limit("FOO"), None);
        assert_eq!(o.warnings.len(), 1);
        assert!(o.warnings[0].starts_with("-D FOO=bar is ignored"));
        assert!(parse(&["x.sxx", "-D", "MAXACTION=lots"]).is_err());
        assert!(parse(&["x.sxx", "-D", "1X=2"]).is_err());
    }

    #[test]
    fn conflicts_are_errors() {
        assert!(parse(&["x.sxx", "-x", "1", "--master", "2"]).is_err());
        assert!(parse(&[]).is_err());
        assert!(parse(&["x.sxx", "--arg", "novalue"]).is_err());
        assert!(parse(&["x.sxx", "-p", "6"]).is_err());
        assert!(parse(&["x.sxx", "--bogus"]).is_err());
        assert!(parse(&["x.sxx", "-c", "ls", "-x", "3"]).is_err());
    }

    #[test]
    fn script_arguments() {
        let o = parse(&["x.stp", "-x", "4", "5", "-7", "--", "-v", "a b"]).unwrap();
        assert_eq!(o.file, Some(PathBuf::from("x.stp")));
        assert_eq!(o.script_args, ["5", "-7", "-v", "a b"]);
        assert_eq!(o.cli.pid, Some(4));
        assert_eq!(o.cli.verbose, 0);
        // With -e, the first word is an argument too, before or after -e.
        let o = parse(&["x.sxx", "-e", "probe begin {}", "1"]).unwrap();
        assert_eq!(o.file, None);
        assert_eq!(o.script_args, ["x.sxx", "1"]);
        let o = parse(&["-p1", "x.stp"]).unwrap();
        assert!(o.script_args.is_empty());
    }

    #[test]
    fn pyroscope_flags_are_checked() {
        let o = parse(&[
            "x.sxx",
            "--pyroscope",
            "http://127.0.0.1:4040",
            "--pyroscope-tag",
            "env=test",
            "--pyroscope-tag",
            "host=a1",
            "--push-buffer",
            "8",
        ])
        .unwrap();
        assert_eq!(o.cli.pyroscope_tags, ["env=test", "host=a1"]);
        assert_eq!(o.cli.push_buffer_mb, Some(8));
        let err = |args: &[&str]| parse(args).unwrap_err();
        assert_eq!(
            err(&["x.sxx", "--pyroscope", "localhost:4040"]),
            "bad --pyroscope URL 'localhost:4040': the scheme must be http or https, not 'localhost'"
        );
        assert_eq!(
            err(&["x.sxx", "--pyroscope", "http://h", "--pyroscope-tag", "env"]),
            "bad --pyroscope-tag 'env': expected KEY=VALUE"
        );
        assert_eq!(
            err(&["x.sxx", "--pyroscope-app", "a"]),
            "--pyroscope-app needs --pyroscope URL"
        );
        assert!(parse(&["x.sxx", "--pyroscope", "http://h", "--push-buffer", "0"]).is_err());
    }

    #[test]
    fn flame_graph_flags() {
        let o = parse(&["x.sxx", "--flamegraph", "a.svg", "--folded", "a.folded"]).unwrap();
        assert_eq!(o.cli.flamegraph, Some(PathBuf::from("a.svg")));
        assert_eq!(o.cli.folded, Some(PathBuf::from("a.folded")));
        let f = FlameCli::try_parse_from(["fg", "in.bt", "-o", "x.svg", "--folded"]).unwrap();
        assert_eq!(f.input, Some(PathBuf::from("in.bt")));
        assert!(f.folded);
        assert!(FlameCli::try_parse_from(["fg", "--bogus"]).is_err());
    }
}
