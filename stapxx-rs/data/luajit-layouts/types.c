/*
 * One compile unit that includes LuaJIT's internal headers, so that
 * `cc -g -fno-eliminate-unused-debug-types` records in DWARF every struct,
 * union, typedef and enum of one LuaJIT build as that build's compiler laid
 * them out, and, as its only data, a copy of the build's library init
 * tables. stapxx-rs ships the result (generate.sh) and uses it for a
 * stripped libluajit after checking it against the library's own machine
 * code (src/debuginfo/layouts/) and, for fast-function names, finding the
 * tables in it (src/flame/ffnames.rs).
 */
#include "lj_obj.h"
#include "lj_gc.h"
#include "lj_state.h"
#include "lj_frame.h"
#include "lj_bc.h"
#include "lj_ff.h"
#include "lj_ir.h"
#include "lj_jit.h"
#include "lj_trace.h"
#include "lj_dispatch.h"
/* Written by generate.sh from the build's lj_libdef.h. */
#include "stapxx_lib_init.h"
