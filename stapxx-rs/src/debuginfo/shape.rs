//! One level of a type, as a printer of values walks it: what kind of
//! value it is, and for an aggregate its members, for an array its
//! element, for a pointer what it points to. Typedefs and qualifiers are
//! looked through and declarations completed, in either type source (a
//! module's DWARF, the kernel's BTF), by the same resolver that turns
//! member chains into reads ([`super::layout`]).
//!
//! stap's `$var$` pretty printing (`resolve/pretty.rs`) is the user: it
//! decides the format of each value from its shape and reads each leaf
//! through an ordinary member chain.

use super::dwarf::{TypeDesc, TypeTag};
use super::error::Result;
use super::layout::{Concrete, Resolver, Ty, TypeHandle, ValueKind};

/// What a type is, one level deep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// An integer, `bool` or enum, printed as a number; `signed` as C
    /// has it, and for `bool` (as stap prints it, `%i`).
    Number {
        signed: bool,
    },
    /// A character type (`char`, `signed char`, `unsigned char`, UTF
    /// types); `size` in bytes.
    Char {
        size: u64,
    },
    /// Floating point (stap has none to print it with).
    Float,
    /// A pointer (or C++ reference) to `target`; `None`: to `void`.
    Pointer {
        target: Option<TypeHandle>,
    },
    /// An array; `elem` is what one index gives.
    Array {
        elem: TypeHandle,
    },
    /// A struct, union or class; `members` is `None` when only a
    /// declaration of it exists.
    Aggregate {
        tag: TypeTag,
        members: Option<Vec<ShapeMember>>,
    },
    /// A function type (what a function pointer points to).
    Function,
    Void,
    /// Anything else (DWARF tags no C value has).
    Other,
}

/// A data member of an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMember {
    /// `None`: an anonymous struct or union, whose members are reached
    /// by name from the enclosing one.
    pub name: Option<String>,
    pub ty: TypeHandle,
    pub bitfield: bool,
}

impl Resolver<'_> {
    /// The shape of `ty`.
    pub fn shape(&self, ty: &TypeHandle) -> Result<Shape> {
        if let Ty::Die(id) = ty.0 {
            // A struct only declared here: its members are unknown (stap
            // prints it as `{...}`), which is no error.
            if let TypeDesc::Aggregate {
                tag, decl: true, ..
            } = self.dwarf.type_desc(id)?
            {
                if self.dwarf.complete(id).is_err() {
                    return Ok(Shape::Aggregate { tag, members: None });
                }
            }
        }
        Ok(match self.concrete(&ty.0)? {
            Concrete::Void => Shape::Void,
            Concrete::Scalar { kind, size, signed } => match kind {
                ValueKind::Char => Shape::Char { size },
                ValueKind::Float => Shape::Float,
                ValueKind::Bool => Shape::Number { signed: true },
                _ => Shape::Number { signed },
            },
            Concrete::Pointer { target, .. } => Shape::Pointer {
                target: (target != Ty::Void).then_some(TypeHandle(target)),
            },
            Concrete::Array { elem, dims } => Shape::Array {
                elem: TypeHandle(if dims.len() > 1 {
                    Ty::Array {
                        elem,
                        dims: dims[1..].to_vec(),
                    }
                } else {
                    Ty::Die(elem)
                }),
            },
            Concrete::Aggregate { id, tag } => Shape::Aggregate {
                tag,
                members: Some(
                    self.dwarf
                        .members(id)?
                        .into_iter()
                        .map(|m| ShapeMember {
                            name: m.name,
                            ty: TypeHandle(Ty::Die(m.ty)),
                            bitfield: m.bits.is_some(),
                        })
                        .collect(),
                ),
            },
            Concrete::Function => Shape::Function,
            Concrete::Other(_) => Shape::Other,
        })
    }
}
