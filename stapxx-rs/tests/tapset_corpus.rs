//! The tapset corpus: every file of the installed SystemTap tapset tree
//! (Debian's `systemtap-common`: 586 `.stp` and 21 `.stpm` files) that the
//! real `stap -g -p1` accepts, `stapxx-rs -p1 -g` must accept too, with no
//! `-I`: the installed tree is on the search path (its `.stpm` macros
//! included) as it is for stap.
//!
//! The oracle is stap itself. It refuses tapset paths as session scripts, so
//! each file is copied to a scratch directory as `x.stp` first. stap rejects a
//! script that is empty after preprocessing (the `.stpm` macro libraries,
//! tapsets for other architectures); such a file is tested with
//! `probe never {}` appended, by both sides, so its text still gets parsed.
//!
//! stap wants a kernel build tree even for `-p1` (it reads the kernel's
//! `.config` for `%( CONFIG_X ... %)` conditions), and none exists on a
//! machine without the headers of its running kernel. So the test makes a
//! minimal one under `target/`: the running kernel's release and its config
//! (`/proc/config.gz` or `/boot/config-RELEASE`, where stapxx-rs reads it),
//! and passes it with `-r`.
//!
//! stap's verdicts are cached in `target/tmp/tapset-oracle/verdicts.tsv`,
//! keyed by a hash of the stap version, the kernel release and config, and the
//! script text, so they are computed once per machine.
//!
//! When CI=true, a missing `stap` or tapset tree fails the test; elsewhere the
//! test is skipped with a message.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const TAPSET_DIR: &str = "/usr/share/systemtap/tapset";

/// Appended to a file that stap finds empty after preprocessing.
const PADDING: &str = "\nprobe never {}\n";

/// Files stap accepts and stapxx-rs may reject: (path under the tapset dir,
/// why). An entry whose file we accept fails the test, so the list stays true.
const EXCEPTIONS: &[(&str, &str)] = &[];

/// Seconds one stap or stapxx-rs run may take (via coreutils `timeout`).
const STAP_TIMEOUT: &str = "300";
const OURS_TIMEOUT: &str = "60";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    /// Rejected only because nothing is left after preprocessing.
    Empty,
    Reject,
}

fn ours(c: &Case) -> &Ours {
    c.ours.as_ref().expect("stapxx-rs ran on every case")
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Empty => "empty",
            Verdict::Reject => "reject",
        }
    }

    fn parse(s: &str) -> Option<Verdict> {
        match s {
            "accept" => Some(Verdict::Accept),
            "empty" => Some(Verdict::Empty),
            "reject" => Some(Verdict::Reject),
            _ => None,
        }
    }
}

/// One corpus file.
struct Case {
    /// Path under the tapset dir, e.g. `linux/nfs.stp`.
    rel: String,
    text: String,
    /// stap's verdict on `text` as it is.
    stap_plain: Verdict,
    /// Whether the padded text is what both sides are judged on.
    padded: bool,
    /// stap's verdict on the text tested (`Accept` or `Reject`).
    stap: Verdict,
    /// Our exit status and stderr on the text tested.
    ours: Option<Ours>,
}

impl Case {
    fn tested_text(&self) -> String {
        if self.padded {
            format!("{}{PADDING}", self.text)
        } else {
            self.text.clone()
        }
    }
}

struct Ours {
    accepted: bool,
    /// Exit by signal, by panic (101) or by timeout (124).
    crashed: bool,
    status: String,
    stderr: String,
}

/// FNV-1a, 64 bits: a cache key that stays the same across Rust releases.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separate the parts so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Fail in CI, skip elsewhere.
fn unavailable(why: &str) {
    if in_ci() {
        panic!("tapset corpus: {why} (CI=true: this test must run; .ci/run installs systemtap)");
    }
    eprintln!("tapset corpus: SKIPPED: {why}");
}

fn stap_version() -> Option<String> {
    let out = Command::new("stap").arg("--version").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(str::to_string)
}

