//! Kernel values typed by the running kernel's BTF: the arguments of a
//! tracepoint (`__probestub_EVENT`'s named parameters: the event's
//! `TP_PROTO`) and member/index chains on them (`$prev->mm->exe_file`),
//! resolved into the same explicit operations as DWARF chains
//! ([`Access`]/[`Fetch`]), so pass 2 renders them as plain stap
//! `kernel_*` reads.

use super::{Types, KIND_STRUCT, KIND_UNION, QUALIFIERS};
use crate::debuginfo::{Access, Bitfield, Fetch, Index, Step, ValueKind};
use std::collections::HashMap;
use std::sync::OnceLock;

use ebpf_backend::btf_kind::{
    ARRAY as KIND_ARRAY, ENUM as KIND_ENUM, ENUM64 as KIND_ENUM64, FUNC as KIND_FUNC,
    FUNC_PROTO as KIND_FUNC_PROTO, FWD as KIND_FWD, INT as KIND_INT, PTR as KIND_PTR,
    TYPEDEF as KIND_TYPEDEF,
};

/// The running kernel's types, read and parsed once for every user (typed
/// tracepoints, `@cast(.., "kernel")`, the `ppid()` and executable offsets).
pub struct Kernel {
    types: Types<'static>,
    /// `__probestub_EVENT` functions by event name, indexed on first use
    /// (a wildcard over hundreds of events looks each one up).
    stubs: OnceLock<HashMap<&'static [u8], u32>>,
    /// `find_type` answers: the tapsets' `@cast`s name the same few types
    /// in hundreds of aliases, and each lookup is a scan of every type.
    found: std::sync::Mutex<HashMap<String, Option<u32>>>,
}

impl Kernel {
    pub fn get() -> Option<&'static Kernel> {
        static CACHE: OnceLock<Option<Kernel>> = OnceLock::new();
        CACHE
            .get_or_init(|| {
                let btf: &'static [u8] = Box::leak(
                    std::fs::read("/sys/kernel/btf/vmlinux")
                        .ok()?
                        .into_boxed_slice(),
                );
                Some(Kernel {
                    types: Types::parse(btf)?,
                    stubs: OnceLock::new(),
                    found: Default::default(),
                })
            })
            .as_ref()
    }

    /// The parsed types, for the offsets `kernel_btf` reads from them.
    pub(super) fn types(&self) -> &Types<'static> {
        &self.types
    }
}

/// One argument of a typed tracepoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpArg {
    pub name: String,
    /// BTF type id.
    pub ty: u32,
}

/// What a value or chain ends in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KValue {
    pub accesses: Vec<Access>,
    pub fetch: Fetch,
    pub kind: ValueKind,
    pub size: u64,
    pub signed: bool,
}

/// Where a chain is while it is resolved.
enum At {
    /// The value itself (the variable, before any step).
    Value(u32),
    /// An object of this type at the current address.
    Object(u32),
}

impl Kernel {
    fn rec(&self, id: u32) -> Option<(u32, usize, bool, u32, u32, usize)> {
        let at = *self.types.at.get((id as usize).checked_sub(1)?)?;
        let (kind, vlen, kflag, name, next) = self.types.head(at)?;
        Some((kind, vlen, kflag, name, next, at))
    }

    fn name_of(&self, off: u32) -> String {
        self.types
            .str_at(off)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    /// `id` with typedefs and qualifiers taken off (0: void).
    fn strip(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.rec(id) {
                Some((kind, _, _, _, next, _)) if QUALIFIERS.contains(&kind) => id = next,
                _ => return id,
            }
        }
        id
    }

    /// The arguments of tracepoint `event`, when the kernel has it typed.
    pub fn tracepoint_args(&self, event: &str) -> Option<Vec<TpArg>> {
        let t = &self.types;
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
        let (kind, vlen, _, _, _, at) = self.rec(func)?;
        if kind != KIND_FUNC_PROTO {
            return None;
        }
        // The first parameter is the probe's private `void *__data`.
        (1..vlen)
            .map(|i| {
                let p = at + 12 + i * 8;
                Some(TpArg {
                    name: self.name_of(t.u32_at(p)?),
                    ty: t.u32_at(p + 4)?,
                })
            })
            .collect()
    }

