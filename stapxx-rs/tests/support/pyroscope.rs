//! A stand-in for a Grafana Pyroscope server on loopback: a small HTTP/1.1
//! receiver (std::net, a thread per connection) that records every request
//! (method, path, decoded query, headers, body) and answers as a test
//! tells it: 200, a scripted list of statuses (500 twice, then 200), after
//! a delay (a slow server), or not at all (stopped, then restarted on the
//! same port, as a server that goes down and comes back).
//!
//! No Pyroscope server is packaged in the registries reachable here
//! (Debian's archive has none, and its releases are downloads from GitHub),
//! so the tests check what arrives against Pyroscope's published API
//! (`POST /ingest`, the query parameters, the multipart `profile` field)
//! and read the profile with a real pprof reader, `go tool pprof`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query's pairs, percent-decoded (`+` is a space), in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The query parameter `name` (the first, when repeated).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The file field `profile` of a `multipart/form-data` body (what
    /// Pyroscope reads a pprof profile from); panics when there is none.
    pub fn profile(&self) -> Vec<u8> {
        let ct = self.header("content-type").unwrap_or_default();
        let part = multipart_part(&self.body, ct, "profile")
            .unwrap_or_else(|| panic!("no multipart 'profile' field; Content-Type: {ct}"));
        assert!(
            part.disposition.contains("filename="),
            "'profile' is not a file field: {}",
            part.disposition
        );
        part.data
    }
}

/// One part of a multipart body.
#[derive(Debug)]
pub struct Part {
    /// Its `Content-Disposition` header.
    pub disposition: String,
    pub data: Vec<u8>,
}

/// The part named `name` of a `multipart/form-data` body whose
/// `Content-Type` is `content_type`.
pub fn multipart_part(body: &[u8], content_type: &str, name: &str) -> Option<Part> {
    let (mime, params) = content_type.split_once(';')?;
    if mime.trim() != "multipart/form-data" {
        return None;
    }
    let boundary = params
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delim = format!("--{boundary}");
    let mut parts = split_on(body, delim.as_bytes());
    parts.next(); // the preamble
    for part in parts {
        if part.starts_with(b"--") {
            break; // the closing delimiter
        }
        let part = part.strip_prefix(b"\r\n")?;
        let end = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..end]).into_owned();
        let data = part[end + 4..].strip_suffix(b"\r\n")?;
        let disposition = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-disposition")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        let named = disposition
            .split(';')
            .any(|p| p.trim() == format!("name=\"{name}\""));
        if named {
            return Some(Part {
                disposition,
                data: data.to_vec(),
            });
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_on<'a>(mut hay: &'a [u8], delim: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match find(hay, delim) {
            Some(i) => {
                let piece = &hay[..i];
                hay = &hay[i + delim.len()..];
                Some(piece)
            }
            None => {
                done = true;
                Some(hay)
            }
        }
    })
}

/// What the connection threads share with the test.
#[derive(Default)]
struct State {
    requests: Mutex<Vec<Request>>,
    /// Statuses for the next requests, in order; then `status`.
    script: Mutex<VecDeque<u16>>,
    status: AtomicU16,
    delay_ms: AtomicU64,
}

/// The receiver; stopped when dropped.
pub struct Receiver {
    port: u16,
    state: Arc<State>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Receiver {
    /// A receiver on a free port of 127.0.0.1, answering 200.
    pub fn start() -> Receiver {
        let state = Arc::new(State::default());
        state.status.store(200, Ordering::SeqCst);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let mut r = Receiver {
            port,
            state,
            running: None,
        };
        r.serve(listener);
        r
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, the URL to give `--pyroscope`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answer the next requests with `codes`, in order, then as before.
    pub fn answer_next(&self, codes: &[u16]) {
        self.state
            .script
            .lock()
            .unwrap()
            .extend(codes.iter().copied());
    }

    /// Answer every request (after the scripted ones) with `code`.
    pub fn set_status(&self, code: u16) {
        self.state.status.store(code, Ordering::SeqCst);
    }

    /// Wait `d` after reading each request before answering.
    pub fn set_delay(&self, d: Duration) {
        self.state
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Close the listening socket: connections are refused until
    /// [`Receiver::restart`]. Requests being answered finish.
    pub fn stop(&mut self) {
        if let Some((run, t)) = self.running.take() {
            run.store(false, Ordering::SeqCst);
            t.join().expect("receiver thread");
        }
    }

    /// Listen again on the same port.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "the receiver is running");
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr} again: {e}"));
        self.serve(listener);
    }

    /// The requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Wait (at most `limit`) until `n` requests arrived; the requests.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Request> {
        let end = Instant::now() + limit;
        loop {
            let got = self.requests();
            if got.len() >= n || Instant::now() >= end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn serve(&mut self, listener: TcpListener) {
        // Polled, so stop() can close the socket without a connection.
        listener.set_nonblocking(true).expect("nonblocking");
        let run = Arc::new(AtomicBool::new(true));
        let (r, state) = (run.clone(), self.state.clone());
        let t = std::thread::spawn(move || {
            while r.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let state = state.clone();
                        std::thread::spawn(move || handle(conn, &state));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        self.running = Some((run, t));
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Read one request, record it, answer it, close.
fn handle(conn: TcpStream, state: &State) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
    let mut out = conn.try_clone().expect("clone stream");
    let mut rd = BufReader::new(conn);
    let Some(req) = read_request(&mut rd) else {
        return;
    };
    state.requests.lock().unwrap().push(req);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        std::thread::sleep(Duration::from_millis(delay));
    }
    let code = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| state.status.load(Ordering::SeqCst));
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let body = if code == 200 { "" } else { "receiver says no" };
    let _ = write!(
        out,
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = out.flush();
}

fn read_request(rd: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    rd.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_string();
    let target = words.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        rd.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let body = if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        read_chunked(rd)?
    } else {
        let len: usize = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut b = vec![0; len];
        rd.read_exact(&mut b).ok()?;
        b
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), parse_query(q)),
        None => (target, Vec::new()),
    };
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

fn read_chunked(rd: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        rd.read_line(&mut size).ok()?;
        let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; n + 2];
        rd.read_exact(&mut chunk).ok()?;
        if n == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

/// `a=1&b=x%7By%7D` -> pairs, decoded as HTML forms encode them.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Write `profile` to `dir/name` (for `go tool pprof`).
pub fn save_profile(dir: &Path, name: &str, profile: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let p = dir.join(name);
    std::fs::write(&p, profile).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}
