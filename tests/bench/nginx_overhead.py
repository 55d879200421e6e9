#!/usr/bin/env python3
"""nginx throughput (wrk requests/s) with and without lj-lua-stacks sampling
every worker (--master MASTER, timer.profile: the kernel's tick rate).

Starts the test build of nginx (SHAPE: static = lua-nginx-module compiled
in, dynamic = loaded as .so; built under target/fixtures by the nginx tests)
with two workers on loopback, serving stapxx-rs/tests/nginx/hot.lua (or
fast.lua), then alternates wrk runs unprofiled and profiled; prints each
run's requests/s and the workers' CPU time per request (less sensitive to
other load on the machine than the rate), and the medians.

Usage (repo root, root, after `cargo build --release` and one run of
`cargo test --release -p stapxx-rs --test nginx`):

    python3 tests/bench/nginx_overhead.py [SHAPE] [PAIRS] [SECONDS] [hot|fast]
"""
import os, re, signal, socket, subprocess, sys, time, statistics, shutil

shape = sys.argv[1] if len(sys.argv) > 1 else "static"
pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
secs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
handler = sys.argv[4] if len(sys.argv) > 4 else "hot"

root = os.getcwd()
fix = f"{root}/target/fixtures"
nginx = f"{fix}/nginx-{shape}-1.22.1/sbin/nginx"
if not os.path.exists(nginx):
    sys.exit(f"no {nginx}: run `cargo test --release -p stapxx-rs --test nginx` first")
libs = ";".join(f"{fix}/{p}/usr/share/lua/5.1/?.lua"
                for p in ("lua-resty-core-0.1.25-1-deb", "lua-resty-lrucache-0.13-10-deb"))
prefix = f"{root}/target/tmp/nginx-bench-{os.getpid()}"
os.makedirs(f"{prefix}/conf", exist_ok=True)
os.makedirs(f"{prefix}/logs", exist_ok=True)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
mods = "".join(f"load_module {fix}/nginx-dynamic-1.22.1/modules/{m}.so;\n"
               for m in ("ndk_http_module", "ngx_http_lua_module")) if shape == "dynamic" else ""
with open(f"{prefix}/conf/nginx.conf", "w") as f:
    f.write(f"""{mods}user root;
worker_processes 2;
daemon off;
pid logs/nginx.pid;
error_log logs/error.log notice;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    lua_package_path "{libs};;";
    server {{
        listen 127.0.0.1:{port} reuseport;
        location = /t {{ content_by_lua_file {root}/stapxx-rs/tests/nginx/{handler}.lua; }}
    }}
}}
""")
master = subprocess.Popen([nginx, "-p", prefix, "-c", "conf/nginx.conf"])
time.sleep(1)
url = f"http://127.0.0.1:{port}/t"


def workers_cpu():
    """CPU time (user + system, in clock ticks) of the master's children."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        if int(f[1]) == master.pid:
            total += int(f[11]) + int(f[12])
    return total


def wrk():
    """Requests/s, failed requests, and the workers' CPU time per request
    (microseconds)."""
    c0 = workers_cpu()
    out = subprocess.run(["wrk", "-t", "2", "-c", "16", "-d", f"{secs}s", url],
                         capture_output=True, text=True, check=True).stdout
    cpu = (workers_cpu() - c0) / os.sysconf("SC_CLK_TCK")
    errs = sum(int(n) for l in out.splitlines()
               if "Socket errors" in l or "Non-2xx" in l for n in re.findall(r"\d+", l))
    n = int(re.search(r"(\d+) requests in", out).group(1))
    return float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1)), errs, cpu * 1e6 / n


def one(profiled):
    prof = None
    if profiled:
        prof = subprocess.Popen(["target/release/stapxx-rs", "examples/lj-lua-stacks.sxx",
                                 "--master", str(master.pid)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while "Hit Ctrl-C" not in prof.stderr.readline():
            if prof.poll() is not None:
                sys.exit(f"stapxx-rs failed: {prof.stderr.read()}")
    rps, errs, cpu = wrk()
    samples = 0
    if prof:
        prof.send_signal(signal.SIGINT)
        out, _ = prof.communicate()
        samples = sum(int(l[1:]) for l in out.splitlines() if l.startswith("\t"))
    return rps, errs, samples, cpu


try:
    wrk()  # warm up (JIT, connections)
    base, prof = [], []
    for _ in range(pairs):
        base.append(one(False))
        prof.append(one(True))
finally:
    master.send_signal(signal.SIGTERM)
    master.wait()
    shutil.rmtree(prefix, ignore_errors=True)
print("unprofiled req/s", " ".join(f"{b[0]:.0f}" for b in base),
      "| worker CPU us/req", " ".join(f"{b[3]:.1f}" for b in base))
print("profiled   req/s", " ".join(f"{p[0]:.0f}" for p in prof),
      "| worker CPU us/req", " ".join(f"{p[3]:.1f}" for p in prof))
u0 = statistics.median(b[3] for b in base)
u1 = statistics.median(p[3] for p in prof)
r0 = statistics.median(b[0] for b in base)
r1 = statistics.median(p[0] for p in prof)
sps = statistics.median(p[2] / secs for p in prof)
errors = sum(b[1] for b in base) + sum(p[1] for p in prof)
print(f"nginx {shape} /{handler}.lua, 2 workers, wrk -t2 -c16 -d{secs}s: unprofiled {r0:.0f} req/s, "
      f"profiled (lj-lua-stacks --master, timer.profile, {sps:.0f} samples/s recorded) {r1:.0f} req/s: "
      f"{100 * (r1 / r0 - 1):+.2f}% (medians of {pairs} pairs); workers' CPU time per request "
      f"{u0:.1f} us -> {u1:.1f} us ({100 * (u1 / u0 - 1):+.2f}%); failed requests: {errors}")
