#!/usr/bin/env bash
# Probe sites of stapxx-rs against SystemTap's own pass 2 on one file:
# the addresses `stap -p2` prints for each probe (`pc=.dynamic+0xN`, a
# link-time address) against the file offsets `stapxx-rs -p2` lists (equal
# for the files compared here: their text is mapped at its file offset).
# stap gets a stub kernel build tree (-r): it reads nothing else of the
# kernel for user-space probes. Usage (repo root):
#   stap_sites.sh FILE 'function("*")' ['statement("*@x.c:1-9999")' ...]
# Prints, per point: stap's count, ours, and the addresses only one has.
set -euo pipefail
file=$(readlink -f "$1"); shift
bin=${STAPXX_BIN:-target/release/stapxx-rs}
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/include/config"
uname -r > "$tree/include/config/kernel.release"
printf 'CONFIG_%s=y\n' UPROBES UPROBE_EVENTS ARCH_SUPPORTS_UPROBES TRACEPOINTS KPROBES MODULES > "$tree/.config"
: > "$tree/Module.symvers"; : > "$tree/Makefile"
echo "ffffffff81000000 T arch_uretprobe_hijack_return_addr" > "$tree/System.map"
for point in "$@"; do
    script="probe process(\"$file\").$point { print(1) }"
    stap -r "$tree" -p2 -e "$script" 2>/dev/null | grep -o 'pc=\.dynamic+0x[0-9a-f]*' | sed 's/.*+0x//' | sort -u > "$tree/theirs"
    "$bin" -p2 -e "$script" 2>&1 | grep -o 'file offset 0x[0-9a-f]*' | sed 's/.*0x//' | sort -u > "$tree/ours"
    echo "$point: stap $(wc -l < "$tree/theirs"), stapxx-rs $(wc -l < "$tree/ours");" \
        "only stap's: $(comm -23 "$tree/theirs" "$tree/ours" | wc -l) ($(comm -23 "$tree/theirs" "$tree/ours" | head -5 | tr '\n' ' '))," \
        "only ours: $(comm -13 "$tree/theirs" "$tree/ours" | wc -l) ($(comm -13 "$tree/theirs" "$tree/ours" | head -5 | tr '\n' ' '))"
done
