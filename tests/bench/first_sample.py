#!/usr/bin/env python3
"""Time from `stapxx-rs` start to its begin probe and to the first sample,
against a running `luajit -joff tests/lua/spin.lua` (CLOCK_MONOTONIC, the
clock of local_clock_ns() in kernel and host probes). Usage (repo root, root):
first_sample.py VARIANT [RUNS] [SCRIPT]; LUAJIT=PATH runs that interpreter
instead of the VARIANT test build's (a stripped copy, Debian's luajit)."""
import os, subprocess, sys, time, statistics
v = sys.argv[1]; runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
script = sys.argv[3] if len(sys.argv) > 3 else "tests/bench/first-sample.sxx"
lj = f"target/fixtures/luajit-{v}-2.1-20230119-1"
env = dict(os.environ, LUA_PATH=f"{lj}/src/?.lua;;")
exe = os.environ.get("LUAJIT", f"{lj}/src/luajit")
t = subprocess.Popen([exe, "-joff", "tests/lua/spin.lua"], stdout=subprocess.PIPE, env=env)
t.stdout.readline()
firsts, begins = [], []
try:
    for _ in range(runs):
        t0 = time.monotonic_ns()
        out = subprocess.run([os.environ.get("STAPXX_BIN", "target/release/stapxx-rs"), script, "-x", str(t.pid)],
                             capture_output=True, text=True, check=True).stdout
        w = out.split()
        begins.append((int(w[1]) - t0) / 1e6); firsts.append((int(w[3]) - t0) / 1e6)
finally:
    t.kill()
print(f"{v}: begin probe after {statistics.median(begins):.1f} ms (min {min(begins):.1f}, max {max(begins):.1f}); "
      f"first sample after {statistics.median(firsts):.1f} ms (min {min(firsts):.1f}, max {max(firsts):.1f}), median of {runs}")
