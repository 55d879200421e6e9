#!/usr/bin/env python3
"""What a 1000 Hz CPU-clock sampling event costs by itself, with no BPF
program and no ring buffer: the floor under overhead.py's slowdown figure.
Runs tests/lua/fib.lua pinned to CPU 1, alternately without and with a bare
perf event (PERF_COUNT_SW_CPU_CLOCK, period 1 ms) open on that CPU.
Usage (repo root, root): event_floor.py VARIANT [PAIRS] [N ROUNDS] [-joff]"""
import ctypes, os, statistics, struct, subprocess, sys, time

v = sys.argv[1]; pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
n = sys.argv[3] if len(sys.argv) > 3 else "32"; rounds = sys.argv[4] if len(sys.argv) > 4 else "30"
extra = sys.argv[5:]
lj = f"target/fixtures/luajit-{v}-2.1-20230119-1"
env = dict(os.environ, LUA_PATH=f"{lj}/src/?.lua;;")
libc = ctypes.CDLL(None, use_errno=True)
SYS_perf_event_open = 298  # x86-64


def open_event(cpu):
    # struct perf_event_attr (first fields; the rest zero): type SOFTWARE,
    # config CPU_CLOCK, sample_period 1 ms, enabled from the start.
    attr = struct.pack("<IIQQQQQ", 1, 128, 0, 1_000_000, 0, 0, 0).ljust(128, b"\0")
    buf = ctypes.create_string_buffer(attr, 128)
    fd = libc.syscall(SYS_perf_event_open, buf, -1, cpu, -1, 0)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "perf_event_open")
    return fd


def one(with_event):
    b = subprocess.Popen(["taskset", "-c", "1", f"{lj}/src/luajit", *extra, "tests/lua/fib.lua", n, rounds, "wait"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    b.stdout.readline()
    fd = open_event(1) if with_event else None
    t0 = time.monotonic()
    b.stdin.write("go\n"); b.stdin.flush()
    _, cpu = b.stdout.readline().split()
    wall = time.monotonic() - t0
    b.wait()
    if fd is not None:
        os.close(fd)
    return wall, float(cpu)


base, ev = [], []
for _ in range(pairs):
    base.append(one(False)); ev.append(one(True))
c0 = statistics.median(b[1] for b in base); c1 = statistics.median(e[1] for e in ev)
d = [100 * (e[1] / b[1] - 1) for b, e in zip(base, ev)]
print(f"{v} {' '.join(extra)} fib({n})x{rounds}: cpu {c0:.3f} s without, {c1:.3f} s with a bare "
      f"1000 Hz cpu-clock event: {100 * (c1 / c0 - 1):+.2f}% (median of {pairs} pairs; per pair "
      f"mean {statistics.mean(d):+.2f}% sd {statistics.stdev(d) if len(d) > 1 else 0:.2f})")
