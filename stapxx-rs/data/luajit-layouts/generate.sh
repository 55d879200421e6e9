#!/usr/bin/env bash
# Makes one shipped LuaJIT layout file: the DWARF types of one LuaJIT source
# tree built one way, with no code.
#
#   generate.sh SOURCE_DIR OUT.debug [XCFLAGS...]
#
# SOURCE_DIR is an unpacked LuaJIT source tree (`apt-get source luajit` or
# `apt-get source luajit2`); XCFLAGS are the build's feature defines as its
# packager passes them (none for Debian's x86-64 packages: GC64 is their
# default; -DLUAJIT_DISABLE_GC64 for the 32-bit GCRef layout). The headers
# buildvm generates (lj_ffdef.h: the fast-function ids) are made first, in a
# copy of the tree, so the source is left as it was.
set -euo pipefail
src=$(cd "$1" && pwd)
out=$(realpath -m "$2")
shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$src/src" "$src/dynasm" "$work/"
make -s -C "$work/src" XCFLAGS="$*" lj_ffdef.h lj_libdef.h >/dev/null
# The library modules' init tables (lj_libdef.h, static there) as data of
# this file: their bytes, names included, must be found in a binary before
# the fast-function ids of this build are taken for its (flame/ffnames.rs).
awk '/^static const uint8_t lj_lib_init_[a-z_0-9]+\[\] = \{$/ {
       sub(/^static const uint8_t lj_lib_init_/, "const unsigned char stapxx_lib_init_"); p = 1 }
     p { print }
     /^};$/ { p = 0 }' "$work/src/lj_libdef.h" > "$work/src/stapxx_lib_init.h"
# -O0 so nothing is folded away; -g3 is not needed (macros are not read).
# Compiled inside the copy with relative names, so no path of the machine
# that generated the file is recorded in it.
cp "$here/types.c" "$work/"
(cd "$work" && cc -g -O0 -fno-eliminate-unused-debug-types -fvisibility=hidden $* -Isrc \
   -fdebug-prefix-map="$work"=. -shared -nostdlib -Wl,--build-id=none \
   -o types.so types.c)
# Only the debug sections and the init tables' data: no code, no build-id,
# and no symbols (a symbol of this file must never be taken for one of the
# library it stands in for).
objcopy --strip-all --keep-section='.debug_*' --remove-section=.comment \
   --remove-section=.eh_frame --remove-section=.gnu.hash --remove-section=.dynsym \
   --remove-section=.dynstr --remove-section=.dynamic --compress-debug-sections=zlib \
   "$work/types.so" "$out"
