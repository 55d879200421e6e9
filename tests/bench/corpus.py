#!/usr/bin/env python3
"""OpenResty's stapxx sample corpus through stapxx-rs, up to pass 4 (issue 19).

    sudo python3 tests/bench/corpus.py STAPXX_CHECKOUT [--nginx static|dynamic|full]
        [--bin target/release/stapxx-rs] [--p2-timeout S] [--p4-timeout S]
        [--only NAME ...] [--out FILE]

STAPXX_CHECKOUT is an unpacked openresty/stapxx tree (its `samples/` and
`tapset/`); nothing of it is copied anywhere. Every sample is run unchanged
against a live target of the kind it is written for:

* the `lj-*` samples (generic LuaJIT tools: they find the VM through the
  interpreter's `globalL`) on LuaJIT's own interpreter running
  `tests/lua/spin.lua`: the non-GC64 build for `samples/`, whose `@use
  luajit` tapset has the non-GC64 layouts, the GC64 build for
  `samples/luajit21-gc64/` (`@use luajit_gc64`: stapxx keeps both tapsets
  in the one `tapset/` directory, so `-I tapset` serves both);
* everything else (nginx, lua-nginx-module, LuaJIT inside nginx, and the
  process-wide tools: epoll, syscalls, backtraces) on an nginx worker of
  the test suite's -g build (`--nginx`: static or dynamic Lua module),
  with a minimal configuration of our own: `content_by_lua` handlers of
  `stapxx-rs/tests/nginx/` and one shared dict.

The targets are the fixtures the test suite builds and caches under
`target/fixtures/` (run a test that uses them first: this script never
builds anything). For each sample it runs

    stapxx-rs SAMPLE -x PID -I tapset [ARGS] -p2      (resolve)
    stapxx-rs SAMPLE -x PID -I tapset [ARGS] -p4      (load and verify; only if -p2 passed)

from the checkout (so messages name `samples/...`), and when -p2 fails,
`-p1` too, to tell a parse failure from a resolve failure. ARGS are the
`--arg`s a sample cannot run without (no `:default(...)`), with the values
its README documents, and the flags the README shows it with
(`--skip-badvars`). It prints a markdown table: the last pass reached,
each pass's result, the first error line (file:line:col and message),
totals, and the failures grouped by cause. Must run as root (uprobes,
BPF). Everything started is stopped at the end.

With `--stap`, SystemTap itself is asked too, as the oracle of pass 2:
the checkout's own `stap++` runs the sample with the same arguments
against the same process, with `stap -p2` (resolve only, no module is
built). stap insists on a kernel build tree even for pass 2, so it gets
a stub one (`-r`): a `.config` that says uprobes and tracepoints are
there, and the running kernel's release; nothing of the kernel's own
debug information, so its verdict on kernel probes (`syscall.*`,
`kernel.function`, `timer.profile` with kernel context) is "no kernel
debuginfo" and says nothing. On user-space probes it is stap's own
answer: which DWARF it finds, which `$var`s it can read where.
"""

import argparse
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "target" / "fixtures"
LJ_VERSION = "2.1-20230119-1"
NGINX_VERSION = "1.22.1"

# `--arg`s without a default, with the values stapxx's README gives them
# (or, where it gives none, a value that names something in our targets).
# `$^exec_path` / `$^libluajit_path` in a value are expanded by stap++, so
# they are passed as written.
REQUIRED_ARGS = {
    "func-latency-distr.sxx": [
        'func=process("$^libluajit_path").function("lj_str_new")',
    ],
    "lj-find-str.sxx": ["str=ready"],
    "ngx-lua-shdict-info.sxx": ["dict=dogs"],
    "ngx-upstream-latency.sxx": ["port={port}"],  # the nginx's own port
    "probe-rate.sxx": [
        'probe=process("$^exec_path").function("ngx_http_process_request")',
    ],
    "openssl-handshake-diagnosis.sxx": ["time=10"],
    "sample-bt.sxx": ["time=5"],
    "unix-stream-socks.sxx": ["file=/run/corpus-none.sock"],
}

