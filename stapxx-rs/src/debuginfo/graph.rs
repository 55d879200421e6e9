//! A type graph: what [`super::layout::Resolver`] needs to know of a
//! module's C types to turn `@cast(p, "T")->a->b[i]` into explicit reads.
//!
//! Two sources answer it: a user-space module's DWARF ([`super::Dwarf`],
//! also the shipped LuaJIT layouts, which are DWARF too) and the running
//! kernel's BTF (`crate::kernel_btf::Kernel`). Both describe their types in
//! the same words ([`TypeDesc`], [`MemberDesc`]), so member offsets,
//! bitfields, arrays, anonymous members, typedefs and the nearest-names
//! errors are worked out once, in the resolver, whichever source it reads.
//!
//! A node is named by a [`DieId`]: for DWARF a DIE's offset (and file); for
//! BTF the type id in `offset` (file 0), id 0 being `void`.

use super::dwarf::{DieId, MemberDesc, TypeDesc, TypeTag};
use super::error::{DebugError, Result};
use std::path::Path;

pub(crate) trait TypeGraph {
    /// Where the types come from, for messages ("type 'X' not found in ...").
    fn origin(&self) -> &Path;
    /// The byte order of the memory the types describe.
    fn little_endian(&self) -> bool;
    /// The node `id`, its direct attributes read.
    fn type_desc(&self, id: DieId) -> Result<TypeDesc>;
    /// The data members of the aggregate `id`, in declaration order.
    fn members(&self, id: DieId) -> Result<Vec<MemberDesc>>;
    /// The complete definition of a named type: `tags` restricts the kinds
    /// (empty: any kind, typedefs first, then struct/union/class, enum, base).
    fn lookup_type(&self, name: &str, tags: &[TypeTag]) -> Option<DieId>;
    /// Whether a declaration (only) of that name exists.
    fn has_declaration(&self, name: &str) -> bool;
    /// Every named type, for "nearest" suggestions.
    fn type_names(&self) -> Box<dyn Iterator<Item = &str> + '_>;

    /// Follows a struct/union/enum declaration to its definition elsewhere.
    fn complete(&self, id: DieId) -> Result<DieId> {
        let (tag, name) = match self.type_desc(id)? {
            TypeDesc::Aggregate {
                tag,
                name: Some(name),
                decl: true,
                ..
            } => (tag, name),
            TypeDesc::Enum {
                name: Some(name),
                decl: true,
                ..
            } => (TypeTag::Enum, name),
            _ => return Ok(id),
        };
        self.lookup_type(&name, &[tag])
            .ok_or_else(|| DebugError::TypeNotFound {
                name: format!("{} {name}", tag.keyword()),
                file: self.origin().to_path_buf(),
                nearest: vec![format!(
                    "(only a declaration of {} {name} exists)",
                    tag.keyword()
                )],
            })
    }

    /// A C spelling of the type `id` for messages (`struct GCproto`, `char *`).
    fn type_name(&self, id: DieId) -> String {
        type_name_depth(self, id, 0)
    }

    /// `sizeof` of the type `id`.
    fn size_of(&self, id: DieId) -> Result<u64> {
        size_of_depth(self, id, 0)
    }
}

fn type_name_depth<G: TypeGraph + ?Sized>(g: &G, id: DieId, depth: u32) -> String {
    if depth > 16 {
        return "...".into();
    }
    let sub = |t: Option<DieId>| match t {
        Some(t) => type_name_depth(g, t, depth + 1),
        None => "void".to_string(),
    };
    match g.type_desc(id) {
        Err(_) => format!("<type {id}>"),
        Ok(TypeDesc::Void) => "void".into(),
        Ok(TypeDesc::Base { name, .. }) => name,
        Ok(TypeDesc::Pointer { target, .. }) => {
            let t = sub(target);
            if t.ends_with('*') {
                format!("{t}*")
            } else {
                format!("{t} *")
            }
        }
        Ok(TypeDesc::Aggregate { tag, name, .. }) => {
            format!(
                "{} {}",
                tag.keyword(),
                name.as_deref().unwrap_or("<anonymous>")
            )
        }
        Ok(TypeDesc::Enum { name, .. }) => {
            format!("enum {}", name.as_deref().unwrap_or("<anonymous>"))
        }
        Ok(TypeDesc::Array { elem, dims }) => {
            let mut s = type_name_depth(g, elem, depth + 1);
            for d in dims {
                match d {
                    Some(n) => s.push_str(&format!("[{n}]")),
                    None => s.push_str("[]"),
                }
            }
            s
        }
        Ok(TypeDesc::Typedef { name, .. }) => name,
        Ok(TypeDesc::Qualified { qual, target }) => format!("{qual} {}", sub(target)),
        Ok(TypeDesc::Function) => "function".into(),
        Ok(TypeDesc::Other { tag }) => format!("<{tag}>"),
    }
}

fn size_of_depth<G: TypeGraph + ?Sized>(g: &G, id: DieId, depth: u32) -> Result<u64> {
    let mut id = id;
    for _ in 0..64 {
        if depth > 16 {
            break;
        }
        match g.type_desc(id)? {
            TypeDesc::Base { size, .. }
            | TypeDesc::Pointer { size, .. }
            | TypeDesc::Enum {
                size, decl: false, ..
            } => return Ok(size),
            TypeDesc::Aggregate {
                size: Some(size),
                decl: false,
                ..
            } => return Ok(size),
            TypeDesc::Aggregate { decl: true, .. } | TypeDesc::Enum { decl: true, .. } => {
                let c = g.complete(id)?;
                if c == id {
                    break;
                }
                id = c;
            }
            TypeDesc::Array { elem, dims } => {
                let mut n: u64 = 1;
                for d in dims {
                    n = n.saturating_mul(d.unwrap_or(0));
                }
                return Ok(n.saturating_mul(size_of_depth(g, elem, depth + 1)?));
            }
            TypeDesc::Typedef {
                target: Some(t), ..
            }
            | TypeDesc::Qualified {
                target: Some(t), ..
            } => id = t,
            _ => break,
        }
    }
    Err(DebugError::BadAccess {
        ty: g.type_name(id),
        what: "the size of this type is unknown".into(),
    })
}
