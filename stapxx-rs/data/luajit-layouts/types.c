/*
 * One compile unit that declares nothing of its own: it only includes
 * LuaJIT's internal headers, so that `cc -g -fno-eliminate-unused-debug-types`
 * records in DWARF every struct, union, typedef and enum of one LuaJIT build
 * as that build's compiler laid them out. stapxx-rs ships the result
 * (generate.sh) and uses it for a stripped libluajit after checking it
 * against the library's own machine code (src/debuginfo/layouts/).
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
