//! One request: POST `URL/ingest?name=...&format=pprof...` with the
//! profile as the file field `profile` of a `multipart/form-data` body,
//! the shape Pyroscope's server API page documents for pprof (see the
//! module above). The body is streamed from the profile's own bytes, not
//! copied.

use super::config::PushConfig;
use super::queue::Item;
use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A failed request.
#[derive(Debug)]
pub struct Failure {
    /// For the user: `HTTP 500 Internal Server Error: ...`,
    /// `connection failed: Connection refused (os error 111)`.
    pub message: String,
    /// The server understood the request and refused it (4xx other than
    /// 408 Request Timeout and 429 Too Many Requests): trying it again
    /// is not likely to help.
    pub refused: bool,
}

/// POST `item` within `timeout`.
pub fn post(
    agent: &ureq::Agent,
    cfg: &PushConfig,
    item: &Item,
    timeout: Duration,
) -> Result<(), Failure> {
    let boundary = boundary_for(&item.profile);
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"profile\"; \
         filename=\"profile.pb.gz\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = head.len() + item.profile.len() + tail.len();
    let body = Cursor::new(head.into_bytes())
        .chain(&item.profile[..])
        .chain(Cursor::new(tail.into_bytes()));
    let url = cfg.ingest_url(item.from, item.until);
    let result = agent
        .request_url("POST", &url)
        .timeout(timeout)
        .set(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .set("Content-Length", &len.to_string())
        .set(
            "User-Agent",
            concat!("stapxx-rs/", env!("CARGO_PKG_VERSION")),
        )
        .send(body);
    match result {
        Ok(resp) => {
            // Read the answer to its end, so the connection can be kept.
            let _ = std::io::copy(&mut resp.into_reader().take(1 << 20), &mut std::io::sink());
            Ok(())
        }
        Err(ureq::Error::Status(code, resp)) => {
            let status = resp.status_text().to_string();
            let mut text = String::new();
            let _ = resp.into_reader().take(300).read_to_string(&mut text);
            let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let mut message = format!("HTTP {code} {status}");
            if !text.is_empty() {
                message.push_str(&format!(": {text}"));
            }
            Err(Failure {
                message,
                refused: (400..500).contains(&code) && code != 408 && code != 429,
            })
        }
        Err(ureq::Error::Transport(t)) => {
            let why = std::error::Error::source(&t)
                .map(|s| s.to_string())
                .or_else(|| t.message().map(str::to_string))
                .unwrap_or_default();
            let kind = t.kind().to_string().to_lowercase();
            Err(Failure {
                message: if why.is_empty() {
                    kind
                } else {
                    format!("{kind}: {why}")
                },
                refused: false,
            })
        }
    }
}

/// A multipart boundary that does not occur in `data` (a binary profile
/// may hold any bytes; a clash is unlikely, but cheap to rule out).
fn boundary_for(data: &[u8]) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let b = format!(
            "stapxx-rs-{:016x}{:08x}",
            nanos ^ n.rotate_left(32),
            std::process::id()
        );
        if !data.windows(b.len()).any(|w| w == b.as_bytes()) {
            return b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_avoids_the_data() {
        let b = boundary_for(b"");
        assert!(b.starts_with("stapxx-rs-") && b.len() == 34, "{b}");
        let data = format!("xx{b}yy");
        // The next one differs (sequence number), and never occurs in data.
        assert!(!data.contains(&boundary_for(data.as_bytes())));
    }
}
