#!/usr/bin/env python3
"""OpenResty's stapxx corpus through stapxx-rs, run to the end: is the
output right? (issue 19)

    sudo python3 tests/bench/corpus_run.py STAPXX_CHECKOUT
        [--bin target/release/stapxx-rs] [--only NAME ...] [--out FILE]

corpus.py stops at pass 4 (resolve and load). This runs every sample that
gets there, unchanged, from the checkout (`stapxx-rs SAMPLE -x PID -I
tapset [ARGS]`), against a live target doing a workload this script
drives and counts itself, stops it (SIGINT, or its own `time`), and checks
what it printed against a figure the sample cannot have made up: the
number of requests sent, the access log, the sizes of the responses, the
configuration (worker_connections, timer limits, shared dict size), the
sleep or busy time of our handlers, the Lua call structure of our Lua
code, /proc counters of the target, the exits LuaJIT's own VM events
count. Counts are compared exactly; times with the tolerance the row
states.

Targets (see corpus.py for the fixtures; nothing is built by the tests
here except the bench-only nginx of nginx_full.py, built on first use):

* nginx-static: the test suite's static nginx with our configuration and
  the Lua handlers of tests/bench/corpus_run/ and stapxx-rs/tests/nginx/;
* nginx-full: the same sources with proxy, gzip, charset and SSL
  compiled in (tests/bench/nginx_full.py), for the samples that watch
  nginx's upstream module: the static build has no proxy module, so its
  ngx_http_upstream_* functions exist but are never called;
* nginx-full-nogc64: the same on LuaJIT built without GC64, for the
  sample that reads nginx's LuaJIT through the non-GC64 tapset
  (ngx-lj-gc-speed);
* LuaJIT's own interpreter (GC64 and not) on spin.lua (tests/lua/) or
  the scripts of tests/bench/corpus_run/ (gcspin.lua, texits.lua).

Prints a markdown table (sample, target, workload, independent figure,
what the sample printed, verdict, reason) and the totals. Run as root.
Everything started is stopped at the end.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

ROOT = corpus.ROOT
HERE = Path(__file__).resolve().parent / "corpus_run"
TESTS_NGINX = ROOT / "stapxx-rs" / "tests" / "nginx"

# Figures of our configuration, checked against what samples print.
WORKER_CONNECTIONS = 256
MAX_PENDING_TIMERS = 777
MAX_RUNNING_TIMERS = 333
PENDING_TIMERS = 7  # ngx.timer.at(3600, ...) made by init_worker_by_lua
DICT_SIZE_KB = 1024
RECV_DELAY_MS = 30  # the slow echo listener's delay before each answer
# Upper tolerance of every wall-clock figure: the machine is shared, and
# preemption only ever lengthens a wall time (lower bounds stay tight).
SLACK_MS = 100


# ---------------------------------------------------------------- helpers


class EchoServer(socketserver.ThreadingTCPServer):
    """A line-echo listener on loopback for the cosocket handlers; each
    line is sent back after `delay` seconds."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, delay=0.0):
        class H(socketserver.StreamRequestHandler):
            def handle(self):
                for line in self.rfile:
                    if delay:
                        time.sleep(delay)
                    self.wfile.write(line)

        super().__init__(("127.0.0.1", 0), H)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class UdpEcho(socketserver.ThreadingUDPServer):
    """A UDP echo listener on loopback answering each datagram after
    `delay` seconds."""

    daemon_threads = True

    def __init__(self, delay):
        class H(socketserver.DatagramRequestHandler):
            def handle(self):
                data = self.rfile.read()
                time.sleep(delay)
                self.wfile.write(data)

        super().__init__(("127.0.0.1", 0), H)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class SlowHttp(socketserver.ThreadingTCPServer):
    """An HTTP/1.0 upstream on loopback answering every request (any method)
    after `delay` seconds with a 2-byte body; counts what it served."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, delay):
        outer = self
        self.delay = delay
        self.served = 0

        class H(socketserver.StreamRequestHandler):
            def handle(self):
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                time.sleep(outer.delay)
                outer.served += 1
                self.wfile.write(
                    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nup"
                )

        super().__init__(("127.0.0.1", 0), H)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


def http(port, uri, method="GET", keep=None, headers=""):
    """One HTTP/1.0 request; (status, body bytes). `keep`: a list to hold
    the socket open in (for connection counts) instead of closing it;
    `headers`: extra header lines, each ending in CRLF."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"{method} {uri} HTTP/1.0\r\nHost: x\r\n{headers}\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    if keep is not None:
        keep.append(s)
    else:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def requests(port, uri, n, method="GET"):
    """n sequential requests; the statuses seen (a Counter-like dict)."""
    seen = {}
    for _ in range(n):
        st, _ = http(port, uri, method)
        seen[st] = seen.get(st, 0) + 1
    return seen


