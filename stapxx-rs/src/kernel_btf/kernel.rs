//! The running kernel's types (`/sys/kernel/btf/vmlinux`), read and parsed
//! once for every user: `@cast(p, "T", "kernel")`, the arguments of typed
//! tracepoints (`__probestub_EVENT`'s parameters: the event's `TP_PROTO`)
//! and member chains on them (`$prev->mm->exe_file`), the offsets `ppid()`
//! and the executable checks read. Chains are resolved by the resolver
//! DWARF chains go through ([`Resolver`]), over the BTF graph
//! ([`BtfGraph`]), into the same explicit operations.

use super::graph::{node, BtfGraph};
use super::Types;
use crate::debuginfo::layout::Ty;
use crate::debuginfo::{Resolved, Resolver, Result, Step, TypeHandle};
use std::collections::HashMap;
use std::sync::OnceLock;

use ebpf_backend::btf_kind::{FUNC as KIND_FUNC, FUNC_PROTO as KIND_FUNC_PROTO};

/// Where the kernel publishes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

pub struct Kernel {
    graph: BtfGraph<'static>,
    /// `__probestub_EVENT` functions by event name, indexed on first use
    /// (a wildcard over hundreds of events looks each one up).
    stubs: OnceLock<HashMap<&'static [u8], u32>>,
}

impl Kernel {
    pub fn get() -> Option<&'static Kernel> {
        static CACHE: OnceLock<Option<Kernel>> = OnceLock::new();
        CACHE
            .get_or_init(|| {
                let btf: &'static [u8] =
                    Box::leak(std::fs::read(VMLINUX_BTF).ok()?.into_boxed_slice());
                Some(Kernel {
                    graph: BtfGraph::new(Types::parse(btf)?, VMLINUX_BTF),
                    stubs: OnceLock::new(),
                })
            })
            .as_ref()
    }

    /// The kernel's types, for the offsets `kernel_btf` reads from them.
    pub(super) fn graph(&self) -> &BtfGraph<'static> {
        &self.graph
    }

    fn types(&self) -> &Types<'static> {
        &self.graph.types
    }

    /// A resolver of type names and member chains over the kernel's types.
    pub fn resolver(&self) -> Resolver<'_> {
        Resolver::new(&self.graph, 8)
    }

    /// `[&]@cast(p, "type_name", "kernel")` followed by `steps`.
    pub fn resolve_cast(
        &self,
        type_name: &str,
        steps: &[Step],
        address_of: bool,
    ) -> Result<Resolved> {
        self.resolver().resolve_cast(type_name, steps, address_of)
    }

    /// The handle of BTF type `id`, to resolve chains from.
    pub fn handle(id: u32) -> TypeHandle {
        TypeHandle(Ty::Die(node(id)))
    }
}

/// One argument of a typed tracepoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpArg {
    pub name: String,
    /// BTF type id.
    pub ty: u32,
}

impl Kernel {
    /// The arguments of tracepoint `event`, when the kernel has it typed.
    pub fn tracepoint_args(&self, event: &str) -> Option<Vec<TpArg>> {
        let t = self.types();
        let stubs = self.stubs.get_or_init(|| {
            t.at.iter()
                .filter_map(|&at| {
                    let (kind, _, _, name, ty) = t.head(at)?;
                    let event = t.str_at(name)?.strip_prefix(b"__probestub_")?;
                    (kind == KIND_FUNC).then_some((event, ty))
                })
                .collect()
        });
        let func = *stubs.get(event.as_bytes())?;
        let at = *t.at.get((func as usize).checked_sub(1)?)?;
        let (kind, vlen, _, _, _) = t.head(at)?;
        if kind != KIND_FUNC_PROTO {
            return None;
        }
        // The first parameter is the probe's private `void *__data`.
        (1..vlen)
            .map(|i| {
                let p = at + 12 + i * 8;
                let name = t.str_at(t.u32_at(p)?)?;
                Some(TpArg {
                    name: String::from_utf8_lossy(name).into_owned(),
                    ty: t.u32_at(p + 4)?,
                })
            })
            .collect()
    }
}