    /// Size, signedness and kind of a (stripped) scalar or aggregate type.
    fn shape(&self, id: u32) -> (ValueKind, u64, bool) {
        let id = self.strip(id);
        let Some((kind, _, kflag, _, size, at)) = self.rec(id) else {
            return (ValueKind::Void, 0, false);
        };
        match kind {
            KIND_INT => {
                let enc = self.types.u32_at(at + 12).unwrap_or(0) >> 24;
                let k = if enc & 4 != 0 {
                    ValueKind::Bool
                } else if enc & 2 != 0 {
                    ValueKind::Char
                } else {
                    ValueKind::Integer
                };
                (k, size as u64, enc & 1 != 0)
            }
            KIND_PTR => (ValueKind::Pointer, 8, false),
            KIND_ENUM | KIND_ENUM64 => (ValueKind::Enum, size as u64, kflag),
            KIND_STRUCT => (ValueKind::Struct, size as u64, false),
            KIND_UNION => (ValueKind::Union, size as u64, false),
            KIND_ARRAY => {
                let elem = self.types.u32_at(at + 12).unwrap_or(0);
                let n = self.types.u32_at(at + 20).unwrap_or(0) as u64;
                (ValueKind::Array, n * self.shape(elem).1, false)
            }
            KIND_FUNC_PROTO => (ValueKind::Function, 0, false),
            _ => (ValueKind::Void, 0, false),
        }
    }

    /// What a value of type `ty` is (no steps): its size and signedness.
    pub fn value_shape(&self, ty: u32) -> (ValueKind, u64, bool) {
        self.shape(ty)
    }

    /// A C-ish name of a type, for messages.
    pub fn type_name(&self, id: u32) -> String {
        let id = self.strip(id);
        let Some((kind, _, _, name, next, _)) = self.rec(id) else {
            return "void".into();
        };
        match kind {
            KIND_PTR => format!("{} *", self.type_name(next)),
            KIND_STRUCT => format!("struct {}", self.name_of(name)),
            KIND_UNION => format!("union {}", self.name_of(name)),
            KIND_ENUM | KIND_ENUM64 => format!("enum {}", self.name_of(name)),
            KIND_ARRAY => "array".into(),
            KIND_FWD => format!("struct {} (declared only)", self.name_of(name)),
            _ => self.name_of(name),
        }
    }

    /// Members of the struct/union `id` (anonymous members looked into):
    /// (name, bit offset, bitfield size or 0, type).
    fn members(&self, id: u32, base_bits: u64, out: &mut Vec<(String, u64, u32, u32)>, depth: u32) {
        let Some((kind, vlen, kflag, _, _, at)) = self.rec(self.strip(id)) else {
            return;
        };
        if kind != KIND_STRUCT && kind != KIND_UNION {
            return;
        }
        for i in 0..vlen {
            let m = at + 12 + i * 12;
            let (Some(name), Some(ty), Some(off)) = (
                self.types.u32_at(m),
                self.types.u32_at(m + 4),
                self.types.u32_at(m + 8),
            ) else {
                continue;
            };
            let (bits, bsize) = if kflag {
                (off & 0xff_ffff, off >> 24)
            } else {
                (off, 0)
            };
            let name = self.name_of(name);
            if name.is_empty() && depth < 8 {
                self.members(ty, base_bits + bits as u64, out, depth + 1);
            } else {
                out.push((name, base_bits + bits as u64, bsize, ty));
            }
        }
    }

    /// The type named `name` (`task_struct`, `struct task_struct`,
    /// `union ...`, a typedef or base type name), as `@cast` names it.
    pub fn find_type(&self, name: &str) -> Option<u32> {
        if let Some(&hit) = self.found.lock().ok().as_ref().and_then(|m| m.get(name)) {
            return hit;
        }
        let id = self.scan_type(name);
        if let Ok(mut m) = self.found.lock() {
            m.insert(name.to_string(), id);
        }
        id
    }

    fn scan_type(&self, name: &str) -> Option<u32> {
        let name = name.trim();
        let (want, plain) = if let Some(n) = name.strip_prefix("struct ") {
            (Some(KIND_STRUCT), n.trim())
        } else if let Some(n) = name.strip_prefix("union ") {
            (Some(KIND_UNION), n.trim())
        } else {
            (None, name)
        };
        let t = &self.types;
        let mut fallback = None;
        for (i, &at) in t.at.iter().enumerate() {
            let Some((kind, _, _, n, _)) = t.head(at) else {
                continue;
            };
            if t.str_at(n) != Some(plain.as_bytes()) {
                continue;
            }
            let id = i as u32 + 1;
            match want {
                Some(k) if k == kind => return Some(id),
                Some(_) => {}
                // A struct or union first (stap's "task_struct"), else a
                // typedef or base type of that name.
                None if kind == KIND_STRUCT || kind == KIND_UNION => return Some(id),
                None if matches!(kind, KIND_INT | KIND_ENUM | KIND_ENUM64 | KIND_TYPEDEF) => {
                    fallback = fallback.or(Some(id))
                }
                None => {}
            }
        }
        fallback
    }

