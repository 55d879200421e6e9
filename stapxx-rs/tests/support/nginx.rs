//! nginx test targets: nginx with lua-nginx-module (and its dependency, the
//! NDK) on OpenResty's LuaJIT, all with debug info, built from Debian 12's
//! source packages, in the two shapes people run:
//!
//! * [`Shape::Static`]: the Lua module and the NDK compiled into the
//!   executable (`--add-module`), as OpenResty ships it;
//! * [`Shape::Dynamic`]: both as shared objects (`--add-dynamic-module`,
//!   `modules/ngx_http_lua_module.so`, loaded with `load_module`), as
//!   Debian ships them.
//!
//! Sources: `nginx`, `libnginx-mod-http-lua`, `libnginx-mod-http-ndk`
//! (`apt-get source`, Debian's patches applied) and the Lua libraries of
//! the binary packages `lua-resty-core` and `lua-resty-lrucache`, all
//! through [`super::apt`]. LuaJIT is the GC64 build of [`super::luajit`];
//! the Lua module links its `libluajit-5.1.so.2` (rpath), so the workers run
//! that library, with its debug info. The configuration is minimal: no
//! zlib, no SSL, PCRE 1 (package `libpcre3-dev`: the NDK needs the rewrite
//! module, which needs PCRE, and this lua-nginx-module predates PCRE 2).
//!
//! Builds are cached in `target/fixtures/nginx-<shape>-<version>/` with a
//! stamp naming the recipe, under the lock `target/fixtures/nginx.lock`.
//!
//! [`Server`] runs one on loopback: its own prefix under `target/tmp`, a free
//! port, a master and two workers, the `content_by_lua_file` handlers of
//! `stapxx-rs/tests/nginx/`; stopped when dropped. It is reloaded (SIGHUP),
//! upgraded to a new master (SIGUSR2, then SIGQUIT to the old one) and has
//! its workers killed the way operators and crashes do it. [`wrk`] loads it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{apt, fixtures_dir, luajit, missing, run, target_dir, wait_until};

/// Debian 12's nginx source package.
pub const NGINX: &str = "1.22.1-9+deb12u9";
/// lua-nginx-module (`libnginx-mod-http-lua`).
pub const LUA_MODULE: &str = "1:0.10.23-1+deb12u1";
/// The NDK (`libnginx-mod-http-ndk`).
pub const NDK: &str = "1:0.3.2-3";
/// `lua-resty-core` (the Lua half of lua-nginx-module's API).
const RESTY_CORE: &str = "0.1.25-1";
/// `lua-resty-lrucache` (required by lua-resty-core).
const LRUCACHE: &str = "0.13-10";

/// Bumped whenever the build steps below change (part of the cache stamp).
const RECIPE_REV: u32 = 1;

/// Modules left out: each would need a library or is just build time.
const WITHOUT: &[&str] = &[
    "--without-pcre2",
    "--without-http_gzip_module",
    "--without-http_charset_module",
    "--without-http_ssi_module",
    "--without-http_userid_module",
    "--without-http_access_module",
    "--without-http_auth_basic_module",
    "--without-http_mirror_module",
    "--without-http_autoindex_module",
    "--without-http_geo_module",
    "--without-http_map_module",
    "--without-http_split_clients_module",
    "--without-http_referer_module",
    "--without-http_proxy_module",
    "--without-http_fastcgi_module",
    "--without-http_uwsgi_module",
    "--without-http_scgi_module",
    "--without-http_grpc_module",
    "--without-http_memcached_module",
    "--without-http_limit_conn_module",
    "--without-http_limit_req_module",
    "--without-http_empty_gif_module",
    "--without-http_browser_module",
    "--without-http_upstream_hash_module",
    "--without-http_upstream_ip_hash_module",
    "--without-http_upstream_least_conn_module",
    "--without-http_upstream_random_module",
    "--without-http_upstream_keepalive_module",
    "--without-http_upstream_zone_module",
    "--without-http-cache",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// lua-nginx-module and the NDK linked into the executable.
    Static,
    /// lua-nginx-module and the NDK as `load_module` shared objects.
    Dynamic,
}