/// All `.stp` and `.stpm` files under `dir`, as sorted relative paths.
fn corpus_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("stp" | "stpm")
            ) {
                let rel = path.strip_prefix(root).expect("under root");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The running kernel's config text, from where stapxx-rs reads it too
/// (stap itself reads the build tree's `.config`, which is absent here).
fn kernel_config(release: &str) -> String {
    if let Ok(out) = Command::new("gzip")
        .args(["-dc", "/proc/config.gz"])
        .output()
    {
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
    }
    fs::read_to_string(format!("/boot/config-{release}")).unwrap_or_default()
}

/// Runs real stap on scripts, with a cache of its verdicts.
struct Oracle {
    /// Hash of everything besides the script that decides stap's verdict.
    key: Vec<u8>,
    kbuild: PathBuf,
    scratch: PathBuf,
    cache_path: PathBuf,
    cache: Mutex<HashMap<u64, Verdict>>,
    stap_runs: AtomicUsize,
}

impl Oracle {
    fn new(base: &Path, version: &str) -> Oracle {
        let release = fs::read_to_string("/proc/sys/kernel/osrelease")
            .expect("reading the kernel release")
            .trim()
            .to_string();
        let config = kernel_config(&release);

        // The minimal kernel build tree stap checks for.
        let kbuild = base.join("kbuild");
        fs::create_dir_all(kbuild.join("include/config")).expect("creating the kernel build tree");
        fs::write(kbuild.join(".config"), &config).expect("writing .config");
        fs::write(kbuild.join("Module.symvers"), "").expect("writing Module.symvers");
        fs::write(
            kbuild.join("include/config/kernel.release"),
            format!("{release}\n"),
        )
        .expect("writing kernel.release");

        let key = format!(
            "{version}\n{release}\n{:016x}\n-g -p1\n",
            fnv1a(&[config.as_bytes()])
        );
        let cache_path = base.join("verdicts.tsv");
        let mut cache = HashMap::new();
        if let Ok(text) = fs::read_to_string(&cache_path) {
            for line in text.lines() {
                let mut fields = line.split('\t');
                if let (Some(h), Some(v)) = (fields.next(), fields.next()) {
                    if let (Ok(h), Some(v)) = (u64::from_str_radix(h, 16), Verdict::parse(v)) {
                        cache.insert(h, v);
                    }
                }
            }
        }
        Oracle {
            key: key.into_bytes(),
            kbuild,
            scratch: base.join("scratch"),
            cache_path,
            cache: Mutex::new(cache),
            stap_runs: AtomicUsize::new(0),
        }
    }

    fn hash(&self, text: &str) -> u64 {
        fnv1a(&[&self.key, text.as_bytes()])
    }

    fn cached(&self, text: &str) -> Option<Verdict> {
        self.cache.lock().unwrap().get(&self.hash(text)).copied()
    }

    /// Run stap on `text` (no cache); `worker` picks a scratch directory.
    /// Returns the verdict and stap's stderr.
    fn run(&self, worker: usize, text: &str) -> (Verdict, String) {
        let dir = self.scratch.join(format!("w{worker}"));
        fs::create_dir_all(&dir).expect("creating the oracle scratch dir");
        let script = dir.join("x.stp");
        fs::write(&script, text).expect("writing x.stp");
        let out = Command::new("timeout")
            .arg(STAP_TIMEOUT)
            .arg("stap")
            .args(["-g", "-p1", "-r"])
            .arg(&self.kbuild)
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .expect("running stap");
        self.stap_runs.fetch_add(1, Ordering::Relaxed);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let verdict = if out.status.success() {
            Verdict::Accept
        } else if stderr.contains("is empty after preprocessing") {
            Verdict::Empty
        } else {
            Verdict::Reject
        };
        (verdict, stderr)
    }

    fn verdict(&self, worker: usize, text: &str) -> Verdict {
        if let Some(v) = self.cached(text) {
            return v;
        }
        let (v, _) = self.run(worker, text);
        self.cache.lock().unwrap().insert(self.hash(text), v);
        v
    }

    fn save(&self) {
        let cache = self.cache.lock().unwrap();
        let mut entries: Vec<_> = cache.iter().collect();
        entries.sort_by_key(|(h, _)| **h);
        let mut text = String::new();
        for (h, v) in entries {
            writeln!(text, "{h:016x}\t{}", v.as_str()).unwrap();
        }
        // A cache: failing to write it costs time, not correctness.
        let _ = fs::write(&self.cache_path, text);
    }
}

/// Run `f(worker, index)` for every index below `n` on a few threads.
fn parallel(n: usize, f: impl Fn(usize, usize) + Sync) {
    let workers = std::thread::available_parallelism()
        .map_or(2, |p| p.get())
        .min(n.max(1));
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in 0..workers {
            let (next, f) = (&next, &f);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                f(w, i);
            });
        }
    });
}

