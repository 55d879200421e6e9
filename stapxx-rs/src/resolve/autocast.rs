//! stap's autocast: `p->member` where `p` is a variable that was given a
//! typed pointer, read as the `@cast` of that type from the same types
//! (the kernel's BTF, or the same user-space module's DWARF). The tapset
//! tree writes `dentry = & @cast(dentry, "dentry", "kernel")` once and then
//! `dentry->d_op`, `s = & @cast(...)->d_name` then `s->name`,
//! `pos = head->next` in a list walk.
//!
//! A variable takes the type of the last typed value assigned to it in the
//! body being resolved (a probe handler or a function), in the order the
//! resolver reaches the statements; an assignment of anything else leaves
//! the type as it was (stap types a variable by its typed assignments,
//! whatever else it is given). Typed values: `&@cast(...)[->...]`, a
//! `@cast(...)->...` chain ending in a pointer, an autocast chain of the
//! same kinds, another typed variable, `task_current()` (typed in stap's
//! tapset), and a `?:` of typed values (what `@choose_defined` leaves).
//! Script functions' typed return values are not followed.

use super::casts::{Cast, Failure, Source};
use super::modules::Modules;
use super::reads::Memory;
use crate::debuginfo::{Fetch, Step, TypeHandle, ValueKind};
use crate::kernel_btf::Kernel;
use grammar::ast::{Expr, ExprKind};

/// The type a variable's value points to.
#[derive(Debug, Clone)]
pub(super) struct AutoType {
    source: Source,
    handle: TypeHandle,
    /// The value is the address of an object of `handle`'s type (as
    /// `@cast(p, T)` is `(T *)p`); else `handle` is a pointer type and the
    /// value is such a pointer, already loaded.
    implicit: bool,
    /// The C spelling of what the value points to, for messages.
    pointee: String,
}

impl AutoType {
    pub(super) fn pointee(&self) -> &str {
        &self.pointee
    }
}

/// The type of the value a resolved cast chain gives, if it points to
/// something: its address (`&...`), or a pointer it loads.
pub(super) fn of_cast(c: &Cast) -> Option<AutoType> {
    let v = &c.chain.value;
    let implicit = match c.chain.fetch {
        Fetch::Address => true,
        Fetch::Load { .. } if v.kind == ValueKind::Pointer => false,
        Fetch::Load { .. } => return None,
    };
    let pointee = if implicit {
        v.name.clone()
    } else {
        v.name.trim_end_matches('*').trim_end().to_string()
    };
    Some(AutoType {
        source: c.source.clone(),
        handle: v.handle.clone(),
        implicit,
        pointee,
    })
}

/// The type of a call's value, for the builtins stap types:
/// `task_current()` is `& @task(current)`, a `struct task_struct *` of the
/// kernel, so `task_current()->tgid` reads as in stap.
pub(super) fn of_call(name: &str, nargs: usize) -> Option<AutoType> {
    if name != "task_current" || nargs != 0 {
        return None;
    }
    let handle = Kernel::get()?
        .resolver()
        .find_type("struct task_struct")
        .ok()?;
    Some(AutoType {
        source: Source::Kernel,
        handle,
        implicit: true,
        pointee: "struct task_struct".into(),
    })
}

impl super::Resolver<'_, '_> {
    /// The type `e` is known to point to before it is resolved: a typed
    /// variable's, or a typed builtin call's.
    pub(super) fn known_type(&self, e: &Expr) -> Option<AutoType> {
        match &e.kind {
            ExprKind::Var(v) => self.autotypes.get(v).cloned(),
            ExprKind::Call { name, args } => of_call(name, args.len()),
            _ => None,
        }
    }
}

/// `steps` from a value of type `t` (`amp`: with a leading `&`).
pub(super) fn resolve(
    modules: &mut Modules,
    t: &AutoType,
    steps: &[Step],
    amp: bool,
) -> Result<Cast, Failure> {
    let chain = match &t.source {
        Source::Kernel => {
            let k = Kernel::get()
                .ok_or_else(|| Failure::Hard("the kernel's BTF cannot be read".into()))?;
            k.resolver().resolve(&t.handle, t.implicit, steps, amp)
        }
        Source::User(module) => {
            let m = modules.get(module.as_deref()).map_err(Failure::Hard)?;
            m.resolver()
                .map_err(|e| Failure::Hard(e.to_string()))?
                .resolve(&t.handle, t.implicit, steps, amp)
        }
    };
    let mut chain = chain.map_err(|e| {
        if Modules::is_unknown_here(&e) {
            Failure::Unknown(e.to_string())
        } else {
            Failure::Hard(e.to_string())
        }
    })?;
    if !t.implicit {
        // The chain starts by loading the pointer from where it is
        // stored; the variable holds the loaded pointer itself.
        if let Some(crate::debuginfo::Access::Deref { .. }) = chain.accesses.first() {
            chain.accesses.remove(0);
        }
    }
    let memory = match t.source {
        Source::Kernel => Memory::Kernel,
        Source::User(_) => Memory::User,
    };
    Ok(Cast {
        chain,
        memory,
        source: t.source.clone(),
    })
}

/// Whether `e`, unresolved, is of a shape whose resolved value can carry a
/// type (its type is then what the resolver noted last).
pub(super) fn typed_shape(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Dwarf(_) | ExprKind::Var(_) => true,
        ExprKind::Call { name, args } => of_call(name, args.len()).is_some(),
        ExprKind::AddrOf(inner) => matches!(inner.kind, ExprKind::Dwarf(_)),
        ExprKind::Ternary {
            then, otherwise, ..
        } => typed_shape(then) && typed_shape(otherwise),
        _ => false,
    }
}

/// Why `->` on `base` cannot be read.
pub(super) fn untyped(base: &Expr) -> String {
    match &base.kind {
        ExprKind::Var(v) => format!(
            "'->' on '{v}', which holds no typed pointer here (autocast follows a variable assigned a typed value before, such as '& @cast(p, \"type\")' or a pointer member of one): use @cast"
        ),
        _ => "'->' on a value of no known type (autocast follows variables assigned a typed value): use @cast".into(),
    }
}
