#!/usr/bin/env python3
"""Slowdown of a CPU-bound LuaJIT benchmark (tests/lua/fib.lua, JIT on)
while lj-lua-stacks samples it at 1000 Hz (perf.sw.cpu_clock.sample(1000000)),
against the same run unprofiled; runs alternate, the benchmark pinned to
CPU 1. Usage (repo root, root): overhead.py VARIANT [PAIRS] [N ROUNDS] [-joff]
Environment: STAPXX_BIN (default target/release/stapxx-rs), STAPXX_OPTS
(more options, space-separated), SCRIPT (default examples/lj-lua-stacks.sxx;
tests/bench/empty-sampler.sxx gives the cost of the sampling alone).
Prints the medians, and the mean and standard deviation of the per-pair
slowdowns (each profiled run against the unprofiled run just before it)."""
import os, subprocess, sys, time, statistics
bin_ = os.environ.get("STAPXX_BIN", "target/release/stapxx-rs")
opts = os.environ.get("STAPXX_OPTS", "").split()
script = os.environ.get("SCRIPT", "examples/lj-lua-stacks.sxx")
v = sys.argv[1]; pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
n = sys.argv[3] if len(sys.argv) > 3 else "35"; rounds = sys.argv[4] if len(sys.argv) > 4 else "30"
extra = sys.argv[5:]
lj = f"target/fixtures/luajit-{v}-2.1-20230119-1"
env = dict(os.environ, LUA_PATH=f"{lj}/src/?.lua;;")
def one(profiled):
    b = subprocess.Popen(["taskset", "-c", "1", f"{lj}/src/luajit", *extra, "tests/lua/fib.lua", n, rounds, "wait"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    b.stdout.readline()
    prof = None
    if profiled:
        prof = subprocess.Popen([bin_, *opts, script, "-x", str(b.pid),
                                 "--arg", "probe=perf.sw.cpu_clock.sample(1000000)"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while "Hit Ctrl-C" not in prof.stderr.readline():
            pass
    t0 = time.monotonic()
    b.stdin.write("go\n"); b.stdin.flush()
    res, cpu = b.stdout.readline().split()
    wall = time.monotonic() - t0
    b.wait()
    samples = 0
    if prof:
        prof.send_signal(2)
        out, _ = prof.communicate()
        samples = sum(int(l[1:]) for l in out.splitlines() if l.startswith("\t"))
    return wall, float(cpu), samples
base, prof, ns = [], [], []
for _ in range(pairs):
    base.append(one(False)); p = one(True); prof.append(p)
print("unprofiled", " ".join(f"{b[0]:.2f}" for b in base), "profiled", " ".join(f"{p[0]:.2f}" for p in prof))
w0 = statistics.median(b[0] for b in base); w1 = statistics.median(p[0] for p in prof)
c0 = statistics.median(b[1] for b in base); c1 = statistics.median(p[1] for p in prof)
s = statistics.median(p[2] / p[0] for p in prof)
print(f"{v} {' '.join(extra)} fib({n})x{rounds}: unprofiled wall {w0:.3f} s cpu {c0:.3f} s; "
      f"profiled wall {w1:.3f} s cpu {c1:.3f} s ({s:.0f} samples/s recorded); "
      f"slowdown wall {100 * (w1 / w0 - 1):+.2f}%, cpu {100 * (c1 / c0 - 1):+.2f}% (medians of {pairs} pairs)")
for i, what in ((0, "wall"), (1, "cpu")):
    d = [100 * (p[i] / b[i] - 1) for b, p in zip(base, prof)]
    sd = statistics.stdev(d) if len(d) > 1 else 0.0
    print(f"  per-pair {what} slowdown: mean {statistics.mean(d):+.2f}% sd {sd:.2f} "
          f"(min {min(d):+.2f}%, max {max(d):+.2f}%)")
