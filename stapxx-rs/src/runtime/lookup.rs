//! Host side of the constants-data builtins: `errno_str`, `errno_p` and
//! the value-table lookups of translated embedded-C formatters (the
//! semantics are `consts.rs`'s and `valtable.rs`'s; the kernel side is
//! `codegen/lookup.rs`).

use super::interp::{Near, RtError};
use super::values::Value;
use crate::ir::builtins::Builtin;

/// One call; `table` (the lookups' third argument) is empty for the others.
pub(super) fn call(
    b: Builtin,
    v: i64,
    base: i64,
    table: &[u8],
    near: Option<Near>,
) -> Result<Value, RtError> {
    let name = crate::consts::errno_name(v);
    Ok(match b {
        Builtin::ErrnoStr => Value::Str(name.unwrap_or("").as_bytes().to_vec()),
        Builtin::ErrnoP => Value::Long(name.map_or(0, |_| v.wrapping_abs())),
        _ => {
            let entries = std::str::from_utf8(table)
                .ok()
                .and_then(crate::valtable::decode)
                .ok_or_else(|| RtError::new("internal: a malformed value table", near))?;
            Value::Str(
                if b == Builtin::LookupOrStr {
                    crate::valtable::lookup_or_str(&entries, v, base)
                } else {
                    crate::valtable::lookup_str(&entries, v, base)
                }
                .into_bytes(),
            )
        }
    })
}
