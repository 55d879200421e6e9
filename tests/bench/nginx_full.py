#!/usr/bin/env python3
"""A bench-only nginx: the test suite's static build plus the modules the
stapxx corpus probes (proxy, gzip, charset, SSL).

    python3 tests/bench/nginx_full.py [nogc64]   # builds (or finds) it, prints its path

The test suite's fixture (stapxx-rs/tests/support/nginx.rs) leaves these
out because no test needs zlib or OpenSSL; the samples of issue 19 that
observe upstreams (`ngx_http_upstream_*`), gzip or the charset filter
need them to have something to see. Same sources (Debian's nginx and
lua-nginx-module, already unpacked under target/fixtures/ by the tests),
same flags (-g -O2, GC64 LuaJIT through rpath), the same modules left
out except proxy, gzip and charset; SSL added (zlib1g-dev, libssl-dev).
Cached in target/fixtures/nginx-full-1.22.1 with a stamp naming this
recipe; a build takes a few minutes on two cores.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "target" / "fixtures"
VERSION = "1.22.1"
NGINX_SRC = FIX / "nginx-1.22.1-9+deb12u9-src"
LUA_SRC = FIX / "libnginx-mod-http-lua-0.10.23-1+deb12u1-src"
NDK_SRC = FIX / "libnginx-mod-http-ndk-0.3.2-3-src"
LUAJITS = {
    "gc64": FIX / "luajit-gc64-2.1-20230119-1",
    # The same LuaJIT built without GC64, for the samples that read nginx's
    # LuaJIT through the non-GC64 tapset (`@use luajit`).
    "nogc64": FIX / "luajit-nogc64-2.1-20230119-1",
}

# The fixture's list, less proxy, gzip and charset (kept in step by hand:
# this is a bench tool, the recipe stamp says which list built it).
WITHOUT = [
    "--without-pcre2",
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
    "--without-http_upstream_zone_module",
    "--without-http-cache",
]
WITH = ["--with-http_ssl_module"]
RECIPE = "full-1 " + " ".join(WITHOUT + WITH)


def build(luajit="gc64"):
    """Path of the full build's directory (on the GC64 LuaJIT, or
    `nogc64`), building it when its stamp is not this recipe's."""
    LUAJIT = LUAJITS[luajit]
    name = "full" if luajit == "gc64" else f"full-{luajit}"
    out = FIX / f"nginx-{name}-{VERSION}"
    exe = out / "sbin" / "nginx"
    stamp = out / ".stamp"
    if exe.is_file() and stamp.is_file() and stamp.read_text() == RECIPE:
        return out
    for d in (NGINX_SRC, LUA_SRC, NDK_SRC, LUAJIT):
        if not d.is_dir():
            sys.exit(f"no {d}: run the nginx tests once (they unpack the sources)")
    tmp = out.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    work = tmp / "build"
    shutil.copytree(NGINX_SRC, work, symlinks=True)
    lib = LUAJIT / "lib"
    env = {"PATH": "/usr/bin:/bin", "LUAJIT_INC": str(LUAJIT / "src"), "LUAJIT_LIB": str(lib)}
    log = open(tmp / "build.log", "w")
    subprocess.run(
        ["./configure", f"--prefix={out}", "--with-cc-opt=-g -O2",
         f"--with-ld-opt=-Wl,-rpath,{lib}", *WITHOUT, *WITH,
         f"--add-module={NDK_SRC}", f"--add-module={LUA_SRC}"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
    )
    subprocess.run(["make", "-j2"], cwd=work, env=env, stdout=log,
                   stderr=subprocess.STDOUT, check=True)
    (tmp / "sbin").mkdir()
    shutil.copy2(work / "objs" / "nginx", tmp / "sbin" / "nginx")
    shutil.rmtree(work)
    stamp = tmp / ".stamp"
    stamp.write_text(RECIPE)
    tmp.rename(out)
    return out


if __name__ == "__main__":
    print(build(*sys.argv[1:2]))