impl Shape {
    pub const ALL: [Shape; 2] = [Shape::Static, Shape::Dynamic];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Static => "static",
            Shape::Dynamic => "dynamic",
        }
    }

    fn module_flag(self) -> &'static str {
        match self {
            Shape::Static => "--add-module",
            Shape::Dynamic => "--add-dynamic-module",
        }
    }
}

/// One nginx to run: a build of ours, or Debian's packages
/// ([`super::debian_nginx`]).
#[derive(Debug)]
pub struct Nginx {
    pub shape: Shape,
    pub dir: PathBuf,
    /// The executable.
    pub nginx: PathBuf,
    /// `ndk_http_module.so` and `ngx_http_lua_module.so`, in load order
    /// (empty for [`Shape::Static`]).
    pub modules: Vec<PathBuf>,
    /// The `lua_package_path` that finds lua-resty-core and lrucache.
    pub lua_package_path: String,
    /// The `libluajit-5.1.so.2` the Lua module runs on.
    pub libluajit: PathBuf,
    /// Environment the master must start with (`LD_LIBRARY_PATH` for
    /// packages unpacked outside the system's library directories); the
    /// configuration keeps it across binary upgrades (`env NAME;`).
    pub env: Vec<(String, String)>,
    /// Directives of the `http` block this nginx needs beyond the test
    /// configuration (Debian's: temporary directories inside the prefix,
    /// not its compiled-in `/var/lib/nginx`).
    pub http_directives: Vec<String>,
}

/// The build of `shape`, fetched and built on first use (cached across
/// runs). `None` (after [`missing`]) when it cannot be had.
pub fn get(shape: Shape) -> Option<&'static Nginx> {
    static STATIC: OnceLock<Result<Nginx, String>> = OnceLock::new();
    static DYNAMIC: OnceLock<Result<Nginx, String>> = OnceLock::new();
    let cell = match shape {
        Shape::Static => &STATIC,
        Shape::Dynamic => &DYNAMIC,
    };
    match cell.get_or_init(|| build(shape)) {
        Ok(n) => Some(n),
        Err(e) => {
            missing(&format!("nginx ({}) test build: {e}", shape.name()));
            None
        }
    }
}

fn recipe(shape: Shape) -> String {
    format!(
        "nginx {NGINX}; lua {LUA_MODULE}; ndk {NDK}; {} ; luajit2 {} gc64; \
         -g -O2 {}; rev {RECIPE_REV}\n",
        shape.module_flag(),
        luajit::VERSION,
        WITHOUT.join(" ")
    )
}

/// The Lua libraries: `(lua_package_path)`, fetched once.
pub fn lua_libs() -> Result<String, String> {
    let core = apt::binary(
        "lua-resty-core",
        RESTY_CORE,
        "usr/share/lua/5.1/resty/core.lua",
    )?;
    let lru = apt::binary(
        "lua-resty-lrucache",
        LRUCACHE,
        "usr/share/lua/5.1/resty/lrucache.lua",
    )?;
    Ok(format!(
        "{}/usr/share/lua/5.1/?.lua;{}/usr/share/lua/5.1/?.lua;;",
        core.display(),
        lru.display()
    ))
}

