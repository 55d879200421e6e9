//! Debian 12's own nginx, as production machines run it: the binary
//! packages `nginx`, `libnginx-mod-http-ndk`, `libnginx-mod-http-lua` and
//! the LuaJIT the Lua module prefers, OpenResty's `libluajit2-5.1-2`, all
//! stripped (Debian ships their debug info in `-dbgsym` packages of a
//! separate archive, which nothing here installs).
//!
//! `libluajit2-5.1-2` conflicts with Debian's `libluajit-5.1-2` (which
//! `wrk` pulls in), so nothing is installed: the packages are unpacked
//! ([`super::apt::binary`]) and copied into one private root,
//! `target/fixtures/debian-nginx-<version>/` (`usr/sbin/nginx`,
//! `usr/lib/nginx/modules/*.so`, `usr/lib/x86_64-linux-gnu/libluajit-5.1.so.2`),
//! and the master starts with `LD_LIBRARY_PATH` at the root's library
//! directory, so the Lua module loads that libluajit and no other. The
//! rest of what they link (OpenSSL, PCRE 1 and 2, zlib, libcrypt) comes
//! from the system: `ldd` must resolve all of it.
//!
//! [`get`] gives an [`Nginx`] that [`super::nginx::Server`] runs as it runs
//! our builds (the same configuration and handlers, the Lua libraries of
//! [`super::nginx::lua_libs`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use object::{Object, ObjectSection};

use super::nginx::{self, Nginx, Shape};
use super::{apt, debian, fixtures_dir, missing, run};

/// The root's library directory (multiarch, x86-64 only as stapxx-rs is).
const LIBDIR: &str = "usr/lib/x86_64-linux-gnu";

/// The packages of the root: (package, version, a file it must hold).
/// `libluajit2-5.1-2` is built from the `luajit2` source our LuaJIT
/// fixtures build too (the same version).
fn packages() -> [(&'static str, &'static str, String); 4] {
    [
        ("nginx", debian::NGINX, "usr/sbin/nginx".into()),
        (
            "libnginx-mod-http-ndk",
            nginx::NDK,
            "usr/lib/nginx/modules/ndk_http_module.so".into(),
        ),
        (
            "libnginx-mod-http-lua",
            nginx::LUA_MODULE,
            "usr/lib/nginx/modules/ngx_http_lua_module.so".into(),
        ),
        (
            "libluajit2-5.1-2",
            debian::LIBLUAJIT2,
            format!("{LIBDIR}/libluajit-5.1.so.2"),
        ),
    ]
}

/// Bumped whenever the assembly below changes (part of the cache stamp).
const RECIPE_REV: u32 = 1;

fn recipe() -> String {
    let mut r = String::new();
    for (p, v, _) in packages() {
        r.push_str(&format!("{p} {v}; "));
    }
    format!("{r}rev {RECIPE_REV}\n")
}

/// Debian's nginx in its private root, unpacked on first use (cached across
/// runs). `None` (after [`missing`]) when it cannot be had.
pub fn get() -> Option<&'static Nginx> {
    static CELL: OnceLock<Result<Nginx, String>> = OnceLock::new();
    match CELL.get_or_init(assemble) {
        Ok(n) => Some(n),
        Err(e) => {
            missing(&format!("Debian's nginx packages: {e}"));
            None
        }
    }
}