    /// Resolve `steps` from an object of type `ty` at the base address
    /// (`@cast(addr, "task_struct", "kernel")->pid`).
    pub fn resolve_object(&self, ty: u32, steps: &[Step]) -> Result<KValue, String> {
        self.resolve_from(At::Object(ty), ty, steps)
    }

    /// Resolve `steps` from a value of type `ty` (the variable's value is
    /// the base expression).
    pub fn resolve(&self, ty: u32, steps: &[Step]) -> Result<KValue, String> {
        self.resolve_from(At::Value(ty), ty, steps)
    }

    fn resolve_from(&self, start: At, ty: u32, steps: &[Step]) -> Result<KValue, String> {
        let cast_root = matches!(start, At::Object(_));
        let mut acc = Vec::new();
        let mut at = start;
        let mut bitfield = None;
        for (i, step) in steps.iter().enumerate() {
            // The struct/array this step looks into, as an object at the
            // current address.
            let (obj, via_pointer) = match at {
                At::Value(t) => {
                    let t = self.strip(t);
                    match self.rec(t) {
                        Some((KIND_PTR, _, _, _, target, _)) => (target, true),
                        _ => {
                            return Err(format!(
                                "'{}' is not a pointer: it has no members or elements",
                                self.type_name(t)
                            ))
                        }
                    }
                }
                At::Object(t) => {
                    let t = self.strip(t);
                    match self.rec(t) {
                        Some((KIND_PTR, _, _, _, target, _)) => {
                            acc.push(Access::Deref { size: 8 });
                            (target, true)
                        }
                        _ => (t, false),
                    }
                }
            };
            let obj = self.strip(obj);
            match step {
                Step::Member(name) => {
                    let mut ms = Vec::new();
                    self.members(obj, 0, &mut ms, 0);
                    if ms.is_empty() {
                        return Err(format!(
                            "'{}' has no members (looking for '{name}')",
                            self.type_name(obj)
                        ));
                    }
                    let Some((_, bits, bsize, mty)) = ms.iter().find(|m| &m.0 == name).cloned()
                    else {
                        let names: Vec<&str> = ms.iter().map(|m| m.0.as_str()).collect();
                        let near =
                            crate::debuginfo::layout::nearest(name, names.iter().copied(), 3);
                        return Err(format!(
                            "'{}' has no member '{name}' (nearest: {})",
                            self.type_name(obj),
                            near.join(", ")
                        ));
                    };
                    if bsize > 0 {
                        let (_, size, _) = self.shape(mty);
                        let unit = size.max(1) * 8;
                        acc.push(Access::Add(((bits / unit) * (unit / 8)) as i64));
                        bitfield = Some(Bitfield {
                            shift: (bits % unit) as u8,
                            width: bsize as u8,
                        });
                    } else {
                        acc.push(Access::Add((bits / 8) as i64));
                    }
                    at = At::Object(mty);
                }
                Step::Index(ix) => {
                    let elem = if via_pointer {
                        obj
                    } else {
                        match self.rec(obj) {
                            Some((KIND_ARRAY, _, _, _, _, a)) => {
                                self.types.u32_at(a + 12).unwrap_or(0)
                            }
                            // `@cast(p, "unsigned int", "kernel")[2]`: as in
                            // stap, the cast address is an array of the type.
                            _ if i == 0 && cast_root => obj,
                            _ => {
                                return Err(format!("'{}' cannot be indexed", self.type_name(obj)))
                            }
                        }
                    };
                    let size = self.shape(elem).1.max(1);
                    acc.push(match *ix {
                        Index::Const(n) => Access::Add(n * size as i64),
                        Index::Dynamic(slot) => Access::AddScaled {
                            slot,
                            elem_size: size,
                        },
                    });
                    at = At::Object(elem);
                }
            }
        }
        let At::Object(t) = at else {
            let (kind, size, signed) = self.shape(ty);
            return Ok(KValue {
                accesses: acc,
                fetch: Fetch::Address,
                kind,
                size,
                signed,
            });
        };
        let (kind, size, signed) = self.shape(t);
        let fetch = match kind {
            ValueKind::Integer
            | ValueKind::Bool
            | ValueKind::Char
            | ValueKind::Enum
            | ValueKind::Pointer
                if matches!(size, 1 | 2 | 4 | 8) =>
            {
                Fetch::Load {
                    size: size as u8,
                    signed,
                    bitfield,
                }
            }
            ValueKind::Struct | ValueKind::Union | ValueKind::Array => Fetch::Address,
            _ => {
                return Err(format!(
                    "'{}' cannot be read as a number",
                    self.type_name(t)
                ))
            }
        };
        Ok(KValue {
            accesses: acc,
            fetch,
            kind,
            size,
            signed,
        })
    }
}
