#!/usr/bin/env bash
# Per-event BPF run time of empty probe handlers, from the kernel's own
# accounting (kernel.bpf_stats_enabled): an empty timer.profile handler and
# an empty uprobe handler. Run as root from the repository root after
# `cargo build --release` (STAPXX_BIN: another binary). Prints a markdown
# table row per probe.
set -euo pipefail
bin=${STAPXX_BIN:-target/release/stapxx-rs}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; sysctl -qw kernel.bpf_stats_enabled=0' EXIT
sysctl -qw kernel.bpf_stats_enabled=1

# Total run time and count of our programs (stx_p*), read while the script runs.
stats() {
    bpftool -j prog show | python3 -c '
import json, sys
ns = cnt = 0
for p in json.load(sys.stdin):
    if p.get("name", "").startswith("stx_p"):
        ns += p.get("run_time_ns", 0); cnt += p.get("run_cnt", 0)
print(ns, max(cnt, 1))'
}

cpus=$(nproc)
busy=()
for _ in $(seq "$cpus"); do sh -c 'while :; do :; done' & busy+=($!); done
printf 'probe timer.profile { }\nprobe timer.s(3) { exit() }\n' > "$tmp/p.stp"
"$bin" "$tmp/p.stp" & run=$!
sleep 2.5
read -r ns cnt < <(stats)
wait "$run"
kill "${busy[@]}"
echo "| empty timer.profile handler | $((ns / cnt)) ns/event | $cnt events |"

cc -O2 -g -o "$tmp/calls" tests/fixtures/calls.c
coproc T { "$tmp/calls" 200000; }
read -r _ <&"${T[0]}"
printf 'probe begin { printf("attached\\n") }\nprobe process("%s").function("work") { }\n' "$tmp/calls" > "$tmp/u.stp"
"$bin" "$tmp/u.stp" > "$tmp/out" & run=$!
until grep -q attached "$tmp/out" 2>/dev/null; do sleep 0.05; done
echo go >&"${T[1]}"
read -r _ <&"${T[0]}"
read -r ns cnt < <(stats)
kill -INT "$run"; wait "$run" || true
echo "| empty uprobe handler | $((ns / cnt)) ns/event (BPF only; the uprobe trap itself is extra) | $cnt events |"
