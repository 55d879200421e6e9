#!/usr/bin/env python3
"""Cost of an empty handler for each probe kind.

Usage (repository root, as root, after `cargo build --release`):

    python3 tests/bench/probe_kinds.py [PAIRS] [N]

For every kind it prints the BPF run time per event, from the kernel's own
accounting (kernel.bpf_stats_enabled; only the programs the measured
stapxx-rs process holds count, so other sessions' programs do not), as
median (min-max) over the runs.

Uprobe kinds (function at -O0 and -O2, .return, .statement, .mark, .plt)
run on tests/bench/probe_loop.c, pinned to CPU 1: rounds of N loop
iterations (default 200 000), each iteration hitting the probed site once,
in PAIRS pairs (default 7) of one round without stapxx-rs and one with it
attached, the order alternating from pair to pair. Besides the BPF time
they print the wall-clock cost per call, (with - without) / N, which
includes the uprobe trap (breakpoint, handler dispatch, executing or
emulating the displaced instruction) that the BPF time leaves out.

Kernel kinds (timer.profile, perf.sw.cpu_clock.sample(1000000),
kernel.trace("sched:sched_switch"), kernel.trace("syscalls:sys_enter_openat"),
and SystemTap's syscall.openat alias from its installed tapset tree)
are measured over PAIRS windows of 2 s with every CPU kept busy by a
spinning shell (for openat: shells opening /dev/null in a loop), from 0.5 s
after the start. A third argument `kernel` runs only these.

Two more rows put the sites of function("work") and mark("tick") -O2 (the
file offsets stapxx-rs -p2 gives) as plain tracefs uprobe events, with no
BPF program and no stapxx-rs: the kernel's trap alone. A kind that fails
prints the first line of stapxx-rs's error instead of figures.

STAPXX_BIN names another binary.
"""
import glob
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("STAPXX_BIN", "target/release/stapxx-rs")
SRC = "tests/bench/probe_loop.c"


def prog_ids(pid):
    """The ids of the BPF programs process pid holds."""
    ids = set()
    for f in glob.glob(f"/proc/{pid}/fdinfo/*"):
        try:
            with open(f) as fd:
                ids.update(int(l.split()[1]) for l in fd if l.startswith("prog_id:"))
        except OSError:
            pass
    return ids


def prog_stats(pid):
    """Run time (ns) and count summed over the programs process pid holds."""
    ids = prog_ids(pid)
    out = subprocess.run(["bpftool", "-j", "prog", "show"],
                         capture_output=True, text=True, check=True).stdout
    ns = cnt = 0
    for p in json.loads(out):
        if p["id"] in ids:
            ns += p.get("run_time_ns", 0)
            cnt += p.get("run_cnt", 0)
    return ns, cnt


def start(script, tmp):
    """Starts stapxx-rs on script; returns once its begin probe has run,
    or the first line of its error if it ends instead."""
    path = os.path.join(tmp, "p.stp")
    with open(path, "w") as f:
        f.write('probe begin { printf("attached\\n") }\n' + script + "\n")
    out = open(os.path.join(tmp, "out"), "w+")
    err = open(os.path.join(tmp, "err"), "w+")
    run = subprocess.Popen([BIN, path], stdout=out, stderr=err)
    while True:
        out.seek(0)
        if "attached" in out.read():
            break
        if run.poll() is not None:
            err.seek(0)
            lines = err.read().strip().splitlines() or [f"exit status {run.returncode}"]
            return lines[0]
        time.sleep(0.05)
    # The kernel programs run from when the begin probes have finished.
    time.sleep(0.3)
    return run


def stop(run):
    run.send_signal(signal.SIGINT)
    run.wait()


def fmt(v, unit="ns"):
    return f"{statistics.median(v):.0f} {unit} ({min(v):.0f}-{max(v):.0f})"


