#!/usr/bin/env python3
"""Soak of continuous profiling (issue 17): lj-lua-stacks at 1000 Hz
(perf.sw.cpu_clock.sample(1000000)) on a LuaJIT workload
(tests/lua/split.lua, JIT on) with --interval SECS, pushing every interval
to a loopback receiver that stands in for Pyroscope (no Pyroscope server
is packaged in the registries reachable here; the receiver only counts the
bytes and profiles it is sent and answers 200).
Usage (repo root, root): soak.py [DURATION_S (1800)] [INTERVAL_S (10)] [VARIANT (gc64)]
Every minute it prints the profiler's RSS, its CPU time so far, the
memory of its BPF maps (`bpftool map show`: memlock of the maps its
programs use), and the profiles and bytes received; then the start/end
comparison. Environment: STAPXX_BIN (default target/release/stapxx-rs)."""
import http.server, json, os, subprocess, sys, threading, time
dur = int(sys.argv[1]) if len(sys.argv) > 1 else 1800
interval = sys.argv[2] if len(sys.argv) > 2 else "10"
v = sys.argv[3] if len(sys.argv) > 3 else "gc64"
bin_ = os.environ.get("STAPXX_BIN", "target/release/stapxx-rs")
got = {"n": 0, "bytes": 0}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0)); self.rfile.read(n)
        got["n"] += 1; got["bytes"] += n
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
lj = f"target/fixtures/luajit-{v}-2.1-20230119-1"
w = subprocess.Popen([f"{lj}/src/luajit", "tests/lua/split.lua"], stdout=subprocess.PIPE, text=True,
                     env=dict(os.environ, LUA_PATH=f"{lj}/src/?.lua;;"))
w.stdout.readline()
p = subprocess.Popen([bin_, "examples/lj-lua-stacks.sxx", "-x", str(w.pid), "--arg", "min=0",
                      "--arg", "probe=perf.sw.cpu_clock.sample(1000000)", "--interval", interval,
                      "--pyroscope", f"http://127.0.0.1:{srv.server_address[1]}", "--pyroscope-app", "soak"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
while "Hit Ctrl-C" not in p.stderr.readline():
    pass
tick = os.sysconf("SC_CLK_TCK")
def rss_kb():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
def cpu_s():
    f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def map_kb():
    fds = set(os.listdir(f"/proc/{p.pid}/fdinfo"))
    ids = set()
    for fd in fds:
        try:
            for l in open(f"/proc/{p.pid}/fdinfo/{fd}"):
                if l.startswith("map_id:"):
                    ids.add(int(l.split()[1]))
        except OSError:
            pass
    maps = json.loads(subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True, text=True).stdout)
    return sum(m.get("bytes_memlock", 0) for m in maps if m["id"] in ids) // 1024
t0 = time.monotonic(); c0 = cpu_s()
rows = [(0, rss_kb(), 0.0, map_kb(), got["n"], got["bytes"])]
print("t_s rss_kb cpu_s maps_kb profiles bytes", flush=True)
print(*rows[0], flush=True)
while time.monotonic() - t0 < dur:
    time.sleep(min(60, dur - (time.monotonic() - t0)))
    r = (round(time.monotonic() - t0), rss_kb(), round(cpu_s() - c0, 2), map_kb(), got["n"], got["bytes"])
    rows.append(r); print(*r, flush=True)
p.send_signal(2); err = p.communicate()[1]; w.kill()
a, b = rows[0], rows[-1]
el = b[0] - a[0]
print(f"RSS {a[1]} -> {b[1]} KiB; BPF maps {a[3]} -> {b[3]} KiB; profiler CPU {b[2]:.1f} s in {el} s "
      f"= {100 * b[2] / max(el, 1):.2f}% of one core; {b[4]} profiles, {b[5] / max(b[4], 1):.0f} bytes each on average")
print("stderr tail:", err.strip().splitlines()[-3:])