/// Run stapxx-rs on the tested text of a case.
fn run_ours(scratch: &Path, case: &Case) -> Ours {
    // Same relative path, so the error names the file; `.stp` appended to
    // `.stpm` files, which are judged as scripts here.
    let mut name = case.rel.clone();
    if !name.ends_with(".stp") {
        name.push_str(".stp");
    }
    let path = scratch.join(&name);
    fs::create_dir_all(path.parent().unwrap()).expect("creating the scratch dir");
    fs::write(&path, case.tested_text()).expect("writing the scratch copy");
    let out = Command::new("timeout")
        .arg(OURS_TIMEOUT)
        .arg(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["-p1", "-g"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .expect("running stapxx-rs");
    let code = out.status.code();
    Ours {
        accepted: out.status.success(),
        crashed: matches!(code, None | Some(101) | Some(124)),
        status: match code {
            Some(124) => "timed out".to_string(),
            Some(c) => format!("exit {c}"),
            None => format!("{}", out.status),
        },
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn stapxx_accepts_every_tapset_stap_accepts() {
    let Some(version) = stap_version() else {
        return unavailable("`stap` not found (apt-get install systemtap systemtap-common)");
    };
    let tapsets = Path::new(TAPSET_DIR);
    if !tapsets.is_dir() {
        return unavailable(&format!(
            "{TAPSET_DIR} not found (apt-get install systemtap-common)"
        ));
    }
    let files = corpus_files(tapsets);
    assert!(
        !files.is_empty(),
        "no .stp or .stpm file under {TAPSET_DIR}"
    );

    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tapset-oracle");
    fs::create_dir_all(&base).expect("creating target/tmp/tapset-oracle");
    let oracle = Oracle::new(&base, &version);

    // A script stap must accept, run uncached: if stap cannot work on this
    // machine, every file would look rejected and the test would prove nothing.
    let (sanity, stderr) = oracle.run(0, "probe begin { exit() }\n");
    assert_eq!(
        sanity,
        Verdict::Accept,
        "stap -p1 rejects a trivial script; its stderr:\n{stderr}"
    );

    // stap's verdicts.
    let cases: Vec<Mutex<Case>> = files
        .iter()
        .map(|rel| {
            let text = fs::read(tapsets.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"));
            Mutex::new(Case {
                rel: rel.clone(),
                text: String::from_utf8_lossy(&text).into_owned(),
                stap_plain: Verdict::Reject,
                padded: false,
                stap: Verdict::Reject,
                ours: None,
            })
        })
        .collect();
    parallel(cases.len(), |w, i| {
        let text = cases[i].lock().unwrap().text.clone();
        let plain = oracle.verdict(w, &text);
        let (padded, tested) = match plain {
            Verdict::Empty => (true, oracle.verdict(w, &format!("{text}{PADDING}"))),
            v => (false, v),
        };
        let mut case = cases[i].lock().unwrap();
        case.stap_plain = plain;
        case.padded = padded;
        // Still empty with a probe appended cannot happen; count it as rejected.
        case.stap = if tested == Verdict::Accept {
            Verdict::Accept
        } else {
            Verdict::Reject
        };
    });
    oracle.save();

    // Ours, on every file.
    let scratch = base.join("ours");
    let _ = fs::remove_dir_all(&scratch);
    parallel(cases.len(), |_, i| {
        let ours = run_ours(&scratch, &cases[i].lock().unwrap());
        cases[i].lock().unwrap().ours = Some(ours);
    });
    let cases: Vec<Case> = cases.into_iter().map(|c| c.into_inner().unwrap()).collect();

    // Tally.
    let exceptions: HashMap<&str, &str> = EXCEPTIONS.iter().copied().collect();
    let count = |f: &dyn Fn(&Case) -> bool| cases.iter().filter(|c| f(c)).count();
    let stp = count(&|c| c.rel.ends_with(".stp"));
    let stap_as_is = count(&|c| c.stap_plain == Verdict::Accept);
    let stap_empty = count(&|c| c.padded);
    let stap_padded_ok = count(&|c| c.padded && c.stap == Verdict::Accept);
    let stap_accepts = count(&|c| c.stap == Verdict::Accept);
    let we_accept = count(&|c| c.stap == Verdict::Accept && ours(c).accepted);
    let we_accept_stap_rejects = count(&|c| c.stap == Verdict::Reject && ours(c).accepted);

    let mut failures = Vec::new(); // stap accepts, we reject
    let mut excused = Vec::new();
    let mut stale = Vec::new(); // listed as exceptions, but we accept
    let mut crashes = Vec::new(); // whatever stap says
    for c in &cases {
        let o = ours(c);
        if o.crashed {
            crashes.push(c);
        }
        if c.stap != Verdict::Accept {
            continue;
        }
        match (o.accepted, exceptions.get(c.rel.as_str())) {
            (false, None) => failures.push(c),
            (false, Some(why)) => excused.push((c, *why)),
            (true, Some(_)) => stale.push(c.rel.as_str()),
            (true, None) => {}
        }
    }
    for (rel, _) in EXCEPTIONS {
        assert!(
            files.iter().any(|f| f == rel),
            "exception {rel} names no file of the corpus"
        );
    }

    let mut summary = String::new();
    writeln!(
        summary,
        "tapset corpus: {} files under {TAPSET_DIR} ({stp} .stp, {} .stpm); oracle: {version} ({} stap runs, the rest cached)",
        cases.len(),
        cases.len() - stp,
        oracle.stap_runs.load(Ordering::Relaxed)
    )
    .unwrap();
    writeln!(
        summary,
        "  stap -g -p1 accepts {stap_accepts}: {stap_as_is} as they are, {stap_padded_ok} of {stap_empty} empty after preprocessing with `probe never {{}}` appended; rejects {}",
        cases.len() - stap_accepts
    )
    .unwrap();
    writeln!(
        summary,
        "  stapxx-rs -p1 accepts {we_accept} of those {stap_accepts}, rejects {} ({} listed exceptions); accepts {we_accept_stap_rejects} that stap rejects; crashes or timeouts on {}",
        stap_accepts - we_accept,
        excused.len(),
        crashes.len()
    )
    .unwrap();
    for (c, why) in &excused {
        writeln!(summary, "  exception {}: {why}", c.rel).unwrap();
    }
    // Written straight to the stream (not through the test harness's
    // capture), so the counts show in every run's log.
    let _ = std::io::stderr().write_all(summary.as_bytes());

    let mut report = String::new();
    let describe = |report: &mut String, c: &Case| {
        let o = ours(c);
        let padded = if c.padded {
            " (with `probe never {}` appended)"
        } else {
            ""
        };
        writeln!(report, "--- {}{padded}: stapxx-rs {}", c.rel, o.status).unwrap();
        let stderr = o.stderr.trim_end();
        let shown: Vec<&str> = stderr.lines().take(12).collect();
        writeln!(report, "{}", shown.join("\n")).unwrap();
        if stderr.lines().count() > shown.len() {
            writeln!(report, "    ...").unwrap();
        }
    };
    if !failures.is_empty() {
        writeln!(
            report,
            "\n{} tapset files that stap -g -p1 accepts are rejected by stapxx-rs -p1:",
            failures.len()
        )
        .unwrap();
        for c in &failures {
            describe(&mut report, c);
        }
    }
    if !crashes.is_empty() {
        writeln!(
            report,
            "\nstapxx-rs crashed or timed out on {} files:",
            crashes.len()
        )
        .unwrap();
        for c in &crashes {
            describe(&mut report, c);
        }
    }
    if !stale.is_empty() {
        writeln!(
            report,
            "\nlisted in EXCEPTIONS but now accepted (remove them): {}",
            stale.join(", ")
        )
        .unwrap();
    }
    assert!(stap_accepts > 0, "stap accepted no tapset file\n{summary}");
    assert!(report.is_empty(), "{summary}{report}");
}
