#!/usr/bin/env python3
"""Pass times (`-v`) of examples/lj-lua-stacks.sxx against a live LuaJIT,
for one or more stapxx-rs binaries run in turn (A B A B ...), so a build
can be compared with an older one under the same machine load.

Usage (repository root, as root, after `bash examples/demo.sh` built the
demo LuaJIT once):

    python3 tests/bench/pass_times.py P RUNS BIN [BIN...]

P is the last pass (2 or 4: `-pP -v`). Each binary runs RUNS times; for
every pass it prints the median, minimum and maximum in ms, and the wall
time and the CPU time (user + system) of the whole command. The LuaJIT runs
examples/lua/demo.lua for the duration; LUAJIT names another interpreter
(with debug info).
"""
import os
import re
import resource
import statistics
import subprocess
import sys
import time

LUAJIT = os.environ.get(
    "LUAJIT", "target/fixtures/luajit-demo-2.1-20230119-1/src/luajit")
PASS = re.compile(r"^Pass (\w+): .* in ([0-9.]+) ms$")


def one(binary, last, pid):
    t0 = time.monotonic()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(
        [binary, f"-p{last}", "-v", "examples/lj-lua-stacks.sxx", "-x", str(pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = (time.monotonic() - t0) * 1000
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) * 1000
    if r.returncode != 0:
        sys.exit(f"{binary} failed ({r.returncode}):\n{r.stderr}")
    times = {}
    for line in r.stderr.splitlines():
        m = PASS.match(line.strip())
        if m:
            times[m.group(1)] = float(m.group(2))
    times["wall"] = wall
    times["cpu"] = cpu
    return times


def main():
    last, runs, bins = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    if not bins:
        sys.exit(__doc__)
    target = subprocess.Popen([LUAJIT, "examples/lua/demo.lua"],
                              stdout=subprocess.PIPE, text=True)
    try:
        target.stdout.readline()  # the workload is running
        got = {b: [] for b in bins}
        for _ in range(runs):
            for b in bins:
                got[b].append(one(b, last, target.pid))
    finally:
        target.kill()
        target.wait()
    with open("/proc/loadavg") as f:
        print(f"load average at the end: {f.read().split()[0]}")
    for b in bins:
        print(f"{b}: -p{last} -v, {runs} runs: median (min-max) ms")
        keys = [k for k in got[b][0]]
        for k in keys:
            v = [t[k] for t in got[b] if k in t]
            name = {"wall": "whole command, wall",
                    "cpu": "whole command, CPU"}.get(k, f"pass {k}")
            print(f"  {name:22} {statistics.median(v):7.1f} "
                  f"({min(v):.1f}-{max(v):.1f})")


if __name__ == "__main__":
    main()