# Flags the README runs a sample with.
EXTRA_FLAGS = {
    "lj-lua-bt.sxx": ["--skip-badvars"],
    "lj-lua-stacks.sxx": ["--skip-badvars"],
    "ngx-pcre-top.sxx": ["--skip-badvars"],
}

# Causes of failures: the first pattern matching the first error line
# names the group. Anything else is grouped by its message with names and
# numbers blanked out.
CAUSES = [
    (r"kernel\.function: this kernel has no kprobes",
     "`kernel.function` point (through a `vfs.*`/`tcp.*` tapset alias): this kernel has no kprobes"),
    (r"struct MRef has no member 'ptr32'",
     "non-GC64 tapset (`@use luajit`) read on a GC64 LuaJIT"),
    (r"has no member", "struct member not in the target's types"),
    (r"function '[^']*' \(nearest:[^)]*\) not found in", "probe point's function not in the target"),
    (r"code for line \d+ of '[^']*' .* not found in", "`.statement` line with no code in the target"),
    (r"is read differently in the functions this probe matches",
     "a `$var` read differently at the sites one probe matches"),
    (r"target variable '[^']*' not found in function",
     "a `$var` missing at one of the sites one probe matches (`@defined` not per site)"),
    (r"optimized out at the probe address|DW_OP_entry_value away from the function entry",
     "a `$var` not readable at the probe address (optimized out / entry value)"),
    (r"has no DWARF for function", "library without debug info"),
    (r"tracepoint raw_syscalls:sys_\w+ has no variable",
     "`syscall.*` argument `$var` not offered on raw_syscalls"),
    (r"is embedded C", "tapset embedded-C function not translated"),
    (r"no --arg \w+=VAL option is specified", "required `--arg` missing"),
]


def samples(checkout):
    """(relative path, target kind) of every sample, sorted."""
    out = []
    for p in sorted((checkout / "samples").rglob("*.sxx")):
        rel = p.relative_to(checkout)
        if p.name.startswith("lj-"):
            gc64 = "luajit21-gc64" in rel.parts
            out.append((str(rel), "luajit-gc64" if gc64 else "luajit-nogc64"))
        else:
            out.append((str(rel), "nginx"))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return sorted(int(x) for x in path.read_text().split())
    except OSError:
        return []