def proc_status(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def ctx_switches(pid):
    return proc_status(pid, "voluntary_ctxt_switches") + proc_status(
        pid, "nonvoluntary_ctxt_switches"
    )


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


class Run:
    """One sample running under stapxx-rs, its output in files."""

    def __init__(self, binary, checkout, sample, pid, args):
        self.dir = Path(tempfile.mkdtemp(prefix="corpus-run-", dir=ROOT / "target" / "tmp"))
        self.out = open(self.dir / "stdout", "w+")
        self.err = open(self.dir / "stderr", "w+")
        cmd = [str(binary), sample, "-x", str(pid), "-I", "tapset", *args]
        self.proc = subprocess.Popen(
            cmd, cwd=checkout, stdout=self.out, stderr=self.err,
            stdin=subprocess.DEVNULL, env=dict(os.environ, DEBUGINFOD_URLS=""),
        )
        self.rc = None

    def text(self):
        return (self.dir / "stdout").read_text(errors="replace")

    def errtext(self):
        return (self.dir / "stderr").read_text(errors="replace")

    def wait_for(self, pattern, secs=60):
        """True once `pattern` shows in stdout or stderr (the sample's begin
        probe, which runs once its probes are in place)."""
        return corpus.wait_for(
            lambda: re.search(pattern, self.text() + self.errtext(), re.M)
            or self.proc.poll() is not None,
            secs,
        ) and self.proc.poll() is None

    def wait_exit(self, secs):
        try:
            self.rc = self.proc.wait(secs)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        """SIGINT (Ctrl-C: the end probes run), then wait; the output files
        are removed, their text returned."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            if not self.wait_exit(60):
                self.proc.kill()
                self.proc.wait()
        self.rc = self.proc.returncode
        out, err = self.text(), self.errtext()
        self.out.close()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return out, err


# ---------------------------------------------------------------- targets


class Nginx(corpus.Nginx):
    """corpus.py's nginx (one worker, loopback, own prefix) with the
    configuration of this run: our handlers, an open file cache, pending
    timers, and on the full build an upstream whose first server refuses
    connections (so every request is retried on the backup) and a proxied
    location for PURGE requests."""

    def __init__(self, shape):
        super().__init__(shape)
        self.shape = shape
        self.echo = EchoServer()
        self.slow_echo = EchoServer(RECV_DELAY_MS / 1000)
        self.udp_echo = UdpEcho(RECV_DELAY_MS / 1000)
        self.slow = SlowHttp(0.1)
        self.dead = corpus.free_port()  # nothing listens there

    def config(self):
        lua = lambda name: f"content_by_lua_file {HERE / name};"  # noqa: E731
        upstream = ""
        proxied = ""
        if self.shape.startswith("full"):
            upstream = (
                "    upstream retried {\n"
                f"        server 127.0.0.1:{self.dead} max_fails=0;\n"
                f"        server 127.0.0.1:{self.slow.port} backup;\n"
                "    }\n"
            )
            proxied = (
                "        location = /gz { gzip on; gzip_http_version 1.0; gzip_min_length 1;\n"
                f"            gzip_types text/plain; {lua('body.lua')} }}\n"
                "        location = /retried { proxy_pass http://retried; }\n"
                f"        location = /purge {{ proxy_pass http://127.0.0.1:{self.slow.port}; }}\n"
            )
        return (
            "user root;\nworker_processes 1;\ndaemon off;\n"
            "master_process on;\npid logs/nginx.pid;\n"
            "error_log logs/error.log notice;\n"
            f"events {{ worker_connections {WORKER_CONNECTIONS}; }}\n"
            "http {\n"
            "    log_format corpus '$status $body_bytes_sent $request_method $uri "
            "[$upstream_addr] [$upstream_status]';\n"
            "    access_log logs/access.log corpus;\n"
            f'    lua_package_path "{self.lua_path}";\n'
            f"    lua_shared_dict dogs {DICT_SIZE_KB}k;\n"
            f"    lua_max_pending_timers {MAX_PENDING_TIMERS};\n"
            f"    lua_max_running_timers {MAX_RUNNING_TIMERS};\n"
            "    init_worker_by_lua_block {\n"
            f"        for _ = 1, {PENDING_TIMERS} do\n"
            "            assert(ngx.timer.at(3600, function() end))\n"
            "        end\n"
            "    }\n"
            "    open_file_cache max=16 inactive=600s;\n"
            "    open_file_cache_valid 600s;\n"
            "    open_file_cache_min_uses 1;\n"
            f"{upstream}"
            "    server {\n"
            f"        listen 127.0.0.1:{self.port};\n"
            f"        location = /fast {{ content_by_lua_file {TESTS_NGINX / 'fast.lua'}; }}\n"
            f"        location = /hot {{ content_by_lua_file {TESTS_NGINX / 'hot.lua'}; }}\n"
            f"        location = /busy {{ {lua('busy.lua')} }}\n"
            f"        location = /sleep {{ {lua('sleep.lua')} }}\n"
            f"        location = /body {{ {lua('body.lua')} }}\n"
            f"        location = /cosock {{ {lua('cosock.lua')} }}\n"
            f"        location = /leak {{ {lua('leak.lua')} }}\n"
            f"        location = /texit {{ {lua('texit.lua')} }}\n"
            f"        location = /recv {{ {lua('recv.lua')} }}\n"
            f"        location = /udp {{ {lua('udp.lua')} }}\n"
            f"        location = /re {{ {lua('re.lua')} }}\n"
            f"        location = /gc {{ {lua('gc.lua')} }}\n"
            "        location = /dict { content_by_lua_block {\n"
            '            ngx.shared.dogs:set("k", 1) ngx.say("ok") } }\n'
            "        location /static/ { root html; }\n"
            f"{proxied}"
            "    }\n"
            "}\n"
        )

    def start(self):
        (self.prefix / "html" / "static").mkdir(parents=True, exist_ok=True)
        (self.prefix / "html" / "static" / "file.txt").write_text("static\n")
        super().start()

    def access_log(self):
        return (self.prefix / "logs" / "access.log").read_text().splitlines()

    def error_log(self):
        return (self.prefix / "logs" / "error.log").read_text(errors="replace")

    def stop(self):
        super().stop()
        for s in (self.echo, self.slow_echo, self.udp_echo, self.slow):
            s.shutdown()
            s.server_close()


class LuaJit(corpus.LuaJit):
    """corpus.py's LuaJIT target running a script of ours (or spin.lua),
    with extra luajit flags (-joff)."""

    def __init__(self, variant, script, flags=()):
        super().__init__(variant)
        self.script = script
        self.flags = list(flags)
        self.ready_line = ""

    def start(self):
        env = dict(os.environ, LUA_PATH=f"{self.dir}/src/?.lua;;")
        self.proc = subprocess.Popen(
            [str(self.exe), *self.flags, str(self.script)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        self.ready_line = self.proc.stdout.readline().decode().strip()
        if not self.ready_line.startswith("ready"):
            self.stop()
            sys.exit(f"{self.exe} did not start {self.script}")

    def ask(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        return self.proc.stdout.readline().decode().strip()


# ---------------------------------------------------------------- checks
#
# Each check gets the context (binary, checkout, the running target) and
# returns (workload, independent figure, what the sample printed, verdict,
# reason). Verdicts: right, wrong, no output, error.


class Ctx:
    def __init__(self, binary, checkout, target):
        self.binary, self.checkout, self.t = binary, checkout, target

    def run(self, sample, args=()):
        return Run(self.binary, self.checkout, sample, self.t.worker(), list(args))


def short(text, n=160):
    text = " / ".join(l.strip() for l in text.splitlines() if l.strip())
    return text if len(text) <= n else text[: n - 1] + "…"


def hist_total(text):
    """Sum of the counts of every @hist_log row in text."""
    return sum(int(m.group(1)) for m in re.finditer(r"^\s*-?\d+ \|[@ ]*?\s(\d+)$", text, re.M))


def failed(run, out, err, what="output"):
    """The verdict when the sample printed nothing to check, or failed."""
    e = corpus.first_error(err) if run.rc not in (0, None) or "ERROR" in err else ""
    if e:
        return "error", e
    return "no output", f"no {what} (exit status {run.rc})"


def verdict(ok, why_ok, why_not):
    return ("right", why_ok) if ok else ("wrong", why_not)


def per_second_total(text, pattern):
    return sum(int(x) for x in re.findall(pattern, text))


def counted_per_second(ctx, sample, args, ready, line_re, drive, n, unit):
    """Samples printing one count a second: drive the load once the first
    line is out, wait for two more ticks, stop; the lines after the first
    must add up to the load's n exactly (the target is idle otherwise)."""
    r = ctx.run(sample, args)
    if not r.wait_for(ready, 90):
        out, err = r.stop()
        return (short(out + err),) + failed(r, out, err)
    time.sleep(0.2)
    drive()
    # the tick that holds the last request, and one more
    before = len(re.findall(line_re, r.text(), re.M))
    corpus.wait_for(lambda: len(re.findall(line_re, r.text(), re.M)) >= before + 2, 5)
    out, err = r.stop()
    lines = re.findall(line_re, out, re.M)
    total = sum(int(x) for x in lines[1:])
    if callable(n):  # a figure the drive itself reports
        n = n()
    v = verdict(total == n, f"{total} {unit} in the per-second lines = {n}",
                f"{total} {unit} in the per-second lines, expected {n}")
    shown = [l for l in out.splitlines() if re.search(line_re, l)]
    return (short(" / ".join(shown[:5]) + (" …" if len(shown) > 5 else "")),) + v


def check_ngx_rps(ctx):
    n = 300
    t = ctx.t
    log = []
    res = counted_per_second(
        ctx, "samples/ngx-rps.sxx", [], r"\] \d+ req/sec", r"\] (\d+) req/sec",
        lambda: log.extend(access_delta(t, lambda: requests(t.port, "/fast", n))),
        lambda: len(log), "requests",
    )
    return (f"{n} GET /fast, sequential", f"{n} requests sent; the access log grew by {len(log)} lines") + res


def check_probe_rate(ctx):
    n = 200
    t = ctx.t
    arg = 'probe=process("$^exec_path").function("ngx_http_process_request")'
    res = counted_per_second(
        ctx, "samples/probe-rate.sxx", ["--arg", arg], r"^\d+ count/sec", r"^(\d+) count/sec",
        lambda: requests(t.port, "/fast", n), n, "calls",
    )
    return (f"`{arg}`; {n} GET /fast", f"{n} requests = {n} calls of ngx_http_process_request") + res


def traced(ctx, sample, args, drive, ready=r"Start tracing|Tracing|Hit Ctrl-C", settle=0.3):
    """Start the sample, wait for its begin probe, drive the load, stop it
    (SIGINT). (run, stdout, stderr, what drive returned); run.rc is None
    when the sample never got going."""
    r = ctx.run(sample, args)
    if not r.wait_for(ready, 90):
        out, err = r.stop()
        return r, out, err, None
    time.sleep(0.2)
    got = drive()
    time.sleep(settle)
    out, err = r.stop()
    return r, out, err, got


def access_delta(t, drive):
    """Run drive(); the access log lines it added."""
    before = len(t.access_log())
    drive()
    time.sleep(0.1)
    return t.access_log()[before:]


def stats_line(out):
    """(count, min, avg, max) from a sample's 'for N samples' and
    '(min/avg/max: a/b/c)' lines, or None."""
    m = re.search(r"for (\d+) (?:req )?samples?", out)
    mm = re.search(r"min/avg/max: (-?\d+)/(-?\d+)/(-?\d+)", out)
    if not (m and mm):
        return None
    return (int(m.group(1)),) + tuple(int(x) for x in mm.groups())


def check_count_conns(ctx):
    t = ctx.t
    held = []
    k = 4
    for _ in range(k):  # idle client connections: nginx keeps each one
        held.append(socket.create_connection(("127.0.0.1", t.port)))
    time.sleep(0.3)
    r = ctx.run("samples/ngx-count-conns.sxx")
    ok = r.wait_for(r"Start tracing", 90)
    trigger = socket.create_connection(("127.0.0.1", t.port))  # wakes the loop
    held.append(trigger)
    r.wait_exit(10) if ok else None
    time.sleep(0.2)
    fds = [os.readlink(f"/proc/{t.worker()}/fd/{f}") for f in os.listdir(f"/proc/{t.worker()}/fd")]
    socks = sum(1 for f in fds if f.startswith("socket:"))
    nofile = int(re.search(r"Max open files\s+(\d+)", Path(f"/proc/{t.worker()}/limits").read_text()).group(1))
    out, err = r.stop()
    for s in held:
        s.close()
    want = {
        "Max connections": WORKER_CONNECTIONS,
        # sockets (listener, master channel, our k+1 clients) and the two
        # connections lua-nginx-module takes without an fd of their own:
        # the timer watcher (there are pending timers) and the signalfd
        # connection of its pipe API
        "Used connections": socks + 2,
        "Max files": nofile,
        "Open normal files": 2,  # error.log and access.log
    }
    got = {k2: int(v) for k2, v in re.findall(r"^([A-Z][\w ]+): (\d+)$", out, re.M)}
    if not got:
        return ("-", "-") + (short(out),) + failed(r, out, err)
    bad = [f"{k2} {got.get(k2)} (expected {v})" for k2, v in want.items() if got.get(k2) != v]
    out = "\n".join(f"{k2}: {v}" for k2, v in got.items())
    fig = (f"worker_connections {WORKER_CONNECTIONS}; {socks} sockets in /proc/PID/fd + 2 fd-less "
           f"Lua connections; RLIMIT_NOFILE {nofile}; 2 log files")
    return ((f"{k} idle client connections held, one more to wake the loop", fig, short(out))
            + verdict(not bad, "all four figures match", "; ".join(bad)))


def check_count_timers(ctx):
    t = ctx.t
    r, out, err, _ = traced(ctx, "samples/ngx-lua-count-timers.sxx", [],
                            lambda: http(t.port, "/fast"))
    want = {"Running timers": 0, "Max running timers": MAX_RUNNING_TIMERS,
            "Pending timers": PENDING_TIMERS, "Max pending timers": MAX_PENDING_TIMERS}
    got = {k: int(v) for k, v in re.findall(r"^([A-Z][\w ]+): (\d+)$", out, re.M)}
    fig = (f"{PENDING_TIMERS} ngx.timer.at(3600) in init_worker; lua_max_running_timers "
           f"{MAX_RUNNING_TIMERS}, lua_max_pending_timers {MAX_PENDING_TIMERS}")
    if not got:
        return ("1 GET /fast (wakes the loop)", fig, short(out)) + failed(r, out, err)
    bad = [f"{k} {got.get(k)} (expected {v})" for k, v in want.items() if got.get(k) != v]
    out = "\n".join(f"{k}: {v}" for k, v in got.items())
    return (("1 GET /fast (wakes the loop)", fig, short(out))
            + verdict(not bad, "all four figures match", "; ".join(bad)))


def check_shdict_info(ctx):
    t = ctx.t
    http(t.port, "/dict")  # one key in dogs
    r, out, err, _ = traced(ctx, "samples/ngx-lua-shdict-info.sxx", ["--arg", "dict=dogs"],
                            lambda: http(t.port, "/fast"))
    fig = f"lua_shared_dict dogs {DICT_SIZE_KB}k, 1 key: total size {DICT_SIZE_KB} KB, rbtree black height 1"
    size = re.search(r"total size: (\d+) KB", out)
    height = re.search(r"black height: (\d+)", out)
    if not size:
        if "not found" in out:
            return ("1 key set; 1 GET /fast", fig, short(out), "wrong",
                    "sample older than the target: in lua-nginx-module 0.10.23 a shm zone's "
                    "`data` is an ngx_http_lua_shm_zone_ctx_t wrapping the dict's zone, not the "
                    "ngx_http_lua_shdict_ctx_t the sample casts it to, so the `name` it reads is "
                    "another field and no zone is named dogs; stap reads the same bytes")
        return ("1 key set; 1 GET /fast", fig, short(out)) + failed(r, out, err)
    ok = int(size.group(1)) == DICT_SIZE_KB and height and int(height.group(1)) == 1
    return (("1 key set; 1 GET /fast", fig, short(out))
            + verdict(ok, "size and height match", "size or height differ"))


def check_req_latency(ctx):
    t = ctx.t
    n, ms = 20, 50
    r, out, err, log = traced(ctx, "samples/ngx-req-latency-distr.sxx", [],
                              lambda: access_delta(t, lambda: requests(t.port, f"/sleep?ms={ms}", n)))
    fig = f"{n} requests, each sleeps {ms} ms (ngx.sleep); tolerance +{SLACK_MS} ms"
    st = stats_line(out)
    wl = f"{n} GET /sleep?ms={ms}, sequential"
    if not st:
        return (wl, fig, short(out)) + failed(r, out, err)
    cnt, mn, avg, mx = st
    ok = cnt == n and mn >= ms * 1000 and mx <= (ms + SLACK_MS) * 1000
    return ((wl, fig, f"{cnt} samples, min/avg/max {mn}/{avg}/{mx} us")
            + verdict(ok, f"{cnt} = {n}, all in [{ms}, {ms + SLACK_MS}] ms",
                      f"count {cnt} (want {n}) or a latency outside [{ms}, {ms + SLACK_MS}] ms"))


def check_pool_size(ctx):
    t = ctx.t
    n = 30
    r, out, err, _ = traced(ctx, "samples/ngx-req-pool-size.sxx", [],
                            lambda: requests(t.port, "/fast", n))
    fig = f"{n} requests: {n} request pools destroyed (ngx_http_free_request); each at least request_pool_size 4096"
    st = stats_line(out)
    if not st:
        return (f"{n} GET /fast", fig, short(out)) + failed(r, out, err)
    cnt, mn, avg, mx = st
    ok = cnt == n and mn >= 4096
    return ((f"{n} GET /fast", fig, f"{cnt} samples, min/avg/max {mn}/{avg}/{mx}")
            + verdict(ok, f"{cnt} = {n}, sizes >= 4096", f"count {cnt} (want {n}) or a size < 4096"))


def check_pool_allocs(ctx):
    t = ctx.t
    n = 30
    r, out, err, _ = traced(ctx, "samples/ngx-req-pool-allocs.sxx", [],
                            lambda: requests(t.port, "/fast", n))
    fig = f"{n} requests: {n} request pools created and destroyed"
    st = stats_line(out)
    if not st:
        return (f"{n} GET /fast", fig, short(out)) + failed(r, out, err)
    cnt, mn, avg, mx = st
    ok = cnt == n and mn >= 1
    return ((f"{n} GET /fast", fig, f"{cnt} samples, min/avg/max {mn}/{avg}/{mx}")
            + verdict(ok, f"{cnt} = {n}", f"count {cnt}, want {n}"))


def check_func_latency(ctx):
    t = ctx.t
    n, ms = 12, 10
    fn = "ngx_http_lua_content_by_chunk"
    arg = f'func=process("$^exec_path").function("{fn}")'
    r, out, err, _ = traced(ctx, "samples/func-latency-distr.sxx", ["--arg", arg],
                            lambda: requests(t.port, f"/busy?ms={ms}", n))
    fig = (f"{n} requests = {n} calls of {fn} (out of line, never inlined), each running "
           f"Lua that busy-waits {ms} ms; tolerance -1/+{SLACK_MS} ms")
    wl = f"`{arg}`; {n} GET /busy?ms={ms}"
    m = re.search(r"Distribution of (\S+) latencies \(in nanoseconds\) for (\d+) samples", out)
    mm = re.search(r"max/avg/min: (\d+)/(\d+)/(\d+)", out)
    if not (m and mm):
        return (wl, fig, short(out)) + failed(r, out, err)
    mx, avg, mn = (int(x) for x in mm.groups())
    ok = (m.group(1) == fn and int(m.group(2)) == n == hist_total(out)
          and mn >= (ms - 1) * 10**6 and mx <= (ms + SLACK_MS) * 10**6)
    return ((wl, fig, f"{m.group(1)}: {m.group(2)} samples, max/avg/min {mx}/{avg}/{mn} ns")
            + verdict(ok, f"{n} samples of {fn}, histogram adds up, all in [{ms - 1}, {ms + SLACK_MS}] ms",
                      f"function {m.group(1)}, {m.group(2)} samples, histogram {hist_total(out)}, "
                      f"max/min {mx}/{mn} ns; want {n} in [{ms - 1}, {ms + SLACK_MS}] ms"))


def check_exec_time(ctx):
    t = ctx.t
    n, ms = 10, 20
    r, out, err, _ = traced(ctx, "samples/ngx-lua-exec-time.sxx", [],
                            lambda: requests(t.port, f"/busy?ms={ms}", n))
    fig = f"{n} requests whose Lua busy-waits {ms} ms (ngx.now, ms resolution); tolerance -1/+{SLACK_MS} ms"
    st = stats_line(out)
    wl = f"{n} GET /busy?ms={ms}"
    if not st:
        return (wl, fig, short(out)) + failed(r, out, err)
    cnt, mn, avg, mx = st
    ok = cnt == n and mn >= (ms - 1) * 1000 and mx <= (ms + SLACK_MS) * 1000
    return ((wl, fig, f"{cnt} samples, min/avg/max {mn}/{avg}/{mx} us")
            + verdict(ok, f"{cnt} = {n}, all in [{ms - 1}, {ms + SLACK_MS}] ms",
                      f"count {cnt} (want {n}) or a time outside [{ms - 1}, {ms + SLACK_MS}] ms"))


def check_trace_exits(ctx):
    t = ctx.t
    n = 10
    bodies = []
    r, out, err, _ = traced(ctx, "samples/ngx-lj-trace-exits.sxx", [],
                            lambda: bodies.extend(int(http(t.port, "/texit")[1]) for _ in range(n)))
    pos = [b for b in bodies if b > 0]
    fig = (f"{n} requests; each flushes the traces, runs a compiled loop and reports the "
           f"exits LuaJIT's texit event counted: {bodies}")
    wl = f"{n} GET /texit"
    m = re.search(r"(\d+) out of (\d+) requests used compiled traces", out)
    if not m:
        return (wl, fig, short(out)) + failed(r, out, err)
    used, total = int(m.group(1)), int(m.group(2))
    st = stats_line(out)
    want = (len(pos), min(pos), sum(pos) // len(pos), max(pos)) if pos else None
    ok = total == n and used == len(pos) and st == want
    return ((wl, fig, short(out, 140))
            + verdict(ok, f"{used} out of {total}, min/avg/max {st[1:] if st else '-'} as counted",
                      f"{used} out of {total}, stats {st}; want {len(pos)} out of {n}, {want}"))


def check_open_file_cache(ctx):
    t = ctx.t
    n = 40
    r, out, err, _ = traced(ctx, "samples/ngx-open-file-cache-misses.sxx", [],
                            lambda: requests(t.port, "/static/file.txt", n))
    # the first request opens the file and caches it; the other n-1 hit
    want = 100 * 1 // n
    fig = f"open_file_cache on, one file fetched {n} times: 1 miss, rate 100*1/{n} = {want}% (integer)"
    m = re.search(r"miss rate: (\d+)%", out)
    wl = f"{n} GET /static/file.txt"
    if not m:
        return (wl, fig, short(out)) + failed(r, out, err)
    return ((wl, fig, short(out))
            + verdict(int(m.group(1)) == want, f"{want}%", f"{m.group(1)}%, want {want}%"))


def check_resp_body_len(ctx):
    t = ctx.t
    n, size = 12, 3000
    r, out, err, _ = traced(ctx, "samples/ngx-orig-resp-body-len.sxx", [],
                            lambda: requests(t.port, f"/body?n={size}", n))
    fig = f"{n} responses of exactly {size} body bytes (ngx.print)"
    st = stats_line(out)
    wl = f"{n} GET /body?n={size}"
    if not st:
        return (wl, fig, short(out)) + failed(r, out, err)
    ok = st == (n, size, size, size)
    return ((wl, fig, f"{st[0]} samples, min/avg/max {st[1]}/{st[2]}/{st[3]}")
            + verdict(ok, f"{n} x {size}", f"want {n} samples of {size}"))


def check_useless_cosockets(ctx):
    t = ctx.t
    http(t.port, f"/cosock?port={t.echo.port}&mode=used")  # the pool exists
    u, k = 7, 5
    def drive():
        requests(t.port, f"/cosock?port={t.echo.port}&mode=unused", u)
        requests(t.port, f"/cosock?port={t.echo.port}&mode=used", k)
    r, out, err, _ = traced(ctx, "samples/ngx-lua-useless-cosockets.sxx", [], drive)
    fig = f"{u} requests each taking a pooled connection and closing it unused; {k} using it"
    m = re.search(r"Found (\d+) unused", out)
    wl = f"{u} GET /cosock?mode=unused, {k} mode=used (tcp to a local echo listener)"
    if not m:
        return (wl, fig, short(out)) + failed(r, out, err)
    return ((wl, fig, short(out))
            + verdict(int(m.group(1)) == u, f"{u}", f"{m.group(1)}, want {u}"))


def check_epoll_et_lt(ctx):
    t = ctx.t
    n = 25
    r = ctx.run("samples/epoll-et-lt.sxx")
    wl = f"{n} GET /fast (one new connection each)"
    fig = (f"{n} connections accepted, each added to epoll once with EPOLLET "
           f"(ngx_epoll_add_connection): {n} ET, 0 LT")
    if not r.wait_for(r"^\d+ ET, \d+ LT", 90):
        out, err = r.stop()
        return (wl, fig, short(out + err)) + failed(r, out, err)
    time.sleep(0.2)
    requests(t.port, "/fast", n)
    time.sleep(2.2)
    out, err = r.stop()
    lines = re.findall(r"^(\d+) ET, (\d+) LT", out, re.M)[1:]
    et = sum(int(a) for a, _ in lines)
    lt = sum(int(b) for _, b in lines)
    shown = short(" / ".join(l for l in out.splitlines() if " ET," in l)[:150] + " " + corpus.first_error(err), 200)
    if et == n and lt == 0:
        return (wl, fig, shown, "right", f"{et} ET, {lt} LT")
    why = f"{et} ET, {lt} LT, want {n} ET, 0 LT"
    if "ERROR" in err or "fault" in err.lower():
        why += ("; the sample reads the user-space `struct epoll_event` with a kernel read "
                "(@cast without a user tag), which faults; stap on kernels since 5.10 does the same")
    return (wl, fig, shown, "error" if "ERROR" in err else "wrong", why)


def check_epoll_blocking(ctx):
    t = ctx.t
    k, ms = 3, 300
    r, out, err, _ = traced(ctx, "samples/epoll-loop-blocking.sxx", [],
                            lambda: (requests(t.port, "/fast", 10), requests(t.port, f"/busy?ms={ms}", k),
                                     requests(t.port, "/fast", 10)), ready=r"Start tracing")
    wl = f"10 GET /fast, {k} GET /busy?ms={ms} (blocks the loop), 10 GET /fast"
    fig = f"{k} loop iterations of {ms} ms, none other over the 200 ms limit; tolerance +{SLACK_MS} ms"
    got = [int(x) for x in re.findall(r"epoll loop blocked for (\d+)ms", out)]
    ok = len(got) == k and all(ms <= g <= ms + SLACK_MS for g in got)
    return ((wl, fig, short(out)) + verdict(ok, f"{got}", f"{got}, want {k} in [{ms}, {ms + SLACK_MS}]")
            if got or r.rc == 0 else (wl, fig, short(out)) + failed(r, out, err))


def check_epoll_blocking_distr(ctx):
    t = ctx.t
    k, ms = 4, 150
    r = ctx.run("samples/epoll-loop-blocking-distr.sxx", ["--arg", "time=4"])
    wl = f"`time=4`; {k} GET /busy?ms={ms}, 10 GET /fast; the sample stops itself"
    fig = (f"{k} loop iterations of {ms} ms (buckets >= 128), all others far below; "
           f"tolerance +{SLACK_MS} ms")
    if not r.wait_for(r"Start tracing", 90):
        out, err = r.stop()
        return (wl, fig, short(out)) + failed(r, out, err)
    requests(t.port, f"/busy?ms={ms}", k)
    requests(t.port, "/fast", 10)
    r.wait_exit(15)
    out, err = r.stop()
    mm = re.search(r"max/avg/min: (\d+)/(\d+)/(\d+)", out)
    if not mm:
        return (wl, fig, short(out)) + failed(r, out, err)
    rows = [(int(v), int(c)) for v, c in re.findall(r"^\s*(\d+) \|[@ ]*?\s(\d+)$", out, re.M)]
    slow = sum(c for v, c in rows if v >= 128)
    mx = int(mm.group(1))
    ok = slow == k and ms <= mx <= ms + SLACK_MS
    return ((wl, fig, f"max/avg/min {mm.group(1)}/{mm.group(2)}/{mm.group(3)}; {slow} in buckets >= 128")
            + verdict(ok, f"{slow} iterations >= 128 ms, max {mx}",
                      f"{slow} iterations >= 128 ms (want {k}), max {mx}"))


def check_ctx_switches(ctx):
    t = ctx.t
    n = 50
    pid = t.worker()
    r = ctx.run("samples/ctx-switches.sxx")
    wl = f"{n} GET /fast"
    fig = "2 x the worker's context switches (/proc/PID/status, voluntary + nonvoluntary): one out, one in each"
    if not r.wait_for(r"\] \d+ cs/sec", 90):
        out, err = r.stop()
        return (wl, fig, short(out)) + failed(r, out, err)
    time.sleep(0.3)
    before = ctx_switches(pid)
    requests(t.port, "/fast", n)
    time.sleep(0.3)
    after = ctx_switches(pid)
    nlines = len(re.findall(r"cs/sec", r.text()))
    corpus.wait_for(lambda: len(re.findall(r"cs/sec", r.text())) >= nlines + 2, 5)
    out, err = r.stop()
    got = sum(int(x) for x in re.findall(r"\] (\d+) cs/sec", out)[1:])
    want = 2 * (after - before)
    shown = short(" / ".join(l for l in out.splitlines() if "cs/sec" in l)[:160])
    return (wl, fig + f": {want}", shown) + verdict(got == want, f"{got} = {want}", f"{got}, want {want}")


BURNER = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(15, b'corpus-burn', 0, 0, 0)\n"
    "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
    "sys.stdout.write('go\\n'); sys.stdout.flush()\n"
    "while True: pass\n"
)


def burner(cpu):
    p = subprocess.Popen([sys.executable, "-c", BURNER, str(cpu)], stdout=subprocess.PIPE)
    p.stdout.readline()
    return p


def check_cpu_robbers(ctx):
    t = ctx.t
    n = 40
    pid = t.worker()
    old = os.sched_getaffinity(pid)
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(pid, {0})
    # this client on the other CPU: else the kernel's wake-affine moves it
    # next to the worker that wakes it, and it is the one that runs next
    os.sched_setaffinity(0, {1})
    b = burner(0)
    try:
        r = ctx.run("samples/cpu-robbers.sxx")
        ok = r.wait_for(r"Hit Ctrl-C", 90)
        time.sleep(0.3)
        before = ctx_switches(pid)
        if ok:
            requests(t.port, "/fast", n)
        time.sleep(0.3)
        after = ctx_switches(pid)
        out, err = r.stop()
    finally:
        b.kill()
        b.wait()
        os.sched_setaffinity(pid, old)
        os.sched_setaffinity(0, mine)
    wl = f"worker and a busy process `corpus-burn` pinned to CPU 0; {n} GET /fast"
    want = after - before
    fig = (f"the worker switched out {want} times (/proc/PID/status); the CPU is never idle, "
           "so each switch hands it to a robber, mostly corpus-burn")
    rows = re.findall(r"^#(\d+) (\S+): (\d+)% \((\d+) samples\)", out, re.M)
    if not rows:
        return (wl, fig, short(out)) + failed(r, out, err)
    total = sum(int(x[3]) for x in rows)
    ok = total == want and rows[0][1] == "corpus-burn"
    return ((wl, fig, short(" / ".join(f"#{a} {b}: {c}% ({d} samples)" for a, b, c, d in rows[:3])))
            + verdict(ok, f"{total} samples = {want}, #1 corpus-burn",
                      f"{total} samples (want {want}), #1 {rows[0][1]}"))


GC_LINE = r"^LuaJIT GC freed: (-?\d+) bytes/sec"


def check_lj_gc_speed(ctx):
    """ngx-lj-gc-speed sums what each lj_gc_step freed and prints the sum
    from `timer.s(1)` only when the tick interrupts the worker. Our /gc
    handler (automatic steps stopped) steps the collector by hand and
    reports the bytes freed as LuaJIT counts them, then holds the worker
    busy on CPU 0, where the kernel timer ticks, for 2.5 s."""
    t = ctx.t
    pid = t.worker()
    old, mine = os.sched_getaffinity(pid), os.sched_getaffinity(0)
    os.sched_setaffinity(pid, {0})
    os.sched_setaffinity(0, {1})
    try:
        http(t.port, "/gc?n=0")  # loads gc.lua (compiling it allocates), stops the automatic steps
        r = ctx.run("samples/ngx-lj-gc-speed.sxx")
        ok = r.wait_for(r"Start tracing", 90)
        time.sleep(0.3)
        st, body = http(t.port, "/gc?n=20000&ms=2500") if ok else (0, b"")
        time.sleep(0.3)
        out, err = r.stop()
    finally:
        os.sched_setaffinity(pid, old)
        os.sched_setaffinity(0, mine)
    wl = "1 GET /gc: 20000 small tables dropped, the collector stepped by hand through two whole cycles, then 2.5 s busy on CPU 0"
    m = re.search(rb"freed (-?\d+)", body)
    if not m:
        return (wl, "-", short(out + err)) + failed(r, out, err)
    want = int(m.group(1))
    fig = f"the bytes those steps freed by LuaJIT's own count (collectgarbage(\"count\") before and after): {want}"
    lines = [int(x) for x in re.findall(GC_LINE, out, re.M)]
    shown = short(" / ".join(l for l in out.splitlines() if "GC freed" in l))
    if not lines:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    got = sum(lines)
    return (wl, fig, shown) + verdict(
        got == want and want > 0, f"{got} bytes in the printed lines = {want}",
        f"{got} bytes in the printed lines, want {want}")


def check_cpu_hogs(ctx):
    b = burner(0)
    try:
        r = ctx.run("samples/cpu-hogs.sxx")
        ok = r.wait_for(r"Hit Ctrl-C", 90)
        t0, c0 = time.monotonic(), cpu_ticks(b.pid)
        time.sleep(3 if ok else 0)
        t1, c1 = time.monotonic(), cpu_ticks(b.pid)
        out, err = r.stop()
    finally:
        b.kill()
        b.wait()
    hz = os.sysconf("SC_CLK_TCK")
    ncpu = os.cpu_count()
    share = 100 * (c1 - c0) / hz / ((t1 - t0) * ncpu)
    wl = "a busy process `corpus-burn` pinned to CPU 0 for 3 s (other load on the machine as it comes)"
    fig = f"its CPU time / ({ncpu} CPUs x wall time) from /proc/PID/stat: {share:.0f}%; tolerance 10 points"
    rows = re.findall(r"^(\S+) (\d+)%$", out, re.M)
    if not rows:
        return (wl, fig, short(out)) + failed(r, out, err)
    got = dict((k, int(v)) for k, v in rows)
    pct = got.get("corpus-burn")
    ok = pct is not None and abs(pct - share) <= 10
    return ((wl, fig, short(" / ".join(" ".join(x) + "%" for x in rows[:4])))
            + verdict(ok, f"corpus-burn {pct}% vs {share:.0f}%", f"corpus-burn {pct}%, want {share:.0f}% +- 10"))


class Load:
    """Requests in a loop on a thread of their own until stopped."""

    def __init__(self, port, uri):
        self.n = 0
        self.stopping = False
        self.th = threading.Thread(target=self.loop, args=(port, uri), daemon=True)
        self.th.start()

    def loop(self, port, uri):
        while not self.stopping:
            try:
                http(port, uri)
                self.n += 1
            except OSError:
                time.sleep(0.05)

    def stop(self):
        self.stopping = True
        self.th.join()
        return self.n


def frames(block):
    """Function names of a print_ustack block ("0xADDR : name+off/size [file]")."""
    return [m.group(1) for m in re.finditer(r"^\s*0x[0-9a-f]+ : ([^+\s]+)\+", block, re.M)]


def stack_blocks(out):
    """(frame lines, count) of each backtrace printed as frames then a
    tab-indented count."""
    blocks, cur = [], []
    for line in out.splitlines():
        if re.match(r"^\t-?\d+$", line):
            blocks.append(("\n".join(cur), int(line.strip())))
            cur = []
        elif re.match(r"^\s*0x[0-9a-f]+ : ", line):
            cur.append(line)
    return blocks


def anon_exec(pid):
    """Address ranges of the anonymous executable mappings of pid (LuaJIT's
    machine code lives there) and of the vDSO (no symbols read there)."""
    out = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        f = line.split()
        if "x" in f[1] and (len(f) < 6 or f[5] == "[vdso]"):
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            out.append((lo, hi))
    return out


CONTENT_PATH = [  # innermost first: how nginx runs a content_by_lua_file handler
    "ngx_http_lua_run_thread", "ngx_http_lua_content_by_chunk",
    "ngx_http_lua_content_handler_file", "ngx_http_core_content_phase",
    "ngx_http_core_run_phases", "ngx_process_events_and_timers",
    "ngx_worker_process_cycle", "main",
]


def in_order(names, want):
    it = iter(names)
    return all(w in it for w in want)


def check_sample_bt(ctx):
    t = ctx.t
    load = Load(t.port, "/hot")
    r = ctx.run("samples/sample-bt.sxx", ["--arg", "time=3"])
    started = r.wait_for(r"Start tracing", 90)
    time.sleep(1.5)
    mcode = anon_exec(t.worker())  # while it samples (traces come and go)
    exited = started and r.wait_exit(40)
    mcode += anon_exec(t.worker())
    n = load.stop()
    out, err = r.stop()
    wl = f"GET /hot in a loop until the sample ends ({n} requests); `time=3`"
    fig = ("hot.lua's call structure: Lua runs under " + " <- ".join(CONTENT_PATH)
           + "; frames with no symbol only inside the worker's anonymous executable "
           "mappings (LuaJIT's compiled traces) or the vDSO")
    blocks = stack_blocks(out)
    if not blocks:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    lua = [b for b, c in blocks if "ngx_http_lua_run_thread" in b]
    good = [b for b in lua if in_order(frames(b), CONTENT_PATH)]
    bare = [int(a, 16) for a in re.findall(r"^\s*(0x[0-9a-f]+) : 0x[0-9a-f]+$", out, re.M)]
    stray = [hex(a) for a in bare if not any(lo <= a < hi for lo, hi in mcode)]
    total = sum(c for _, c in blocks)
    shown = f"{len(blocks)} stacks, {total} samples; {len(lua)} through ngx_http_lua_run_thread; {len(bare)} bare addresses"
    ok = exited and good and len(good) == len(lua) and not stray
    return ((wl, fig, shown)
            + verdict(ok, "every Lua stack has the whole content-phase path down to main; "
                      "bare addresses all in LuaJIT's machine code or the vDSO",
                      f"exited {exited}; {len(lua) - len(good)} Lua stacks miss frames; stray {stray[:3]}"))


def check_sample_bt_leaks(ctx):
    t = ctx.t
    k, size = 5, 12345
    chunk = (size + 8 + 15) // 16 * 16  # glibc: the request, its size word, 16-byte aligned
    r = ctx.run("samples/sample-bt-leaks.sxx", ["--arg", "time=3"])
    wl = f"`time=3`; 1 GET /leak?n={k}&size={size} (FFI malloc, never freed); after 3 s one more malloc to end it"
    fig = (f"{k} blocks of {size} bytes = {k} x {chunk} (glibc chunk size, the sample's own measure) "
           f"= {k * chunk} bytes, allocated from Lua through the FFI (lj_ccall_func)")
    if not r.wait_for(r"Start tracing", 90):
        out, err = r.stop()
        return (wl, fig, short(out)) + failed(r, out, err)
    time.sleep(0.3)
    http(t.port, f"/leak?n={k}&size={size}")
    time.sleep(3.5)
    http(t.port, "/leak?n=1&size=16")
    r.wait_exit(20)
    out, err = r.stop()
    blocks = stack_blocks(out)
    if not blocks:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    ffi = [(b, c) for b, c in blocks if "lj_ccall_func" in b or "lj_vm_ffi_call" in b]
    shown = (f"{len(blocks)} stacks; through the FFI: "
             + ", ".join(f"{c} bytes" for _, c in ffi) if ffi else f"{len(blocks)} stacks, none through the FFI")
    ok = len(ffi) == 1 and ffi[0][1] == k * chunk
    return ((wl, fig, shown)
            + verdict(ok, f"{k * chunk} bytes leaked from the FFI stack", "FFI stacks and bytes differ"))


def check_upstream_next(ctx):
    t = ctx.t
    n = 6
    r, out, err, log = traced(ctx, "samples/ngx-upstream-next.sxx", [],
                              lambda: access_delta(t, lambda: requests(t.port, "/retried", n)))
    wl = (f"{n} GET /retried: upstream of a refusing server (max_fails=0) and a backup; "
          "every request is retried once")
    want = []
    for line in log or []:
        m = re.search(r"\[([^,\]]+), [^\]]+\] \[(\d+), \d+\]$", line)
        if m:
            want.append(f'oldpeer="http://{m.group(1)}" ft_type=0x2 status={m.group(2)} tries=1')
    refused = t.error_log().count("(111: Connection refused) while connecting to upstream")
    fig = (f"access log: {len(want)} requests with two upstream addresses (first one's status 502); "
           f"error log: {refused} connects refused (NGX_HTTP_UPSTREAM_FT_ERROR = 0x2); 2 peers, 1 tried: tries=1")
    got = re.findall(r"^retrying: (.*)$", out, re.M)
    if not got:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    ok = len(want) == n and refused >= n and got == want
    return ((wl, fig, short(" / ".join(got[:2]) + (f" (x{len(got)})")))
            + verdict(ok, f"{len(got)} lines, each as the access log has it",
                      f"{len(got)} lines {got[:1]}; want {want[:1]} x {len(want)}"))


def hist_sections(out):
    """{name: histogram total} of the '* NAME' sections of a report."""
    secs, name, buf = {}, None, []
    for line in out.splitlines() + ["* end"]:
        if line.startswith("* "):
            if name:
                secs[name] = hist_total("\n".join(buf))
            name, buf = line[2:].strip(), []
        else:
            buf.append(line)
    return secs


def check_upstream_post_conn(ctx):
    t = ctx.t
    n = 6
    elog0 = len(t.error_log())
    r, out, err, log = traced(ctx, "samples/ngx-upstream-post-conn.sxx", [],
                              lambda: access_delta(t, lambda: requests(t.port, "/retried", n)))
    wl = f"{n} GET /retried (refusing server, then the backup)"
    two = sum(1 for l in log or [] if re.search(r"\[[^,\]]+, [^\]]+\]", l))
    elog = t.error_log()[elog0:]
    # nginx says which way a refused connect went: connect(2) failing at
    # once is logged by ngx_event_connect_peer ("connect() to ADDR failed")
    # and goes straight to ngx_http_upstream_next; a refusal that epoll
    # reports later is found by the read handler,
    # ngx_http_upstream_process_header ("connect() failed ... while
    # connecting to upstream"). The good connect goes on to send the request.
    sync = len(re.findall(r"connect\(\) to \S+ failed \(111", elog))
    late = len(re.findall(r"connect\(\) failed \(111: Connection refused\) while connecting", elog))
    want = {"ngx_http_upstream_send_request": two}
    if sync:
        want["ngx_http_upstream_next"] = sync
    if late:
        want["ngx_http_upstream_process_header"] = late
    fig = (f"access log: {two} requests with two connects; error log: {sync} refused at connect(2), "
           f"{late} refusals found by the read handler")
    secs = hist_sections(out)
    if not secs:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    return ((wl, fig, ", ".join(f"{k}: {v}" for k, v in secs.items()))
            + verdict(two == n and sync + late == n and secs == want,
                      "counts per function match", f"want {want}"))


def check_slow_purge(ctx):
    t = ctx.t
    n, delay = 5, 100
    r, out, err, log = traced(ctx, "samples/ngx-slow-purge-reqs.sxx", [],
                              lambda: access_delta(t, lambda: requests(t.port, "/purge", n, "PURGE")))
    wl = f"{n} PURGE /purge, proxied to an upstream that answers after {delay} ms"
    purges = sum(1 for l in log or [] if " PURGE /purge " in l)
    fig = (f"access log: {purges} PURGE requests; upstream delay {delay} ms: total and process header "
           f">= {delay} ms, send req <= process header <= send header <= total; tolerance +{SLACK_MS} ms")
    rows = re.findall(r"^PURGE /purge \(total: (-?\d+)ms, upstream send req: (-?\d+)ms, "
                      r"upsream process header: (-?\d+)ms, send response header: (-?\d+)ms\)$", out, re.M)
    if not rows:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    bad = []
    for row in rows:
        tot, snd, prc, hdr = (int(x) for x in row)
        if not (0 <= snd <= prc <= hdr <= tot and delay <= prc and tot <= delay + SLACK_MS):
            bad.append(row)
    ok = len(rows) == purges == n and not bad
    first = out.splitlines()[[i for i, l in enumerate(out.splitlines()) if l.startswith("PURGE")][0]]
    return ((wl, fig, f"{len(rows)} lines, e.g. {first}")
            + verdict(ok, f"{len(rows)} lines, all times consistent", f"{len(rows)} lines; off: {bad[:2]}"))


def check_lj_gc(ctx, sample):
    t = ctx.t
    want = int(t.ready_line.split()[1])
    r = ctx.run(sample)
    r.wait_exit(90)
    out, err = r.stop()
    wl = "gcspin.lua under -joff (no traces, which are GC objects too): reports collectgarbage(\"count\"), then spins allocating nothing"
    fig = f"{want} bytes as the script reported them; tolerance +256 (its own report line)"
    m = re.search(r"Total GC count: (\d+) bytes", out)
    if not m:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    got = int(m.group(1))
    return ((wl, fig, short(m.group(0)))
            + verdict(want <= got <= want + 256, f"{got} - {want} = {got - want}",
                      f"{got}, want {want} .. {want + 256}"))


def marker_lines(script):
    text = Path(script).read_text().splitlines()

    def line(marker):
        return next(i + 1 for i, l in enumerate(text) if l.rstrip().endswith("-- @" + marker))
    return line


def lua_bt_lines(text):
    """(file, line) of each '@FILE:LINE' frame line of a LuaJIT backtrace."""
    return [(m.group(1), int(m.group(2))) for m in re.finditer(r"^@(\S+?):(\d+)$", text, re.M)]


# Why not spin.lua: its loop is pure bytecode, and the interpreter writes
# L->base (where the OpenResty tapsets start walking) only when Lua calls
# out; a sample inside that loop reads the frame of the last call out (the
# main chunk's io.stdout:flush()), and the innermost frame has no line
# (NO_BCPOS) by the tapset's design: stap reads the same words.
LUA_BT_NOTE = "cspin.lua under -joff: its time goes to string.find (a C function) called from spin <- third <- second <- first <- main chunk"


def check_lj_lua_bt(ctx):
    t = ctx.t
    r = ctx.run("samples/lj-lua-bt.sxx", ["--skip-badvars"])
    r.wait_exit(90)
    out, err = r.stop()
    line = marker_lines(t.script)
    want = [line(m) for m in ("call:find", "call:spin", "call:third", "call:second", "call:first")]
    fig = f"the call lines of cspin.lua, innermost first: {want}, under a builtin (string.find) and above C:pmain"
    got = lua_bt_lines(out)
    if not got:
        return (LUA_BT_NOTE, fig, short(out + err)) + failed(r, out, err)
    lines = [ln for _, ln in got]
    body = [l.strip() for l in out.splitlines() if l.strip() and not l.startswith("Start")]
    ok = (all(f.endswith("corpus_run/cspin.lua") for f, _ in got) and lines == want
          and re.match(r"builtin#\d+$", body[0]) and body[-1] == "C:pmain")
    return ((LUA_BT_NOTE, fig, short(" ".join(re.sub(r"^@\S*/", "@", b) for b in body)))
            + verdict(ok, "builtin, the five call lines in order, C:pmain", f"got {body}"))


def check_lj_lua_stacks(ctx):
    t = ctx.t
    r = ctx.run("samples/lj-lua-stacks.sxx", ["--skip-badvars", "--arg", "time=3"])
    r.wait_exit(90)
    out, err = r.stop()
    line = marker_lines(t.script)
    want = [line(m) for m in ("def:spin", "def:third", "def:second", "def:first")] + [0]
    wl = LUA_BT_NOTE + "; `time=3`"
    fig = (f"every stack: the C function sampled, a builtin (string.find), then the lines where "
           f"spin, third, second, first, the main chunk are defined: {want}, then C:pmain; 0 JITted")
    stacks = re.findall(r"((?:^[^\t\n]+\n)+)\t(\d+)$", out, re.M)
    if not stacks:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    bad = []
    for body, _ in stacks:
        ls = body.strip().splitlines()
        if not (len(ls) == 8 and re.match(r"builtin#\d+$", ls[1]) and ls[-1] == "C:pmain"
                and [ln for _, ln in lua_bt_lines(body)] == want):
            bad.append(ls)
    jitted = re.search(r"Found (\d+) JITted samples", err)
    n = sum(int(c) for _, c in stacks)
    ok = not bad and jitted and jitted.group(1) == "0"
    return ((wl, fig, f"{len(stacks)} stacks ({', '.join(b.split()[0] for b, _ in stacks[:4])}…), "
             f"{n} samples; " + (jitted.group(0) if jitted else ""))
            + verdict(ok, "every stack as expected, 0 JITted", f"{len(bad)} stacks off, e.g. {bad[:1]}"))


def check_lj_trace_exit_rate(ctx):
    t = ctx.t
    k = 2000
    done = []
    res = counted_per_second(
        ctx, "samples/lj-trace-exit-rate.sxx", [], r"^trace exits: \d+ times/sec",
        r"^trace exits: (\d+) times/sec",
        lambda: done.append(int(t.ask(f"go {k}").split()[1])), lambda: done[0], "exits",
    )
    return (f"texits.lua: one burst of {k} calls of a compiled loop",
            f"exits LuaJIT's texit VM event counted: {done}") + res


def check_lj_vm_states(ctx, sample, jit):
    t = ctx.t
    r, out, err, _ = traced(ctx, sample, [], lambda: time.sleep(2), ready=r"Start tracing")
    state = "Compiled" if jit else "Interpreted"
    wl = "spin.lua" + ("" if jit else " under -joff") + ", 2 s"
    fig = f"its loop never leaves {'its trace' if jit else 'the interpreter'}: {state} 100%, nothing ignored"
    m = re.search(r"Observed (\d+) Lua-running samples and ignored (\d+)", out)
    rows = re.findall(r"^([A-Z][\w ()]+): (\d+)% \((\d+) samples\)$", out, re.M)
    if not (m and rows):
        return (wl, fig, short(out + err)) + failed(r, out, err)
    ok = rows == [(state, "100", m.group(1))] and m.group(2) == "0" and int(m.group(1)) > 0
    shown = " / ".join(l for l in out.splitlines() if l.startswith("Observed") or "%" in l)
    return ((wl, fig, short(shown))
            + verdict(ok, f"{state} 100%", f"{rows}"))


def check_tcp_recv(ctx, sample, total, udp=False):
    t = ctx.t
    n, k, d = 5, 3, RECV_DELAY_MS
    uri = f"/udp?port={t.udp_echo.port}&n={k}" if udp else f"/recv?port={t.slow_echo.port}&n={k}"
    r, out, err, _ = traced(ctx, sample, [], lambda: requests(t.port, uri, n))
    wl = (f"{n} GET {uri.split('?')[0]}: {k} send/receive round trips each on a "
          f"{'UDP' if udp else 'TCP'} cosocket to a listener answering after {d} ms")
    lo, cnt = (k * d, n) if total else (d, n * k)
    hi = lo + SLACK_MS
    fig = (f"{cnt} {'requests' if total else 'receives'} of {lo} ms each "
           f"({'the sum of ' + str(k) + ' receives' if total else 'the listener delay'}); tolerance +{hi - lo} ms")
    st = stats_line(out)
    if not st:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    c, mn, avg, mx = st
    ok = c == cnt and mn >= lo * 1000 and mx <= hi * 1000
    return ((wl, fig, f"{c} samples, min/avg/max {mn}/{avg}/{mx} us")
            + verdict(ok, f"{c} = {cnt}, all in [{lo}, {hi}] ms", f"{c} samples (want {cnt}) or outside [{lo}, {hi}] ms"))


def check_slow_udp_query(ctx):
    t = ctx.t
    q = "query-0123456789"
    r, out, err, _ = traced(ctx, "samples/ngx-lua-slow-udp-query.sxx", ["--arg", "threshold=20000"],
                            lambda: http(t.port, f"/udp?port={t.udp_echo.port}&n=1&q={q}"), settle=1)
    wl = f"`threshold=20000`; 1 GET /udp: one UDP query `{q}` answered after {RECV_DELAY_MS} ms"
    dump = "".join(f" {b:02x}" + ("\n" if (i + 1) % 10 == 0 else "") for i, b in enumerate(q.encode()))
    # the listener's delay starts when the datagram arrives, the sample's
    # clock at the first read after the send (its own handler on
    # ngx_unix_send runs in between): 5 ms of slack below
    fig = (f"ft_type 0 (no failure), elapsed {RECV_DELAY_MS} ms (tolerance -5/+{SLACK_MS} ms), "
           "the query's bytes in hex, 10 a line")
    m = re.search(r"u->ft_type: (\d+), elapsed: (\d+)us\nQuery bytes \(hex dump\):\n(.*?)\n\n?$", out, re.S)
    if not m:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    el = int(m.group(2))
    ok = (m.group(1) == "0" and (RECV_DELAY_MS - 5) * 1000 <= el <= (RECV_DELAY_MS + SLACK_MS) * 1000
          and m.group(3).strip("\n") == dump.strip("\n"))
    return ((wl, fig, short(m.group(0)))
            + verdict(ok, "ft_type, elapsed and bytes match", f"got {m.groups()}"))


PCRE_SIZES = [3478, 10, 200, 1000, 65]


def pcre_requests(t):
    return [http(t.port, f"/re?n={n}")[1].strip() for n in PCRE_SIZES]


def check_pcre_exec_time(ctx):
    t = ctx.t
    sizes = PCRE_SIZES
    r, out, err, answers = traced(ctx, "samples/ngx-pcre-dist.sxx", ["--arg", "exec_time=1"],
                                  lambda: pcre_requests(t))
    wl = f"`exec_time=1`; {len(sizes)} GET /re?n=N, N in {sizes}: one ngx.re.find each"
    fig = f"{len(sizes)} pcre_exec calls, one per request, each well under the request's own time"
    m = re.search(r"for (\d+) sample", out)
    mm = re.search(r"min/avg/max: (\d+)/(\d+)/(\d+)", out)
    if not (m and mm):
        return (wl, fig, short(out + err)) + failed(r, out, err)
    cnt = int(m.group(1))
    mn, avg, mx = (int(x) for x in mm.groups())
    ok = cnt == len(sizes) == hist_total(out) and mx <= SLACK_MS * 1000
    return ((wl, fig, f"{cnt} samples, min/avg/max {mn}/{avg}/{mx} us")
            + verdict(ok, f"{cnt} = {len(sizes)}, histogram adds up",
                      f"{cnt} samples, max {mx} us"))


def check_pcre_dist(ctx):
    t = ctx.t
    sizes = PCRE_SIZES
    r, out, err, answers = traced(ctx, "samples/ngx-pcre-dist.sxx", [], lambda: pcre_requests(t))
    wl = f"{len(sizes)} GET /re?n=N, N in {sizes}: one ngx.re.find over a subject of N bytes each"
    fig = (f"{len(sizes)} pcre_exec calls, one per request, with the subject lengths sent: "
           f"min/avg/max {min(sizes)}/{sum(sizes) // len(sizes)}/{max(sizes)}")
    m = re.search(r"for (\d+) samples", out)
    mm = re.search(r"min/avg/max: (\d+)/(\d+)/(\d+)", out)
    if not (m and mm):
        return (wl, fig, short(out + err)) + failed(r, out, err)
    cnt = int(m.group(1))
    mn, avg, mx = (int(x) for x in mm.groups())
    want_found = [str(n).encode() for n in sizes]
    ok = (cnt == len(sizes) == hist_total(out) and (mn, avg, mx) == (min(sizes), sum(sizes) // len(sizes), max(sizes))
          and answers == want_found)
    return ((wl, fig, f"{cnt} samples, min/avg/max {mn}/{avg}/{mx}")
            + verdict(ok, f"{cnt} = {len(sizes)}, lengths match, histogram adds up",
                      f"{cnt} samples, min/avg/max {mn}/{avg}/{mx}; matches {answers}"))


def gzip_requests(t, n, size):
    """n GET /gz?n=size asking for gzip; how many answers came gzipped."""
    got = 0
    for _ in range(n):
        st, body = http(t.port, f"/gz?n={size}", headers="Accept-Encoding: gzip\r\n")
        got += st == 200 and body[:2] == b"\x1f\x8b"
    return got


def check_zlib_total(ctx):
    t = ctx.t
    n, size = 8, 30000
    r, out, err, got = traced(ctx, "samples/ngx-zlib-total-deflate-time.sxx", [],
                              lambda: gzip_requests(t, n, size))
    wl = f"{n} GET /gz?n={size} with Accept-Encoding: gzip (gzip on)"
    fig = f"{got} responses came back gzipped (magic 1f 8b): one sample per compressed request"
    st = stats_line(out)
    if not st:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    ok = st[0] == got == n and st[1] > 0
    return ((wl, fig, f"{st[0]} samples, min/avg/max {st[1]}/{st[2]}/{st[3]} us")
            + verdict(ok, f"{st[0]} = {got}", f"{st[0]} samples, want {got}"))


def check_zlib_deflate(ctx):
    t = ctx.t
    n, size = 8, 30000
    r, out, err, got = traced(ctx, "samples/ngx-zlib-deflate-time.sxx", [],
                              lambda: gzip_requests(t, n, size))
    wl = f"{n} GET /gz?n={size} with Accept-Encoding: gzip (gzip on)"
    fig = (f"{got} responses came back gzipped; compressing {size} bytes takes at least one deflate "
           "call over the sample's 4 us floor per response (a lower bound only: how many calls "
           "nginx makes, and how many stay under 4 us, is not known)")
    st = stats_line(out)
    if not st:
        return (wl, fig, short(out + err)) + failed(r, out, err)
    ok = got == n and st[0] >= n and hist_total(out) == st[0] and st[1] > 4
    return ((wl, fig, f"{st[0]} samples, min/avg/max {st[1]}/{st[2]}/{st[3]} us")
            + verdict(ok, f"{st[0]} calls >= {n} responses, histogram adds up, min > 4 us",
                      f"{st[0]} samples for {got} gzipped responses"))


CHECKS = {
    "ngx-count-conns.sxx": ("nginx-static", check_count_conns),
    "ngx-lua-count-timers.sxx": ("nginx-static", check_count_timers),
    "ngx-lua-shdict-info.sxx": ("nginx-static", check_shdict_info),
    "ngx-req-latency-distr.sxx": ("nginx-static", check_req_latency),
    "ngx-req-pool-size.sxx": ("nginx-static", check_pool_size),
    "ngx-req-pool-allocs.sxx": ("nginx-static", check_pool_allocs),
    "func-latency-distr.sxx": ("nginx-static", check_func_latency),
    "ngx-lua-exec-time.sxx": ("nginx-static", check_exec_time),
    "ngx-lj-trace-exits.sxx": ("nginx-static", check_trace_exits),
    "ngx-open-file-cache-misses.sxx": ("nginx-static", check_open_file_cache),
    "ngx-orig-resp-body-len.sxx": ("nginx-static", check_resp_body_len),
    # with the charset filter compiled in, the sample's first `!` point
    # (ngx_http_charset_body_filter) is the one taken
    "ngx-orig-resp-body-len.sxx full": ("nginx-full", check_resp_body_len),
    "ngx-lua-useless-cosockets.sxx": ("nginx-static", check_useless_cosockets),
    "ngx-lua-udp-recv-time.sxx": ("nginx-static", lambda c: check_tcp_recv(c, "samples/ngx-lua-udp-recv-time.sxx", False, True)),
    "ngx-lua-udp-total-recv-time.sxx": ("nginx-static", lambda c: check_tcp_recv(c, "samples/ngx-lua-udp-total-recv-time.sxx", True, True)),
    "ngx-lua-slow-udp-query.sxx": ("nginx-static", check_slow_udp_query),
    "ngx-lua-tcp-recv-time.sxx": ("nginx-static", lambda c: check_tcp_recv(c, "samples/ngx-lua-tcp-recv-time.sxx", False)),
    "ngx-lua-tcp-total-recv-time.sxx": ("nginx-static", lambda c: check_tcp_recv(c, "samples/ngx-lua-tcp-total-recv-time.sxx", True)),
    "epoll-et-lt.sxx": ("nginx-static", check_epoll_et_lt),
    "epoll-loop-blocking.sxx": ("nginx-static", check_epoll_blocking),
    "epoll-loop-blocking-distr.sxx": ("nginx-static", check_epoll_blocking_distr),
    "ctx-switches.sxx": ("nginx-static", check_ctx_switches),
    "cpu-robbers.sxx": ("nginx-static", check_cpu_robbers),
    "cpu-hogs.sxx": ("nginx-static", check_cpu_hogs),
    "sample-bt.sxx": ("nginx-static", check_sample_bt),
    "lj-gc.sxx": ("luajit-nogc64 gcspin -joff", lambda c: check_lj_gc(c, "samples/lj-gc.sxx")),
    "luajit21-gc64/lj-gc.sxx": ("luajit-gc64 gcspin -joff", lambda c: check_lj_gc(c, "samples/luajit21-gc64/lj-gc.sxx")),
    "lj-lua-bt.sxx": ("luajit-nogc64 cspin -joff", check_lj_lua_bt),
    "lj-lua-stacks.sxx": ("luajit-nogc64 cspin -joff", check_lj_lua_stacks),
    "lj-trace-exit-rate.sxx": ("luajit-nogc64 texits", check_lj_trace_exit_rate),
    "lj-vm-states.sxx": ("luajit-nogc64 spin -joff", lambda c: check_lj_vm_states(c, "samples/lj-vm-states.sxx", False)),
    "lj-vm-states.sxx jit": ("luajit-nogc64 spin", lambda c: check_lj_vm_states(c, "samples/lj-vm-states.sxx", True)),
    "luajit21-gc64/lj-vm-states.sxx": ("luajit-gc64 spin -joff", lambda c: check_lj_vm_states(c, "samples/luajit21-gc64/lj-vm-states.sxx", False)),
    "luajit21-gc64/lj-vm-states.sxx jit": ("luajit-gc64 spin", lambda c: check_lj_vm_states(c, "samples/luajit21-gc64/lj-vm-states.sxx", True)),
    "ngx-upstream-next.sxx": ("nginx-full", check_upstream_next),
    "ngx-upstream-post-conn.sxx": ("nginx-full", check_upstream_post_conn),
    "ngx-slow-purge-reqs.sxx": ("nginx-full", check_slow_purge),
    "ngx-zlib-total-deflate-time.sxx": ("nginx-full", check_zlib_total),
    "ngx-zlib-deflate-time.sxx": ("nginx-full", check_zlib_deflate),
    "sample-bt-leaks.sxx": ("nginx-static", check_sample_bt_leaks),
    # the sample reads nginx's LuaJIT through the non-GC64 tapset
    "ngx-lj-gc-speed.sxx": ("nginx-full-nogc64", check_lj_gc_speed),

    "ngx-pcre-dist.sxx": ("nginx-static", check_pcre_dist),
    "ngx-pcre-dist.sxx exec_time": ("nginx-static", check_pcre_exec_time),
    "ngx-rps.sxx": ("nginx-static", check_ngx_rps),
    "probe-rate.sxx": ("nginx-static", check_probe_rate),
}


# ---------------------------------------------------------------- main


def scrub(text, checkout):
    """No machine paths: corpus.py's scrub, and any directory before a
    `target/fixtures/` (the nginx fixtures link a LuaJIT by absolute rpath)."""
    text = re.sub(r"/[^\s\[\]|]*?/(target/fixtures/)", r"\1", text)
    return corpus.scrub(text, checkout)


def make_target(kind):
    if kind == "nginx-static":
        return Nginx("static")
    if kind.startswith("nginx-full"):
        return Nginx(kind.removeprefix("nginx-"))
    variant, script, flags = LJ_TARGETS[kind]
    return LuaJit(variant, script, flags)


LJ_TARGETS = {
    "luajit-nogc64 spin -joff": ("nogc64", ROOT / "tests/lua/spin.lua", ["-joff"]),
    "luajit-nogc64 cspin -joff": ("nogc64", HERE / "cspin.lua", ["-joff"]),
    "luajit-gc64 spin -joff": ("gc64", ROOT / "tests/lua/spin.lua", ["-joff"]),
    "luajit-nogc64 spin": ("nogc64", ROOT / "tests/lua/spin.lua", []),
    "luajit-gc64 spin": ("gc64", ROOT / "tests/lua/spin.lua", []),
    "luajit-nogc64 gcspin -joff": ("nogc64", HERE / "gcspin.lua", ["-joff"]),
    "luajit-gc64 gcspin -joff": ("gc64", HERE / "gcspin.lua", ["-joff"]),
    "luajit-nogc64 texits": ("nogc64", HERE / "texits.lua", []),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkout", type=Path)
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release/stapxx-rs")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    checkout = a.checkout.resolve()
    binary = a.bin.resolve()
    if os.geteuid() != 0:
        sys.exit("run as root (uprobes and BPF)")
    todo = sorted(CHECKS.items())
    if a.only:
        todo = [kv for kv in todo if any(o in kv[0] for o in a.only)]
    rows = []
    for key, (kind, check) in todo:
        sample = key.split(" ")[0]
        t = make_target(kind)
        t.start()
        try:
            row = check(Ctx(binary, checkout, t))
        except Exception as e:  # a broken check is reported, not fatal
            row = ("-", "-", "-", "error", f"check failed: {type(e).__name__}: {e}")
        finally:
            t.stop()
        row = tuple(scrub(str(x), checkout) for x in row)
        rows.append((key, kind) + row)
        print(f"{key} [{kind}]: {row[3]}: {row[4]}\n    printed: {row[2]}", file=sys.stderr)
    out = render(rows)
    if a.out:
        a.out.write_text(out)
    else:
        sys.stdout.write(out)


def render(rows):
    o = ["| sample | target | workload | independent figure | the sample printed | verdict | reason |",
         "|---|---|---|---|---|---|---|"]
    for r in rows:
        o.append("| " + " | ".join(x.replace("\n", " ") for x in r) + " |")
    counts = {}
    for r in rows:
        counts[r[5]] = counts.get(r[5], 0) + 1
    samples = {r[0].split(" ")[0] for r in rows}
    right = {r[0].split(" ")[0] for r in rows if r[5] == "right"}
    right -= {r[0].split(" ")[0] for r in rows if r[5] != "right"}
    o += ["", f"Runs {len(rows)} of {len(samples)} samples: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + f". Samples right in every run: {len(right)} of {len(samples)}."]
    return "\n".join(o) + "\n"


if __name__ == "__main__":
    main()