fn build(shape: Shape) -> Result<Nginx, String> {
    let Some(lj) = luajit::get(luajit::Variant::Gc64) else {
        return Err("no LuaJIT (GC64) build".into());
    };
    let lua_package_path = lua_libs()?;
    let _lock = super::fixture_lock("nginx.lock")?;
    let version = NGINX.split('-').next().unwrap_or(NGINX);
    let dir = fixtures_dir().join(format!("nginx-{}-{version}", shape.name()));
    let modules = match shape {
        Shape::Static => vec![],
        Shape::Dynamic => vec![
            dir.join("modules/ndk_http_module.so"),
            dir.join("modules/ngx_http_lua_module.so"),
        ],
    };
    let ng = Nginx {
        shape,
        nginx: dir.join("sbin/nginx"),
        modules,
        dir: dir.clone(),
        lua_package_path,
        libluajit: lj.libluajit.clone(),
        env: Vec::new(),
        http_directives: Vec::new(),
    };
    let stamp = dir.join(".stamp");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(recipe(shape).as_str())
        && ng.nginx.is_file()
        && ng.modules.iter().all(|m| m.is_file())
    {
        return Ok(ng);
    }
    for tool in ["make", "cc"] {
        if !super::have_tool(tool) {
            return Err(format!("'{tool}' not found (packages make, gcc)"));
        }
    }
    if !Path::new("/usr/include/pcre.h").is_file() {
        return Err("no /usr/include/pcre.h (package libpcre3-dev)".into());
    }
    let nginx_src = apt::source("nginx", NGINX, "src/core/nginx.c")?;
    let lua_src = apt::source(
        "libnginx-mod-http-lua",
        LUA_MODULE,
        "src/ngx_http_lua_module.c",
    )?;
    let ndk_src = apt::source("libnginx-mod-http-ndk", NDK, "src/ndk.c")?;
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&dir);
    let work = tmp.join("build");
    std::fs::create_dir_all(&work).map_err(|e| format!("create {}: {e}", work.display()))?;
    run(Command::new("cp")
        .arg("-a")
        .arg(nginx_src.join("."))
        .arg(&work))?;
    let lib = lj.libluajit.parent().expect("lib dir");
    let conf = run(Command::new("./configure")
        .current_dir(&work)
        .arg(format!("--prefix={}", dir.display()))
        .arg("--with-cc-opt=-g -O2")
        .arg(format!("--with-ld-opt=-Wl,-rpath,{}", lib.display()))
        .args(WITHOUT)
        .arg(format!("{}={}", shape.module_flag(), ndk_src.display()))
        .arg(format!("{}={}", shape.module_flag(), lua_src.display()))
        .env("LUAJIT_INC", lj.dir.join("src"))
        .env("LUAJIT_LIB", lib))?;
    let make = run(Command::new("make")
        .current_dir(&work)
        .arg("-j2")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS"))?;
    std::fs::write(tmp.join("build.log"), conf + &make).map_err(|e| e.to_string())?;
    for d in ["sbin", "modules"] {
        std::fs::create_dir_all(tmp.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(work.join("objs/nginx"), tmp.join("sbin/nginx"))
        .map_err(|e| format!("copy objs/nginx: {e}"))?;
    for m in &ng.modules {
        let name = m.file_name().expect("module name");
        std::fs::copy(work.join("objs").join(name), tmp.join("modules").join(name))
            .map_err(|e| format!("copy {}: {e}", Path::new(name).display()))?;
    }
    // The objects are not needed any more (the executables carry the debug
    // info; the sources they name stay in target/fixtures).
    let _ = std::fs::remove_dir_all(&work);
    std::fs::write(tmp.join(".stamp"), recipe(shape)).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &dir).map_err(|e| format!("rename to {}: {e}", dir.display()))?;
    let v = run(Command::new(&ng.nginx).arg("-V").stderr(Stdio::piped()));
    v.map_err(|e| format!("nginx -V: {e}"))?;
    Ok(ng)
}

/// `stapxx-rs/tests/nginx/NAME`: the Lua handlers of the test server.
pub fn handler(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/nginx")
        .join(name)
}

/// A running nginx: master (`daemon off`) and two workers, on loopback, in
/// its own prefix. Stopped (and its prefix removed, unless the test
/// panicked) when dropped.
pub struct Server {
    master: Child,
    /// The master now: [`Server::start_orphan`] and [`Server::upgrade`]
    /// replace the one started.
    master_pid: u32,
    pub prefix: PathBuf,
    pub port: u16,
}

/// The configuration of [`Server`]: `/hot`, `/fast`, `/chunk` run the
/// handlers of `tests/nginx/`, `/re?n=N` one `ngx.re.find` over a subject
/// of N bytes (answering where it matched: N); every request is logged to
/// `logs/access.log` as `PID STATUS URI`.
fn config(ng: &Nginx, port: u16) -> String {
    let modules: Vec<String> = ng.modules.iter().map(|m| m.display().to_string()).collect();
    let hot = handler("hot.lua").display().to_string();
    let fast = handler("fast.lua").display().to_string();
    config_text(&modules, &ng.lua_package_path, port, &hot, &fast, ng)
}

/// The test server's nginx.conf: `modules` loaded, the Lua package path,
/// the port, the `/hot` and `/fast` handler files (paths as nginx sees
/// them: a container's are its own), and what `ng` needs besides
/// ([`Nginx::env`] kept, [`Nginx::http_directives`]).
pub fn config_text(
    modules: &[String],
    lua_path: &str,
    port: u16,
    hot: &str,
    fast: &str,
    ng: &Nginx,
) -> String {
    let mut c = String::new();
    for m in modules {
        c.push_str(&format!("load_module {m};\n"));
    }
    for (name, _) in &ng.env {
        c.push_str(&format!("env {name};\n"));
    }
    let mut http = String::new();
    for d in &ng.http_directives {
        http.push_str(&format!("    {d}\n"));
    }
    c.push_str(&format!(
        "user root;\n\
         worker_processes 2;\n\
         daemon off;\n\
         master_process on;\n\
         pid logs/nginx.pid;\n\
         error_log logs/error.log notice;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20   log_format stx '$pid $status $request_uri';\n\
         \x20   access_log logs/access.log stx;\n\
         {http}\
         \x20   lua_package_path \"{lua_path}\";\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port} reuseport;\n\
         \x20       location = /hot {{ content_by_lua_file {hot}; }}\n\
         \x20       location = /fast {{ content_by_lua_file {fast}; }}\n\
         \x20       location = /chunk {{ content_by_lua_block {{ ngx.say(\"chunk\") }} }}\n\
         \x20       location = /re {{ content_by_lua_block {{\n\
         \x20           local n = tonumber(ngx.var.arg_n)\n\
         \x20           ngx.say((ngx.re.find(string.rep(\"a\", n - 1) .. \"b\", \"b$\", \"o\")))\n\
         \x20       }} }}\n\
         \x20   }}\n\
         }}\n"
    ));
    c
}

/// The lines of an access log in the test servers' format (`PID STATUS
/// URI`): (worker pid, status, URI).
pub fn parse_access_log(text: &str) -> Vec<(u32, u32, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            Some((
                it.next()?.parse().ok()?,
                it.next()?.parse().ok()?,
                it.next()?.to_string(),
            ))
        })
        .collect()
}