def wait_for(cond, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


class Nginx:
    """The test suite's nginx build, in a prefix of its own, on loopback."""

    def __init__(self, shape):
        if shape.startswith("full"):  # the bench-only build with proxy, gzip, charset, SSL
            import nginx_full

            nginx_full.build(*shape.split("-")[1:2])
        self.dir = FIX / f"nginx-{shape}-{NGINX_VERSION}"
        self.exe = self.dir / "sbin" / "nginx"
        if not self.exe.is_file():
            sys.exit(f"no {self.exe}: run the nginx tests once to build it")
        mods = self.dir / "modules"
        self.modules = (
            [mods / "ndk_http_module.so", mods / "ngx_http_lua_module.so"]
            if shape == "dynamic"
            else []
        )
        libs = [
            FIX / "lua-resty-core-0.1.25-1-deb",
            FIX / "lua-resty-lrucache-0.13-10-deb",
        ]
        self.lua_path = ";".join(f"{d}/usr/share/lua/5.1/?.lua" for d in libs) + ";;"
        self.prefix = Path(tempfile.mkdtemp(prefix="corpus-nginx-", dir=ROOT / "target" / "tmp"))
        self.port = free_port()
        self.proc = None

    def config(self):
        hot = ROOT / "stapxx-rs/tests/nginx/hot.lua"
        fast = ROOT / "stapxx-rs/tests/nginx/fast.lua"
        load = "".join(f"load_module {m};\n" for m in self.modules)
        return (
            f"{load}user root;\nworker_processes 1;\ndaemon off;\n"
            "master_process on;\npid logs/nginx.pid;\n"
            "error_log logs/error.log notice;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "    access_log off;\n"
            f'    lua_package_path "{self.lua_path}";\n'
            "    lua_shared_dict dogs 1m;\n"
            "    server {\n"
            f"        listen 127.0.0.1:{self.port};\n"
            f"        location = /hot {{ content_by_lua_file {hot}; }}\n"
            f"        location = /fast {{ content_by_lua_file {fast}; }}\n"
            "        location = /dict { content_by_lua_block {\n"
            '            ngx.shared.dogs:set("k", ngx.now()) ngx.say("ok") } }\n'
            "    }\n"
            "}\n"
        )

    def start(self):
        for d in ("conf", "logs"):
            (self.prefix / d).mkdir(parents=True, exist_ok=True)
        (self.prefix / "conf/nginx.conf").write_text(self.config())
        self.proc = subprocess.Popen(
            [str(self.exe), "-p", str(self.prefix), "-c", "conf/nginx.conf"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for(lambda: self.worker() and self.answers(), 20):
            log = (self.prefix / "logs/error.log").read_text(errors="replace")
            self.stop()
            sys.exit(f"nginx did not come up:\n{log}")
        for uri in ("/fast", "/hot", "/dict"):
            self.get(uri)

    def worker(self):
        kids = children_of(self.proc.pid)
        return kids[0] if kids else None

    def get(self, uri):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(f"GET {uri} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            return s.recv(4096)

    def answers(self):
        try:
            return self.get("/fast").startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)


class LuaJit:
    """LuaJIT's own interpreter (-g build) on tests/lua/spin.lua."""

    def __init__(self, variant):
        self.dir = FIX / f"luajit-{variant}-{LJ_VERSION}"
        self.exe = self.dir / "src" / "luajit"
        if not self.exe.is_file():
            sys.exit(f"no {self.exe}: run the LuaJIT tests once to build it")
        self.proc = None

    def start(self):
        env = dict(os.environ, LUA_PATH=f"{self.dir}/src/?.lua;;")
        self.proc = subprocess.Popen(
            [str(self.exe), str(ROOT / "tests/lua/spin.lua")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=env,
        )
        if self.proc.stdout.readline().strip() != b"ready":
            self.stop()
            sys.exit(f"{self.exe} did not start spin.lua")

    def worker(self):
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def first_error(text):
    """The first line that reports an error, else the last non-empty one."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in lines:
        if re.search(r"\berror\b|^ERROR", l, re.I):
            return l
    return lines[-1] if lines else ""


def scrub(line, checkout):
    """No machine paths in the table: the checkout and the workspace become
    relative, other absolute paths under them too."""
    for base, name in ((str(checkout) + "/", ""), (str(ROOT) + "/", "")):
        line = line.replace(base, name)
    return line.replace("|", "\\|")


def first_warning(text):
    return next((l.strip() for l in text.splitlines() if "warning" in l.lower()), "")


def run_pass(binary, checkout, sample, pid, args, n, timeout):
    cmd = [str(binary), sample, "-x", str(pid), "-I", "tapset", *args, f"-p{n}"]
    env = dict(os.environ, DEBUGINFOD_URLS="")
    try:
        r = subprocess.run(
            cmd, cwd=checkout, env=env, capture_output=True, text=True,
            errors="replace", timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return "timeout", f"no answer in {timeout} s", ""
    if r.returncode == 0:
        return "ok", "", first_warning(r.stderr)
    return "error", first_error(r.stderr) or f"exit status {r.returncode}", ""


class StapOracle:
    """`stap++` with `stap -p2 -r STUB` in front of it on PATH."""

    CONFIG = [
        "CONFIG_UPROBES", "CONFIG_UPROBE_EVENTS", "CONFIG_ARCH_SUPPORTS_UPROBES",
        "CONFIG_KPROBES", "CONFIG_TRACEPOINTS", "CONFIG_KALLSYMS", "CONFIG_DEBUG_INFO",
        "CONFIG_PERF_EVENTS", "CONFIG_HAVE_PERF_EVENTS", "CONFIG_MODULES", "CONFIG_HIGH_RES_TIMERS",
    ]

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="corpus-stap-", dir=ROOT / "target" / "tmp"))
        tree = self.dir / "build"
        (tree / "include/config").mkdir(parents=True)
        (tree / "include/config/kernel.release").write_text(os.uname().release + "\n")
        (tree / ".config").write_text("".join(f"{c}=y\n" for c in self.CONFIG))
        (tree / "Makefile").touch()
        # ... and `.return` uprobes from the symbol table: the kernel
        # function that plants the return address.
        (tree / "System.map").write_text(
            "ffffffff81000000 T arch_uretprobe_hijack_return_addr\n")
        # stap decides what the kernel offers from its exports: perf.*
        # points want perf_event_create_kernel_counter (timer.profile falls
        # back to perf.sw.cpu_clock).
        exports = ["perf_event_create_kernel_counter"]
        (tree / "Module.symvers").write_text(
            "".join(f"0x00000000\t{e}\tvmlinux\tEXPORT_SYMBOL_GPL\t\n" for e in exports))
        real = shutil.which("stap")
        if not real:
            sys.exit("--stap: no stap on PATH")
        shim = self.dir / "bin" / "stap"
        shim.parent.mkdir()
        shim.write_text(f'#!/bin/sh\nexec {real} -r {tree} -p2 "$@"\n')
        shim.chmod(0o755)

    def run(self, checkout, sample, pid, args, timeout):
        cmd = ["perl", "stap++", sample, "-x", str(pid), "-I", "tapset", *args]
        env = dict(os.environ, PATH=f"{self.dir / 'bin'}:{os.environ['PATH']}",
                   DEBUGINFOD_URLS="")
        try:
            r = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True,
                               errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", f"no answer in {timeout} s"
        # stap++ exits 0 whatever stap said (it only closes its pipe), so
        # the verdict is read from what stap printed: pass 2 prints the
        # resolved probes on stdout, and a failure says so on stderr.
        failed = r.returncode != 0 or "analysis failed" in r.stderr \
            or "semantic error" in r.stderr or not r.stdout.strip()
        if not failed:
            return "ok", ""
        lines = [l.strip() for l in r.stderr.splitlines() if l.strip()]
        # "while resolving probe point" only says where; the next semantic
        # error says why.
        sem = [l for l in lines if l.startswith("semantic error")]
        err = next((l for l in sem if "while resolving probe point" not in l), None) \
            or next(iter(sem), None) \
            or next((l for l in lines if "error" in l.lower()), None) \
            or (lines[-1] if lines else f"exit status {r.returncode}")
        return "error", err

    def stop(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def cause_of(msg):
    for pat, label in CAUSES:
        if re.search(pat, msg):
            return label
    body = re.sub(r"^\S+:\d+:\d+:\s*", "", msg)
    body = re.sub(r"^error:\s*", "", body)
    body = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "…", body)
    return re.sub(r"\b\d+\b", "N", body)[:120]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkout", type=Path)
    ap.add_argument("--nginx", choices=["static", "dynamic", "full", "full-nogc64"], default="static")
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release/stapxx-rs")
    ap.add_argument("--p2-timeout", type=int, default=120)
    ap.add_argument("--p4-timeout", type=int, default=300)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--stap", action="store_true",
                    help="also ask stap++ and stap -p2 (with a stub kernel tree)")
    a = ap.parse_args()
    checkout = a.checkout.resolve()
    binary = a.bin.resolve()
    if os.geteuid() != 0:
        sys.exit("run as root (uprobes and BPF)")
    todo = samples(checkout)
    if a.only:
        todo = [s for s in todo if any(o in s[0] for o in a.only)]

    targets = {}
    rows = []
    oracle = StapOracle() if a.stap else None
    try:
        for sample, kind in todo:
            if kind not in targets:
                t = Nginx(a.nginx) if kind == "nginx" else LuaJit(kind.split("-")[1])
                t.start()
                targets[kind] = t
            t = targets[kind]
            name = Path(sample).name
            args, shown = [], []
            for v in REQUIRED_ARGS.get(name, []):
                args += ["--arg", v.format(port=getattr(t, "port", 0))]
                # The table shows the port as what it is, not a number that
                # changes every run.
                shown.append(v.format(port="PORT"))
            args += EXTRA_FLAGS.get(name, [])
            shown += EXTRA_FLAGS.get(name, [])
            pid = t.worker()
            p2, err, warn = run_pass(binary, checkout, sample, pid, args, 2, a.p2_timeout)
            p4, reached = "-", 2 if p2 == "ok" else 0
            if p2 == "ok":
                p4, err, warn = run_pass(binary, checkout, sample, pid, args, 4, a.p4_timeout)
                reached = 4 if p4 == "ok" else 2
            elif run_pass(binary, checkout, sample, pid, args, 1, a.p2_timeout)[0] == "ok":
                reached = 1
            label = "nginx-" + a.nginx if kind == "nginx" else kind
            note = scrub(err or (f"(warning) {warn}" if warn else ""), checkout)
            stap = None
            if oracle:
                verdict, why = oracle.run(checkout, sample, pid, args, a.p2_timeout)
                why = why.replace(str(oracle.dir.relative_to(ROOT)) + "/build", "STUB-KERNEL-TREE")
                why = re.sub(r"stapxx-\w{8}/", "STAPXX-TMP/", why)
                stap = (verdict, scrub(why, checkout))
            rows.append((sample, label, shown, reached, p2, p4, note, stap))
            print(f"{sample}: p2 {p2}, p4 {p4} {err} stap {stap}", file=sys.stderr)
    finally:
        for t in targets.values():
            t.stop()
        if oracle:
            oracle.stop()

    out = render(rows)
    if a.out:
        a.out.write_text(out)
    else:
        sys.stdout.write(out)


def render(rows):
    stap = any(r[7] for r in rows)
    head = "| sample | target | last pass | -p2 | -p4 | first error (or first warning) |"
    rule = "|---|---|---|---|---|---|"
    if stap:
        head += " stap -p2 | stap's first error |"
        rule += "---|---|"
    o = [head, rule]
    for sample, target, args, reached, p2, p4, err, oracle in rows:
        shown = sample.removeprefix("samples/")
        if args:
            shown += " " + " ".join(f"`{x}`" for x in args)
        line = f"| {shown} | {target} | {reached} | {p2} | {p4} | {err} |"
        if stap:
            line += f" {oracle[0]} | {oracle[1]} |"
        o.append(line)
    n = len(rows)
    n1 = sum(1 for r in rows if r[3] >= 1)
    n2 = sum(1 for r in rows if r[4] == "ok")
    n4 = sum(1 for r in rows if r[5] == "ok")
    o += ["", f"Samples {n}: parse {n1}, resolve (-p2) {n2}, load and verify (-p4) {n4}.", ""]
    if stap:
        both = sum(1 for r in rows if r[4] == "ok" and r[7][0] == "ok")
        ours = sum(1 for r in rows if r[4] == "ok" and r[7][0] != "ok")
        theirs = sum(1 for r in rows if r[4] != "ok" and r[7][0] == "ok")
        o += [f"-p2 against stap's: both pass {both}, only stapxx-rs passes {ours}, "
              f"only stap passes {theirs}, both fail {n - both - ours - theirs}.", ""]
    groups = collections.defaultdict(list)
    for sample, _, _, reached, p2, p4, err, _ in rows:
        if p4 != "ok":
            where = "p2" if p2 != "ok" else "p4"
            groups[cause_of(err)].append(f"{sample.removeprefix('samples/')} ({where})")
    o += ["| failures | cause | samples |", "|---|---|---|"]
    for cause, names in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        cause = cause.replace("|", "\\|")
        o.append(f"| {len(names)} | {cause} | {', '.join(names)} |")
    return "\n".join(o) + "\n"


if __name__ == "__main__":
    main()