fn assemble() -> Result<Nginx, String> {
    let lua_package_path = nginx::lua_libs()?;
    let _lock = super::fixture_lock("debian-nginx.lock")?;
    let dir = fixtures_dir().join(format!("debian-nginx-{}", debian::NGINX));
    let lib = dir.join(LIBDIR);
    let ng = Nginx {
        shape: Shape::Dynamic,
        nginx: dir.join("usr/sbin/nginx"),
        modules: vec![
            dir.join("usr/lib/nginx/modules/ndk_http_module.so"),
            dir.join("usr/lib/nginx/modules/ngx_http_lua_module.so"),
        ],
        libluajit: lib.join("libluajit-5.1.so.2"),
        env: vec![("LD_LIBRARY_PATH".into(), lib.display().to_string())],
        // Debian's compiled-in temporary directories are under
        // /var/lib/nginx, which nginx creates no parent of: each module's
        // goes in the prefix instead (where our builds keep them).
        http_directives: ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|m| format!("{m}_temp_path {m}_temp;"))
            .collect(),
        dir: dir.clone(),
        lua_package_path,
    };
    let stamp = dir.join(".stamp");
    let fresh = std::fs::read_to_string(&stamp).ok().as_deref() == Some(recipe().as_str())
        && ng.nginx.is_file()
        && ng.modules.iter().all(|m| m.is_file())
        && ng.libluajit.is_file();
    if !fresh {
        let tmp = dir.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
        for (package, version, probe) in packages() {
            let unpacked = apt::binary(package, version, &probe)?;
            // Only the files the server runs: not the packages' docs.
            let file = Path::new(&probe);
            let from = unpacked.join(file.parent().expect("a directory"));
            let to = tmp.join(file.parent().expect("a directory"));
            std::fs::create_dir_all(&to).map_err(|e| e.to_string())?;
            run(Command::new("cp").arg("-a").arg(from.join(".")).arg(&to))?;
        }
        std::fs::write(tmp.join(".stamp"), recipe()).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &dir).map_err(|e| format!("rename to {}: {e}", dir.display()))?;
    }
    check_libraries(&ng)?;
    Ok(ng)
}

/// Every library nginx and its modules need resolves (`ldd`, with the
/// master's environment), and the Lua module's libluajit is the root's.
fn check_libraries(ng: &Nginx) -> Result<(), String> {
    let mut missing = Vec::new();
    for file in std::iter::once(&ng.nginx).chain(&ng.modules) {
        let out = run(Command::new("ldd")
            .arg(file)
            .envs(ng.env.iter().map(|(k, v)| (k, v))))?;
        for l in out.lines() {
            let l = l.trim();
            if l.ends_with("not found") {
                missing.push(format!("{}: {l}", file.display()));
            }
            if let Some(path) = l.strip_prefix("libluajit-5.1.so.2 => ") {
                let path = path.split(" (").next().unwrap_or(path);
                if Path::new(path) != ng.libluajit {
                    return Err(format!(
                        "{} would load {path}, not {}",
                        file.display(),
                        ng.libluajit.display()
                    ));
                }
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "libraries not found (Debian's nginx needs libssl3, libpcre2-8-0, \
             zlib1g and libcrypt1, its Lua module libpcre3): {}",
            missing.join("; ")
        ))
    }
}

/// The debug info `file` (stripped as shipped) would offer a tool: its own
/// DWARF sections, symbol table or MiniDebugInfo (`.gnu_debugdata`), and
/// separate debug files where gdb, elfutils and stapxx-rs look for them
/// (by build-id and by `.gnu_debuglink` under `/usr/lib/debug`, beside
/// the file and in its `.debug/`). Empty when there is none.
pub fn debug_info_of(file: &Path) -> Vec<String> {
    let data = std::fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let obj = object::File::parse(&*data).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut found: Vec<String> = obj
        .sections()
        .filter_map(|s| s.name().ok().map(str::to_string))
        .filter(|n| n.starts_with(".debug_") || n == ".symtab" || n == ".gnu_debugdata")
        .collect();
    let mut places = Vec::new();
    if let Ok(Some(id)) = obj.build_id() {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        places.push(PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{}/{}.debug",
            &hex[..2],
            &hex[2..]
        )));
    }
    if let Ok(Some((name, _crc))) = obj.gnu_debuglink() {
        let name = Path::new(std::str::from_utf8(name).expect("debuglink name"));
        let dir = file.parent().expect("a directory");
        places.push(dir.join(name));
        places.push(dir.join(".debug").join(name));
        places.push(
            Path::new("/usr/lib/debug")
                .join(dir.strip_prefix("/").unwrap_or(dir))
                .join(name),
        );
    }
    found.extend(
        places
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string()),
    );
    found
}
