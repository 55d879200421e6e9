//! Enumerations by one of their enumerators.
//!
//! C code often declares its enums anonymously behind a typedef
//! (`typedef enum { FF_LUA_, ... } FastFunc;`), and a compiler emits a
//! typedef only where something uses it, so the type name may be gone from
//! the DWARF while the enumerators are all there. An enumerator's name is
//! unique in its C scope, which makes it the handle that always works.
//!
//! Enumerators are not in the name index (that pass stays cheap for the
//! common `@cast` case): the units are scanned here, on demand, looking at
//! the enumeration types at their top level only, and the scan stops at
//! the first one declaring the name.

use gimli::{constants as dw, AttributeValue, Reader as _};

use super::{DieId, Dwarf, TypeDesc};
use crate::debuginfo::error::Result;

/// A `DW_AT_const_value` as written, before the type says how to read it.
#[derive(Clone, Copy)]
enum Raw {
    Signed(i64),
    Unsigned(u64),
    /// `DW_FORM_dataN`: the bytes carry no sign; the enum's type decides.
    Fixed {
        value: u64,
        bytes: u32,
    },
}

impl Raw {
    fn of(v: AttributeValue<super::R>) -> Option<Raw> {
        Some(match v {
            AttributeValue::Sdata(v) => Raw::Signed(v),
            AttributeValue::Udata(v) => Raw::Unsigned(v),
            AttributeValue::Data1(v) => Raw::Fixed {
                value: v.into(),
                bytes: 1,
            },
            AttributeValue::Data2(v) => Raw::Fixed {
                value: v.into(),
                bytes: 2,
            },
            AttributeValue::Data4(v) => Raw::Fixed {
                value: v.into(),
                bytes: 4,
            },
            AttributeValue::Data8(v) => Raw::Fixed { value: v, bytes: 8 },
            _ => return None,
        })
    }

    fn value(self, signed: bool) -> i64 {
        match self {
            Raw::Signed(v) => v,
            Raw::Unsigned(v) => v as i64,
            Raw::Fixed { value, bytes } if signed && bytes < 8 => {
                let shift = 64 - 8 * bytes;
                ((value << shift) as i64) >> shift
            }
            Raw::Fixed { value, .. } => value as i64,
        }
    }
}

impl Dwarf {
    /// The enumerators (name, value) of the enumeration type that declares
    /// `enumerator`, in declaration order; `None` when no enumeration at
    /// the top level of a unit declares it.
    pub(crate) fn enumeration_with(&self, enumerator: &str) -> Result<Option<Vec<(String, i64)>>> {
        for file in 0..2u8 {
            for ui in 0..self.units[file as usize].len() {
                if let Some((id, raw)) = self.scan_unit(file, ui, enumerator)? {
                    let signed = match self.type_desc(id)? {
                        TypeDesc::Enum { signed, .. } => signed,
                        _ => false,
                    };
                    return Ok(Some(
                        raw.into_iter()
                            .map(|(name, v)| (name, v.value(signed)))
                            .collect(),
                    ));
                }
            }
        }
        Ok(None)
    }

    /// The first enumeration at the top of unit `ui` declaring `wanted`:
    /// its DIE and its enumerators as written.
    #[allow(clippy::type_complexity)]
    fn scan_unit(
        &self,
        file: u8,
        ui: usize,
        wanted: &str,
    ) -> Result<Option<(DieId, Vec<(String, Raw)>)>> {
        let ud = &self.units[file as usize][ui];
        let dwarf = self.gimli_dwarf(file);
        let run = || -> gimli::Result<Option<(DieId, Vec<(String, Raw)>)>> {
            let mut tree = ud.unit.entries_tree(None)?;
            let root = tree.root()?;
            let mut tops = root.children();
            while let Some(top) = tops.next()? {
                if top.entry().tag() != dw::DW_TAG_enumeration_type {
                    continue;
                }
                let id = DieId {
                    file,
                    offset: ud.offset + top.entry().offset().0,
                };
                let mut found = false;
                let mut values = Vec::new();
                let mut children = top.children();
                while let Some(c) = children.next()? {
                    let e = c.entry();
                    if e.tag() != dw::DW_TAG_enumerator {
                        continue;
                    }
                    let Some(name) = e.attr_value(dw::DW_AT_name)? else {
                        continue;
                    };
                    let name = dwarf
                        .attr_string(&ud.unit, name)?
                        .to_string_lossy()?
                        .into_owned();
                    let Some(raw) = e.attr_value(dw::DW_AT_const_value)?.and_then(Raw::of) else {
                        continue;
                    };
                    found |= name == wanted;
                    values.push((name, raw));
                }
                if found {
                    return Ok(Some((id, values)));
                }
            }
            Ok(None)
        };
        run().map_err(|e| self.err(format!("unit at {:#x}: enumerations", ud.offset), e))
    }
}

#[cfg(test)]
mod tests {
    use super::Raw;

    #[test]
    fn fixed_forms_take_the_sign_of_the_type() {
        let b = Raw::Fixed {
            value: 0xe6,
            bytes: 1,
        };
        assert_eq!(b.value(false), 230);
        assert_eq!(b.value(true), -26);
        let w = Raw::Fixed {
            value: 0xffff_fffe,
            bytes: 4,
        };
        assert_eq!(w.value(true), -2);
        assert_eq!(w.value(false), 0xffff_fffe);
        assert_eq!(Raw::Signed(-5).value(false), -5);
        assert_eq!(Raw::Unsigned(7).value(true), 7);
    }
}
