//! nginx of the `support::nginx` fixtures in a container
//! ([`super::container`]): as [`super::nginx::Server`] runs it outside (a
//! master, two workers, the handlers of `tests/nginx/`, every request
//! logged as `PID STATUS URI`), with every file at a path inside: the
//! executable, its modules and libraries, the Lua libraries, its prefix
//! (whose logs are read from the overlay's upper directory).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::container::{Container, Entry, Root, APP};
use super::nginx::{self, Nginx};

/// nginx's prefix inside.
const PREFIX: &str = "/opt/stapxx-ctr/srv";

/// A free TCP port on loopback (the container shares this host's network).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

/// The status of `GET path`.
fn get(port: u16, path: &str) -> Option<u32> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_whitespace().nth(1)?.parse().ok()
}

/// Where the executable lives inside.
pub fn exe() -> String {
    format!("{APP}/sbin/nginx")
}

/// nginx of `ng` in a container, as `support::nginx::Server` runs it
/// outside (two workers, the handlers of `tests/nginx/`, every request
/// logged as `PID STATUS URI`), every path inside.
pub struct Server {
    pub root: Root,
    _container: Container,
    pub port: u16,
    /// The master's host pid (pid 1 inside).
    pub master: u32,
}

impl Server {
    pub fn start(name: &str, ng: &Nginx, entry: Entry) -> Server {
        let root = Root::new(name);
        let exe = exe();
        root.add_program(&ng.nginx, &exe);
        let mut modules: Vec<String> = Vec::new();
        for m in &ng.modules {
            let inner = format!("{APP}/modules/{}", m.file_name().unwrap().to_string_lossy());
            root.add(m, &inner);
            root.add_libraries(m);
            modules.push(inner);
        }
        for h in ["hot.lua", "fast.lua"] {
            root.add(&nginx::handler(h), &format!("{APP}/lua/{h}"));
        }
        // lua-resty-core and lrucache: each directory of the package path.
        let mut path = String::new();
        for (i, dir) in ng
            .lua_package_path
            .split(';')
            .filter_map(|p| p.strip_suffix("/?.lua"))
            .enumerate()
        {
            root.add_tree(Path::new(dir), &format!("{APP}/lualib/{i}"));
            path.push_str(&format!("{APP}/lualib/{i}/?.lua;"));
        }
        root.write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        root.write("/etc/group", "root:x:0:\n");
        let port = free_port();
        let conf = nginx::config_text(
            &modules,
            &format!("{path};"),
            port,
            &format!("{APP}/lua/hot.lua"),
            &format!("{APP}/lua/fast.lua"),
            ng,
        );
        root.write(&format!("{PREFIX}/conf/nginx.conf"), &conf);
        root.write(&format!("{PREFIX}/logs/.keep"), "");
        let container = root.start(entry, &[&exe, "-p", PREFIX, "-c", "conf/nginx.conf"], &[]);
        let master = container.pid();
        let s = Server {
            root,
            _container: container,
            port,
            master,
        };
        let up = super::wait_until(Duration::from_secs(20), || {
            s.workers().len() == 2 && get(port, "/fast") == Some(200)
        });
        assert!(
            up,
            "nginx did not come up in the container: {}",
            s.error_log()
        );
        s
    }

    pub fn workers(&self) -> Vec<u32> {
        stapxx::target::children_of(self.master).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.root.written(&format!("{PREFIX}/logs/error.log")))
            .unwrap_or_default()
    }

    /// The access log's lines: (worker pid inside, status, URI).
    pub fn access_log(&self) -> Vec<(u32, u32, String)> {
        nginx::parse_access_log(
            &std::fs::read_to_string(self.root.written(&format!("{PREFIX}/logs/access.log")))
                .unwrap_or_default(),
        )
    }

    /// The access log once it stops growing (no request in flight).
    pub fn settled_log(&self) -> Vec<(u32, u32, String)> {
        let mut log = self.access_log();
        let t0 = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.access_log();
            if now.len() == log.len() || t0.elapsed() > Duration::from_secs(10) {
                return now;
            }
            log = now;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}
