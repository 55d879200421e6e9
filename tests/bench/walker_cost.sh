#!/usr/bin/env bash
# Per-sample BPF run time of lj-lua-stacks (timer.profile, the whole probe:
# walker + stats update) on deep.lua at Lua stack depth D, from the kernel's
# accounting (kernel.bpf_stats_enabled), with the target pinned to CPU 1.
# Non-target invocations (the other CPU, the target's CPU while it is off)
# are subtracted at the cost of a handler whose target is stopped.
# Usage (repo root, root): walker_cost.sh VARIANT(gc64|nogc64) DEPTH [RUNS]
# Environment: STAPXX_BIN, SCRIPT (default examples/lj-lua-stacks.sxx), STAPXX_OPTS
# (more options, e.g. "-I DIR" for another tapset directory), LJFLAGS
# (luajit options, default -joff; " " runs with the JIT on), LUAJIT (the
# interpreter, default the VARIANT test build's src/luajit: e.g. a stripped
# copy or Debian's /usr/bin/luajit).
set -euo pipefail
V=$1; D=$2; RUNS=${3:-5}
bin=${STAPXX_BIN:-target/release/stapxx-rs}
lj=target/fixtures/luajit-$V-2.1-20230119-1
exe=${LUAJIT:-$lj/src/luajit}
tmp=$(mktemp -d)
old=$(sysctl -n kernel.bpf_stats_enabled)
trap 'rm -rf "$tmp"; sysctl -qw kernel.bpf_stats_enabled=$old' EXIT
sysctl -qw kernel.bpf_stats_enabled=1
# Run time and count of the programs that process $1 holds (found through
# its fds' prog_id), so other sessions' stapxx-rs programs do not count.
stats() {
    bpftool -j prog show | python3 -c '
import glob, json, sys
ids = set()
for f in glob.glob("/proc/%s/fdinfo/*" % sys.argv[1]):
    try:
        ids.update(int(l.split()[1]) for l in open(f) if l.startswith("prog_id:"))
    except OSError:
        pass
ns = cnt = 0
for p in json.load(sys.stdin):
    if p["id"] in ids:
        ns += p.get("run_time_ns", 0); cnt += p.get("run_cnt", 0)
print(ns, cnt)' "$1"
}
cputicks() { awk '{print $14 + $15}' /proc/$1/stat; }
hz=$(getconf CLK_TCK)
khz=$( (zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r) 2>/dev/null) | sed -n "s/^CONFIG_HZ=//p")
# One window of W seconds: prints "dT dN dCPU(s)".
window() {
    local pid=$1 W=4
    "$bin" ${STAPXX_OPTS:-} "${SCRIPT:-examples/lj-lua-stacks.sxx}" -x "$pid" --arg depth="$D" > "$tmp/out" 2> "$tmp/err" &
    local run=$!
    until grep -q "Hit Ctrl-C" "$tmp/err" 2>/dev/null; do sleep 0.05; done
    sleep 1
    read -r ns0 n0 < <(stats "$run"); c0=$(cputicks "$pid")
    sleep $W
    read -r ns1 n1 < <(stats "$run"); c1=$(cputicks "$pid")
    # Ended by hand, after the second reading: a run ended by `time` could
    # be gone before it when the machine is slow to start it.
    kill -INT "$run"; wait "$run" || true
    echo "$((ns1 - ns0)) $((n1 - n0)) $(python3 -c "print(($c1 - $c0) / $hz)")"
}
taskset -c 1 env LUA_PATH="$lj/src/?.lua;;" "$exe" ${LJFLAGS--joff} tests/lua/deep.lua "$D" > /dev/null & T=$!
# Until taskset and env have exec'd LuaJIT (slow on a loaded machine).
until [ "$(readlink /proc/$T/exe)" = "$(readlink -f "$exe")" ]; do sleep 0.05; done
sleep 0.5
# Cost of an invocation that is not the target's: the target stopped.
kill -STOP $T
read -r ns n _ < <(window $T)
c_o=$(python3 -c "print($ns / max($n, 1))")
kill -CONT $T
per=()
for i in $(seq "$RUNS"); do
    read -r ns n cpu < <(window $T)
    per+=("$(python3 -c "
nt = $cpu * $khz
no = $n - nt
print(round(($ns - no * $c_o) / nt))")")
done
kill $T
echo "depth $D ($V${LJFLAGS:+, luajit${LJFLAGS}}): non-target invocation ${c_o%.*} ns; per-sample ns of $RUNS runs: ${per[*]}; median $(printf '%s\n' "${per[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') ns"
