//! The checks a shipped layout must pass against a library's machine code
//! before it stands in for the library's missing DWARF.
//!
//! Each check names an exported LuaJIT API function (in `.dynsym` of every
//! build, stripped or not) and what its code must read if the candidate
//! layout is the library's: `lua_gettop(L)` is `(L->top - L->base)`, so its
//! code reads `[L + offsetof(lua_State, top)]` and `[L + offsetof(lua_State,
//! base)]`. The offsets come from the candidate's DWARF, never from numbers
//! written here. `G` is `L->glref` as the code loads it, so every check
//! through `G` also checks `glref`. Together the checks cover the structs
//! the tapsets read: `lua_State`, `global_State`, the `GG_State` block
//! (through `jit_State.state`, which `lj_trace_abort` clears and which
//! sits after `global_State` in it),
//! `GCstr` and the C function object.

use super::code::{Observed, Value};
use crate::debuginfo::{parse_chain, Resolver, Result};

/// Where an expected operand's base points.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Base {
    /// The `lua_State *` argument.
    L,
    /// `L->glref`, the `global_State`.
    G,
    /// Any base register (an object found through the stack slots, which
    /// the walk does not follow).
    Any,
}

/// One expectation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect {
    /// `[base + offsetof(ty, member)]` is read.
    Member(Base, &'static str, &'static str),
    /// `[G + offsetof(GG_State, member) - offsetof(GG_State, g)]` is read:
    /// a member of the block that holds the `global_State`.
    Block(&'static str),
    /// `sizeof(ty)` is a displacement (the data after a header).
    SizeDisp(&'static str),
}

pub(crate) struct Check {
    pub function: &'static str,
    pub expect: &'static [Expect],
}

use Base::*;
use Expect::*;

pub(crate) const CHECKS: &[Check] = &[
    Check {
        function: "lua_gettop",
        expect: &[
            Member(L, "lua_State", "top"),
            Member(L, "lua_State", "base"),
        ],
    },
    Check {
        function: "lua_status",
        expect: &[Member(L, "lua_State", "status")],
    },
    Check {
        function: "lua_gethook",
        expect: &[Member(G, "global_State", "hookf")],
    },
    Check {
        function: "lua_gethookmask",
        expect: &[Member(G, "global_State", "hookmask")],
    },
    Check {
        function: "lua_gethookcount",
        expect: &[Member(G, "global_State", "hookcstart")],
    },
    Check {
        function: "lua_getallocf",
        expect: &[
            Member(G, "global_State", "allocf"),
            Member(G, "global_State", "allocd"),
        ],
    },
    Check {
        function: "lua_close",
        expect: &[Member(G, "global_State", "mainthref")],
    },
    Check {
        function: "luaJIT_setmode",
        expect: &[Block("J.state")],
    },
    Check {
        function: "lua_tolstring",
        expect: &[Member(Any, "GCstr", "len"), SizeDisp("GCstr")],
    },
    Check {
        function: "lua_tocfunction",
        expect: &[Member(Any, "GCfuncC", "pc"), Member(Any, "GCfuncC", "f")],
    },
];

/// `offsetof(ty, member)` in the candidate.
fn offset_of(r: &Resolver<'_>, ty: &str, member: &str) -> Result<i64> {
    let steps = parse_chain(&format!(".{member}")).map_err(|e| {
        crate::debuginfo::DebugError::BadAccess {
            ty: ty.into(),
            what: e,
        }
    })?;
    let t = r.find_type(ty)?;
    let resolved = r.resolve(&t, false, &steps, true)?;
    resolved
        .constant_offset()
        .ok_or_else(|| crate::debuginfo::DebugError::BadAccess {
            ty: ty.into(),
            what: format!("{member} is not at a constant offset"),
        })
}

/// Whether `observed` (the code of `check.function`) meets `e` under the
/// candidate `r`; `Err` says what was expected and not found.
pub(crate) fn meets(
    r: &Resolver<'_>,
    e: &Expect,
    observed: &Observed,
) -> Result<std::result::Result<(), String>> {
    let l = Value::Arg0;
    let g = || -> Result<Value> {
        Ok(Value::Load(
            Box::new(Value::Arg0),
            offset_of(r, "lua_State", "glref")?,
        ))
    };
    let hex = |v: i64| format!("{v:#x}");
    Ok(match *e {
        Member(base, ty, member) => {
            let off = offset_of(r, ty, member)?;
            let ok = match base {
                L => observed.reads(&l, off),
                G => observed.reads(&g()?, off),
                Any => observed.displacements.contains(&off),
            };
            let at = match base {
                L => "L",
                G => "L->glref",
                Any => "an object",
            };
            ok.then_some(())
                .ok_or_else(|| format!("reads no {ty}.{member} ({at} + {})", hex(off)))
        }
        Block(member) => {
            let off = offset_of(r, "GG_State", member)? - offset_of(r, "GG_State", "g")?;
            observed
                .reads(&g()?, off)
                .then_some(())
                .ok_or_else(|| format!("reads no GG_State.{member} (L->glref + {})", hex(off)))
        }
        SizeDisp(ty) => {
            let size = r.size_of(&r.find_type(ty)?)? as i64;
            observed
                .displacements
                .contains(&size)
                .then_some(())
                .ok_or_else(|| format!("uses no sizeof({ty}) = {} as an offset", hex(size)))
        }
    })
}