/// A TCP port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

impl Server {
    /// Starts `ng` and waits until both workers run and `/fast` answers.
    pub fn start(ng: &Nginx) -> Server {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let prefix = target_dir().join("tmp").join(format!(
            "nginx-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&prefix);
        for d in ["conf", "logs"] {
            std::fs::create_dir_all(prefix.join(d)).expect("create nginx prefix");
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            std::fs::write(prefix.join("conf/nginx.conf"), config(ng, port)).unwrap();
            let master = Command::new(&ng.nginx)
                .envs(ng.env.iter().map(|(k, v)| (k, v)))
                .arg("-p")
                .arg(&prefix)
                .args(["-c", "conf/nginx.conf"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", ng.nginx.display()));
            let mut s = Server {
                master_pid: master.id(),
                master,
                prefix: prefix.clone(),
                port,
            };
            let up = wait_until(Duration::from_secs(10), || {
                s.master.try_wait().ok().flatten().is_some()
                    || (s.workers().len() == 2 && s.get("/fast").is_ok_and(|(st, _)| st == 200))
            });
            if up && s.master.try_wait().ok().flatten().is_none() {
                return s;
            }
            // The port may have been taken meanwhile: try another one.
            let mut err = String::new();
            if let Some(mut e) = s.master.stderr.take() {
                let _ = s.master.kill();
                let _ = e.read_to_string(&mut err);
            }
            last = format!(
                "{err}{}",
                std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default()
            );
        }
        panic!("nginx did not come up: {last}");
    }

    pub fn master_pid(&self) -> u32 {
        self.master_pid
    }

    /// The worker processes (the master's children), sorted.
    pub fn workers(&self) -> Vec<u32> {
        stapxx::target::children_of(self.master_pid).unwrap_or_default()
    }

    /// Two workers that are not `old`, answering, and none of `old` left:
    /// what a reload or a respawn ends in. Returns them.
    fn wait_for_new_workers(&self, old: &[u32], what: &str) -> Vec<u32> {
        let mut now = Vec::new();
        let done = wait_until(Duration::from_secs(20), || {
            now = self.workers();
            now.len() == 2
                && now.iter().all(|w| !old.contains(w))
                && old.iter().all(|&w| !alive(w))
                && self.get("/fast").is_ok_and(|(st, _)| st == 200)
        });
        assert!(
            done,
            "{what}: workers {now:?} (before: {old:?}); error log:\n{}",
            self.error_log()
        );
        now
    }

    /// Reloads the configuration as `nginx -s reload` does (SIGHUP to the
    /// master), and waits until two new workers answer and the old ones
    /// have finished their requests and exited. Returns the new workers.
    pub fn reload(&self) -> Vec<u32> {
        let old = self.workers();
        signal(self.master_pid, libc::SIGHUP);
        self.wait_for_new_workers(&old, "reload")
    }

    /// Kills worker `w` (SIGKILL, as a crash would), and waits until the
    /// master has started another one. Returns the workers then.
    pub fn kill_worker(&self, w: u32) -> Vec<u32> {
        let others: Vec<u32> = self.workers().into_iter().filter(|&x| x != w).collect();
        signal(w, libc::SIGKILL);
        let now = self.wait_for_new_workers(&[w], "respawn");
        assert!(others.iter().all(|o| now.contains(o)), "{others:?} {now:?}");
        now
    }

    /// A binary upgrade, as nginx's documentation has it: SIGUSR2 to the
    /// master, which forks a new master running the executable anew; once
    /// that one's two workers answer, SIGQUIT to the old master, which
    /// waits for its workers' requests and exits. Returns the new master
    /// and its workers.
    ///
    /// nginx ignores SIGUSR2 in a master whose parent is the one it
    /// started with (it takes itself for a new binary whose old master
    /// still runs), so the master must have been started by a process
    /// that has exited since: [`Server::start_orphan`].
    pub fn upgrade(&mut self) -> (u32, Vec<u32>) {
        let old = self.master_pid;
        let old_workers = self.workers();
        signal(old, libc::SIGUSR2);
        let mut new = None;
        let up = wait_until(Duration::from_secs(20), || {
            new = stapxx::target::children_of(old)
                .unwrap_or_default()
                .into_iter()
                .find(|c| !old_workers.contains(c));
            new.is_some_and(|n| stapxx::target::children_of(n).is_ok_and(|w| w.len() == 2))
        });
        assert!(up, "no new master with two workers:\n{}", self.error_log());
        let new = new.unwrap();
        signal(old, libc::SIGQUIT);
        // The old master is ours (see start_orphan): reap it.
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(old as i32, std::ptr::null_mut(), 0) };
        assert_eq!(r, old as i32, "waitpid of the old master");
        self.master_pid = new;
        let workers = self.wait_for_new_workers(&old_workers, "upgrade");
        (new, workers)
    }

    /// `GET path` on a fresh connection: status and body.
    pub fn get(&self, path: &str) -> std::io::Result<(u32, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The access log's lines: (worker pid, status, URI).
    pub fn access_log(&self) -> Vec<(u32, u32, String)> {
        parse_access_log(
            &std::fs::read_to_string(self.prefix.join("logs/access.log")).unwrap_or_default(),
        )
    }

    /// Waits until the access log stops growing (no request in flight) and
    /// returns its line count.
    pub fn settled_requests(&self) -> usize {
        let mut n = self.access_log().len();
        let t0 = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let m = self.access_log().len();
            if m == n || t0.elapsed() > Duration::from_secs(10) {
                return m;
            }
            n = m;
        }
    }

    /// `logs/error.log`.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let workers = self.workers();
        // SIGTERM: fast shutdown of the master and its workers.
        signal(self.master_pid, libc::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if self.master_exited() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.master_pid == self.master.id() {
            let _ = self.master.kill();
            let _ = self.master.wait();
        } else if alive(self.master_pid) {
            // A master of ours that `master` does not know (start_orphan,
            // upgrade).
            signal(self.master_pid, libc::SIGKILL);
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(self.master_pid as i32, std::ptr::null_mut(), 0) };
        }
        for w in workers {
            if Path::new(&format!("/proc/{w}")).exists() {
                unsafe { libc::kill(w as i32, libc::SIGKILL) };
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.prefix);
        }
    }
}

impl Server {
    /// Whether the current master has exited (reaped here).
    fn master_exited(&mut self) -> bool {
        if self.master_pid == self.master.id() {
            return self.master.try_wait().ok().flatten().is_some();
        }
        // SAFETY: polling our own child.
        let r =
            unsafe { libc::waitpid(self.master_pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
        r == self.master_pid as i32 || r < 0
    }

    /// [`Server::start`], with the master started by a shell that exits
    /// at once, the test process catching it as a subreaper: so its parent
    /// is not the one it started with, and [`Server::upgrade`] works. The
    /// test process stays a subreaper (orphans of its children come to it,
    /// and are reaped when it exits).
    pub fn start_orphan(ng: &Nginx) -> Server {
        // SAFETY: a process attribute of our own.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
        let mut s = Server::start(ng);
        // Stop the one started; start the orphan in its prefix, on its port.
        signal(s.master.id(), libc::SIGTERM);
        let _ = s.master.wait();
        let _ = std::fs::remove_file(s.prefix.join("logs/access.log"));
        // The shell waits for the pid file: by then nginx has long read
        // its parent's pid (the shell's), which is what it compares with.
        let _ = std::fs::remove_file(s.prefix.join("logs/nginx.pid"));
        let sh = Command::new("sh")
            .arg("-c")
            .arg(
                "\"$0\" -p \"$1\" -c conf/nginx.conf </dev/null >/dev/null 2>&1 & echo $!; \
                 n=0; while [ ! -s \"$1/logs/nginx.pid\" ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done",
            )
            .arg(&ng.nginx)
            .arg(&s.prefix)
            .envs(ng.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("sh");
        s.master_pid = String::from_utf8_lossy(&sh.stdout)
            .trim()
            .parse()
            .expect("the master's pid");
        let up = wait_until(Duration::from_secs(10), || {
            s.workers().len() == 2 && s.get("/fast").is_ok_and(|(st, _)| st == 200)
        });
        assert!(up, "nginx did not come up again:\n{}", s.error_log());
        s
    }
}

/// Sends `sig` to `pid`.
fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Whether `pid` is a process that has not exited (a zombie has).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X"))
    })
}

/// What `wrk` reported.
#[derive(Debug, Clone, Default)]
pub struct WrkResult {
    /// Completed requests (`N requests in ...`).
    pub requests: u64,
    /// `Requests/sec`.
    pub rps: f64,
    /// Socket errors (connect, read, write, timeout) plus non-2xx/3xx
    /// responses.
    pub errors: u64,
    pub output: String,
}

/// A `wrk` run in the background; [`Wrk::wait`] parses its report.
pub struct Wrk(Child);

impl Wrk {
    /// `wrk -t THREADS -c CONNS -d SECS URL`.
    pub fn start(url: &str, secs: u32, threads: u32, conns: u32) -> Wrk {
        let child = Command::new("wrk")
            .args(["-t", &threads.to_string(), "-c", &conns.to_string()])
            .args(["-d", &format!("{secs}s"), url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wrk (package wrk)");
        Wrk(child)
    }

    pub fn wait(mut self) -> WrkResult {
        let mut out = String::new();
        if let Some(mut o) = self.0.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let status = self.0.wait().expect("wait for wrk");
        assert!(status.success(), "wrk failed ({status}): {out}");
        parse_wrk(&out)
    }
}

impl Drop for Wrk {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs wrk to the end.
pub fn wrk(url: &str, secs: u32, threads: u32, conns: u32) -> WrkResult {
    Wrk::start(url, secs, threads, conns).wait()
}

/// Parses wrk's report.
pub fn parse_wrk(out: &str) -> WrkResult {
    let mut r = WrkResult {
        output: out.to_string(),
        ..Default::default()
    };
    let nums = |s: &str| -> Vec<u64> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let mut seen = (false, false);
    for line in out.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().expect("Requests/sec");
            seen.1 = true;
        } else if l.contains(" requests in ") {
            r.requests = l
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .expect("N requests");
            seen.0 = true;
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            r.errors += nums(v).iter().sum::<u64>();
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            r.errors += nums(v).iter().sum::<u64>();
        }
    }
    assert!(seen.0 && seen.1, "unexpected wrk output: {out}");
    r
}
