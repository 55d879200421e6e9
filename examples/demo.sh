#!/usr/bin/env bash
# The main job on a bundled default, in one step (as root):
#   1. build stapxx-rs and, once, a LuaJIT 2.1 with debug info (Debian's
#      luajit2 source package: OpenResty's fork), cached in target/fixtures;
#   2. start the bundled workload examples/lua/demo.lua;
#   3. sample its Lua backtraces for a few seconds with
#      examples/lj-lua-stacks.sxx and write flamegraph.svg.
# Usage: bash examples/demo.sh [SECONDS] [OUTPUT.svg]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
svg=${2:-flamegraph.svg}

echo "== building stapxx-rs (release)"
cargo build --release -q -p stapxx-rs

# Everything temporary is removed on every way out (success, an error
# under `set -e`, Ctrl-C): one EXIT trap for all of it, since a second
# `trap ... EXIT` would replace the first.
tmpdirs=()
workload=
cleanup() {
    if [ -n "$workload" ]; then kill "$workload" 2>/dev/null || true; fi
    if [ "${#tmpdirs[@]}" -gt 0 ]; then rm -rf "${tmpdirs[@]}"; fi
}
trap cleanup EXIT

version=2.1-20230119-1
fixtures=target/fixtures
luajit=$fixtures/luajit-demo-$version/src/luajit
if [ ! -x "$luajit" ]; then
    echo "== fetching and building LuaJIT $version with debug info (once)"
    for tool in apt-get dpkg-source make cc; do
        command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y dpkg-dev make gcc)" >&2; exit 1; }
    done
    apt=$(mktemp -d)
    tmpdirs+=("$apt")
    mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial"
    # A deb-src copy of this system's Debian entries, in a private apt setup.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        sed 's/^Types: deb$/Types: deb-src/' "$f" > "$apt/parts/$(basename "$f")"
    done
    if [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > "$apt/parts/copy.list"
    fi
    opts=(-q "-oDir::Etc::SourceList=/dev/null" "-oDir::Etc::SourceParts=$apt/parts"
          "-oDir::State::Lists=$apt/lists" "-oDir::Cache=$apt/cache")
    apt-get "${opts[@]}" update >/dev/null
    (cd "$apt" && apt-get "${opts[@]}" source "luajit2=$version" >/dev/null)
    rm -rf "$fixtures/luajit-demo-$version"
    mkdir -p "$fixtures"
    mv "$apt/luajit2-${version%-*}" "$fixtures/luajit-demo-$version"
    make -s -C "$fixtures/luajit-demo-$version" -j2 CCDEBUG=-g >/dev/null
    # The package lists and downloads (about 22 MB) are not needed again.
    rm -rf "$apt"
fi

echo "== starting the workload: $luajit examples/lua/demo.lua"
coproc WORKLOAD { exec "$luajit" examples/lua/demo.lua; }
pid=$WORKLOAD_PID
workload=$pid
read -r _ <&"${WORKLOAD[0]}"

echo "== profiling process $pid for $secs s"
target/release/stapxx-rs examples/lj-lua-stacks.sxx -x "$pid" --arg time="$secs" \
    --flamegraph "$svg" --folded "${svg%.svg}.folded" > "${svg%.svg}.bt"

echo "== wrote $(realpath "$svg") (backtraces: ${svg%.svg}.bt, folded stacks: ${svg%.svg}.folded)"