def uprobe_kind(name, exe, point, pairs, n, tmp, tracefs=False):
    loop = subprocess.Popen(["taskset", "-c", "1", exe, str(n)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    loop.stdout.readline()

    def round_ns():
        loop.stdin.write("go\n")
        loop.stdin.flush()
        return int(loop.stdout.readline())

    round_ns()  # warm up
    if tracefs:
        offset = site_offset(exe, point)
        if not offset:
            print(f"| {name} | no site offset in `-p2` | | |", flush=True)
            loop.stdin.close()
            loop.wait()
            return
    bare, probed, bpf, counts = [], [], [], []
    for i in range(pairs):
        for with_probe in ((False, True) if i % 2 == 0 else (True, False)):
            if not with_probe:
                bare.append(round_ns())
                continue
            if tracefs:
                tracefs_attach(exe, offset)
                probed.append(round_ns())
                tracefs_detach()
                continue
            run = start(f'probe process("{exe}").{point} {{ }}', tmp)
            if isinstance(run, str):
                loop.stdin.close()
                loop.wait()
                print(f"| {name} | fails: {run} | | |", flush=True)
                return
            ns0, c0 = prog_stats(run.pid)
            probed.append(round_ns())
            ns1, c1 = prog_stats(run.pid)
            stop(run)
            bpf.append((ns1 - ns0) / max(c1 - c0, 1))
            counts.append(c1 - c0)
    loop.stdin.close()
    loop.wait()
    if tracefs:
        print(f"| {name} | no BPF | {fmt([(p - b) / n for p, b in zip(probed, bare)])} | "
              f"loop alone {fmt([b / n for b in bare], 'ns')} per iteration |", flush=True)
        return
    extra = [(p - b) / n for p, b in zip(probed, bare)]
    odd = "" if all(c == n for c in counts) else f"; events per round {sorted(set(counts))}, expected {n}"
    print(f"| {name} | {fmt(bpf)} | {fmt(extra)} | "
          f"loop alone {fmt([b / n for b in bare], 'ns')} per iteration{odd} |", flush=True)


TRACEFS = "/sys/kernel/tracing"


def tracefs_write(name, text):
    fd = os.open(f"{TRACEFS}/{name}", os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def site_offset(exe, point):
    """The file offset stapxx-rs -p2 gives the site of point."""
    out = subprocess.run([BIN, "-p2", "-e", f'probe process("{exe}").{point} {{ }}'],
                         capture_output=True, text=True).stdout
    m = re.search(r"file offset (0x[0-9a-f]+)", out)
    return m and m.group(1)


def tracefs_attach(exe, offset):
    """A plain kernel uprobe event (tracefs, no BPF) at exe:offset: the
    trap alone."""
    tracefs_write("uprobe_events", f"p:stx_bench {exe}:{offset}\n")
    tracefs_write("events/uprobes/stx_bench/enable", "1")


def tracefs_detach():
    tracefs_write("events/uprobes/stx_bench/enable", "0")
    tracefs_write("uprobe_events", "-:stx_bench\n")


def kernel_kind(name, point, pairs, tmp, load="while :; do :; done"):
    spin = [subprocess.Popen(["sh", "-c", load])
            for _ in range(os.cpu_count())]
    per, rates = [], []
    try:
        for _ in range(pairs):
            run = start(f"probe {point} {{ }}", tmp)
            if isinstance(run, str):
                print(f"| {name} | fails: {run} | | |", flush=True)
                return
            time.sleep(0.5)
            ns0, c0 = prog_stats(run.pid)
            time.sleep(2)
            ns1, c1 = prog_stats(run.pid)
            stop(run)
            per.append((ns1 - ns0) / max(c1 - c0, 1))
            rates.append((c1 - c0) / 2)
    finally:
        for s in spin:
            s.kill()
            s.wait()
    print(f"| {name} | {fmt(per)} | — | {fmt(rates, 'events/s')} |", flush=True)


def main():
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    only_kernel = len(sys.argv) > 3 and sys.argv[3] == "kernel"
    with open(SRC) as f:
        line = next(i for i, l in enumerate(f, 1) if "/* STATEMENT */" in l)
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        old = f.read().strip()
    with tempfile.TemporaryDirectory() as tmp:
        exe = {}
        for opt in ("-O0", "-O2"):
            exe[opt] = os.path.join(tmp, f"probe_loop{opt}")
            subprocess.run(["cc", "-g", opt, "-fno-builtin-labs", "-o", exe[opt], SRC],
                           check=True)
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
        try:
            with open("/proc/loadavg") as f:
                print(f"load average at the start: {f.read().split()[0]}")
            print(f"{pairs} pairs, {n} calls per round")
            print("| probe | BPF time per event | wall clock per call, added | notes |")
            print("| --- | --- | --- | --- |")
            stmt = f'statement("work@probe_loop.c:{line}")'
            for name, opt, point in [] if only_kernel else [
                ('`function("work")` -O0 (after the prologue)', "-O0", 'function("work")'),
                ('`function("work")` -O2', "-O2", 'function("work")'),
                ('`function("work").return` -O2', "-O2", 'function("work").return'),
                (f"`{stmt}` -O2", "-O2", stmt),
                ('`mark("tick")` -O2', "-O2", 'mark("tick")'),
                ('`plt("labs")` -O2', "-O2", 'plt("labs")'),
            ]:
                uprobe_kind(name, exe[opt], point, pairs, n, tmp)
            for name, opt, point in [] if only_kernel else [
                ('the site of `function("work")` -O2 as a tracefs uprobe event', "-O2", 'function("work")'),
                ('the site of `mark("tick")` -O2 as a tracefs uprobe event', "-O2", 'mark("tick")'),
            ]:
                uprobe_kind(name, exe[opt], point, pairs, n, tmp, tracefs=True)
            for name, point in [
                ("`timer.profile`", "timer.profile"),
                ("`perf.sw.cpu_clock.sample(1000000)`", "perf.sw.cpu_clock.sample(1000000)"),
                ('`kernel.trace("sched:sched_switch")` (raw tracepoint)', 'kernel.trace("sched:sched_switch")'),
            ]:
                kernel_kind(name, point, pairs, tmp)
            # A record tracepoint, under shells opening /dev/null in a loop.
            kernel_kind('`kernel.trace("syscalls:sys_enter_openat")` (record)',
                        'kernel.trace("syscalls:sys_enter_openat")', pairs, tmp,
                        load="while :; do : < /dev/null; done")
            # SystemTap's alias, from its installed tapset tree: the
            # tp_syscall variant on raw sys_enter, which every system call
            # runs up to its syscall-number gate (openat's prologue then
            # formats argstr as stap does).
            kernel_kind('`syscall.openat` (tapset alias -> raw `sys_enter`, per system call)',
                        'syscall.openat', pairs, tmp,
                        load="while :; do : < /dev/null; done")
            with open("/proc/loadavg") as f:
                print(f"load average at the end: {f.read().split()[0]}")
        finally:
            subprocess.run(["sysctl", "-qw", f"kernel.bpf_stats_enabled={old}"])


if __name__ == "__main__":
    main()
