#!/usr/bin/env python3
"""Overhead of SystemTap's syscall tapsets, run as written, on a
syscall-heavy command.

Usage (repository root, as root, after `cargo build --release`, with
systemtap-common installed):

    python3 tests/bench/syscall_overhead.py [PAIRS] [COUNT]

The workload is `dd if=/dev/zero of=/dev/null bs=1 count=COUNT` (default
200 000: two system calls per byte), pinned to CPU 1. For each script it
runs PAIRS pairs (default 5) of one dd without tracing and one with
stapxx-rs attached, the order alternating from pair to pair, with the
kernel's BPF statistics off (they add two clock reads per program run),
and prints the median wall time of each and the added time per system
call. Then one more traced dd with kernel.bpf_stats_enabled=1 gives the
BPF run time per program run, summed over the programs the stapxx-rs
process holds.

The scripts: an empty `syscall.openat` (its alias prologue still runs, as
in stap: the tp_syscall variant on raw sys_enter, which every system call
enters and leaves at the syscall-number gate), and a count of every system
call by name (`syscall.*`: one handler per system call of the tree, all on
sys_enter).

STAPXX_BIN names another binary.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from probe_kinds import prog_ids, prog_stats, start, stop  # noqa: E402

SCRIPTS = [
    ("`syscall.openat { }`", "probe syscall.openat { }"),
    ("`syscall.* { calls[name]++ }`",
     "global calls\nprobe syscall.* { calls[name]++ }\nprobe end { }"),
]


def dd(count):
    t = time.monotonic()
    subprocess.run(["taskset", "-c", "1", "dd", "if=/dev/zero", "of=/dev/null",
                    "bs=1", f"count={count}"],
                   check=True, stderr=subprocess.DEVNULL)
    return time.monotonic() - t


def main():
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        old = f.read().strip()
    try:
        with open("/proc/loadavg") as f:
            print(f"load average at the start: {f.read().split()[0]}")
        print(f"{pairs} pairs of dd bs=1 count={count} ({2 * count} system calls)")
        print("| script | handlers | dd alone | dd traced | added per system call | BPF time per program run |")
        print("| --- | --- | --- | --- | --- | --- |")
        with tempfile.TemporaryDirectory() as tmp:
            dd(count)  # warm up
            for name, script in SCRIPTS:
                subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"], check=True)
                bare, traced = [], []
                nprogs = 0
                for i in range(pairs):
                    order = ("bare", "traced") if i % 2 == 0 else ("traced", "bare")
                    for which in order:
                        if which == "bare":
                            bare.append(dd(count))
                            continue
                        run = start(script, tmp)
                        if isinstance(run, str):
                            print(f"| {name} | fails: {run} | | | | |", flush=True)
                            return
                        nprogs = len(prog_ids(run.pid))
                        traced.append(dd(count))
                        stop(run)
                subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
                run = start(script, tmp)
                ns0, c0 = prog_stats(run.pid)
                dd(count)
                ns1, c1 = prog_stats(run.pid)
                stop(run)
                per_run = (ns1 - ns0) / max(c1 - c0, 1)
                b, t = statistics.median(bare), statistics.median(traced)
                added = (t - b) / (2 * count) * 1e9
                print(f"| {name} | {nprogs} programs | {b:.2f} s | {t:.2f} s | "
                      f"{added:.0f} ns | {per_run:.0f} ns |", flush=True)
        with open("/proc/loadavg") as f:
            print(f"load average at the end: {f.read().split()[0]}")
    finally:
        subprocess.run(["sysctl", "-qw", f"kernel.bpf_stats_enabled={old}"])


if __name__ == "__main__":
    main()
