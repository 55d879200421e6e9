#!/usr/bin/env python3
"""How many output records per second kernel probes can send before any is
lost, with the default ring buffer (or `-s MB`).

Usage (repository root, as root, after `cargo build --release`):

    python3 tests/bench/output_rate.py [SECONDS] [MB]

A timer.profile probe prints N records of ~170 bytes per tick on every CPU
for SECONDS (default 5) into a file (stdout redirected, the fastest reader
there is) and counts its attempts; the run's end-of-session warning says how
many were lost. N doubles from 100 until records are lost, then bisects;
for each N tried it prints records attempted per second, records written per
second and records lost. The last line is the highest rate with no loss.
STAPXX_BIN names another binary.
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("STAPXX_BIN", os.path.join(ROOT, "target/release/stapxx-rs"))
SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
MB = sys.argv[2] if len(sys.argv) > 2 else None

SCRIPT = """global attempted
probe timer.profile {
  for (i = 0; i < %d; i++) {
    printf("%%d %%d %%s\\n", cpu(), i, "%s")
    attempted++
  }
}
probe timer.s(%d) { exit() }
probe end { printf("attempted %%d\\n", attempted) }
"""


def run(n):
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "flood.stp")
        with open(script, "w") as f:
            f.write(SCRIPT % (n, "x" * 150, SECONDS))
        out = os.path.join(d, "out")
        args = [BIN, "-D", "MAXACTION=1000000", script]
        if MB:
            args[1:1] = ["-s", MB]
        with open(out, "w") as o:
            err = subprocess.run(args, stdout=o, stderr=subprocess.PIPE, text=True).stderr
        attempted = written = 0
        with open(out) as f:
            for line in f:
                if line.startswith("attempted "):
                    attempted = int(line.split()[1])
                else:
                    written += 1
        m = re.search(r"WARNING: (\d+) output records lost", err)
        lost = int(m.group(1)) if m else 0
        return attempted, written, lost


def show(n, r):
    attempted, written, lost = r
    print(f"N={n:6d}: {attempted / SECONDS:12.0f} attempted/s {written / SECONDS:12.0f} written/s {lost:10d} lost", flush=True)


best = None
lo, hi = None, None
n = 100
while hi is None and n <= 200000:
    r = run(n)
    show(n, r)
    if r[2] == 0:
        lo, best = n, r
        n *= 2
    else:
        hi = n
while hi is not None and lo is not None and hi - lo > max(lo // 20, 1):
    mid = (lo + hi) // 2
    r = run(mid)
    show(mid, r)
    if r[2] == 0:
        lo, best = mid, r
    else:
        hi = mid
if best:
    print(f"highest rate with no loss: {best[1] / SECONDS:.0f} records/s ({best[1] * 170 / SECONDS / 1e6:.0f} MB/s) at N={lo}")
