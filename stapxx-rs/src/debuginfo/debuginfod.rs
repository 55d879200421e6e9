//! Separate debug files from debuginfod servers, by build-id, as elfutils'
//! client fetches them: the servers of `DEBUGINFOD_URLS` (space-separated)
//! tried in order at `URL/buildid/HEX/debuginfo`, the file kept in the
//! client cache (`DEBUGINFOD_CACHE_PATH`, else `$XDG_CACHE_HOME` or
//! `~/.cache`, then `debuginfod_client/HEX/debuginfo`, the layout elfutils
//! uses, so both tools share one cache), `DEBUGINFOD_TIMEOUT` seconds
//! (default 90) for a server to connect and to send each part.
//!
//! What was tried goes into the same [`LookedAt`] list as the local
//! places, so a miss names every path and server.

use super::error::LookedAt;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The client's settings, from the environment.
#[derive(Debug, Clone)]
pub struct Client {
    pub urls: Vec<String>,
    pub cache: PathBuf,
    pub timeout: Duration,
}

/// elfutils' default `DEBUGINFOD_TIMEOUT`.
const DEFAULT_TIMEOUT_S: u64 = 90;

impl Client {
    /// The client `DEBUGINFOD_URLS` asks for; `None` when it is unset or
    /// empty (no server is asked then).
    pub fn from_env() -> Option<Client> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let urls: Vec<String> = get("DEBUGINFOD_URLS")?
            .split_whitespace()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        if urls.is_empty() {
            return None;
        }
        let cache = get("DEBUGINFOD_CACHE_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let base = get("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| get("HOME").map(|h| Path::new(&h).join(".cache")))
                    .unwrap_or_else(|| PathBuf::from("/tmp"));
                base.join("debuginfod_client")
            });
        let timeout = get("DEBUGINFOD_TIMEOUT")
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(DEFAULT_TIMEOUT_S);
        Some(Client {
            urls,
            cache,
            timeout: Duration::from_secs(timeout.max(1)),
        })
    }

    /// Where the debug file of `build_id` (lower-case hex) is cached.
    pub fn cached(&self, build_id: &str) -> PathBuf {
        self.cache.join(build_id).join("debuginfo")
    }

    /// The debug file of `build_id`: from the cache, else from the first
    /// server that has it (then cached). Every place tried is noted.
    pub fn fetch(&self, build_id: &str, looked: &mut Vec<LookedAt>) -> Option<PathBuf> {
        let cached = self.cached(build_id);
        if cached.is_file() {
            return Some(cached);
        }
        looked.push(LookedAt {
            path: cached.clone(),
            outcome: "not in the debuginfod cache".into(),
        });
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(self.timeout)
            .timeout_read(self.timeout)
            .build();
        for url in &self.urls {
            let at = format!("{url}/buildid/{build_id}/debuginfo");
            match self.download(&agent, &at, &cached) {
                Ok(()) => return Some(cached),
                Err(why) => looked.push(LookedAt {
                    path: PathBuf::from(at),
                    outcome: why,
                }),
            }
        }
        None
    }

    /// GET `at` into `dest` (through a temporary file beside it, so a
    /// cut download never looks cached).
    fn download(&self, agent: &ureq::Agent, at: &str, dest: &Path) -> Result<(), String> {
        let resp = match agent.get(at).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(404, _)) => return Err("not on this server (404)".into()),
            Err(ureq::Error::Status(code, r)) => {
                return Err(format!("the server answered {code} {}", r.status_text()))
            }
            Err(ureq::Error::Transport(t)) => {
                let why = std::error::Error::source(&t)
                    .map(|s| s.to_string())
                    .or_else(|| t.message().map(str::to_string))
                    .unwrap_or_default();
                return Err(format!("unreachable: {}: {why}", t.kind()));
            }
        };
        let total: Option<u64> = resp.header("Content-Length").and_then(|v| v.parse().ok());
        let dir = dest.parent().ok_or("no cache directory")?;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the cache {}: {e}", dir.display()))?;
        let part = dir.join(format!(".debuginfo.{}.part", std::process::id()));
        let result = (|| -> Result<(), String> {
            let mut out = std::fs::File::create(&part)
                .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
            let mut body = resp.into_reader();
            let mut buf = vec![0u8; 1 << 16];
            let mut got: u64 = 0;
            let mut progress = Progress::new(at, total);
            loop {
                let n = body
                    .read(&mut buf)
                    .map_err(|e| format!("the download broke off after {got} bytes: {e}"))?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])
                    .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
                got += n as u64;
                progress.show(got);
            }
            progress.done();
            if total.is_some_and(|t| t != got) {
                return Err(format!(
                    "the download ended after {got} of {} bytes",
                    total.unwrap_or(0)
                ));
            }
            std::fs::rename(&part, dest)
                .map_err(|e| format!("cannot store {}: {e}", dest.display()))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        result
    }
}

/// A one-line progress report on stderr while a download runs, only when
/// stderr is a terminal and the download takes more than a moment.
struct Progress {
    what: String,
    total: Option<u64>,
    start: std::time::Instant,
    shown: bool,
    tty: bool,
}

impl Progress {
    fn new(what: &str, total: Option<u64>) -> Progress {
        Progress {
            what: what.to_string(),
            total,
            start: std::time::Instant::now(),
            shown: false,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, got: u64) {
        if !self.tty || self.start.elapsed() < Duration::from_millis(500) {
            return;
        }
        let kib = got >> 10;
        let of = self
            .total
            .map(|t| format!(" of {} KiB", t >> 10))
            .unwrap_or_default();
        crate::ewrite!("\rstapxx-rs: downloading {}: {kib} KiB{of} ", self.what);
        self.shown = true;
    }

    fn done(&mut self) {
        if self.shown {
            crate::ewrite!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_layout_is_elfutils_one() {
        let c = Client {
            urls: vec!["http://x".into()],
            cache: PathBuf::from("/c"),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(c.cached("ab12"), PathBuf::from("/c/ab12/debuginfo"));
    }
}
