//! The one error type of the debuginfo module.
//!
//! Every variant says what was looked for and where, so that a message such as
//! "no debuginfo for /usr/lib/libluajit-5.1.so.2 (build-id 1a2b...): looked in ..."
//! can be shown to the user as it is.

use std::fmt;
use std::path::PathBuf;

/// Result alias used throughout [`crate::debuginfo`].
pub type Result<T, E = DebugError> = std::result::Result<T, E>;

/// A place searched for a separate debug file, and why it was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookedAt {
    /// The path as it was tried on this host (root prefix included).
    pub path: PathBuf,
    /// "not found", "no .debug_info", "build-id mismatch", ...
    pub outcome: String,
}

/// What went wrong while reading ELF/DWARF or resolving a name against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebugError {
    /// A file could not be opened or read.
    Io { path: PathBuf, error: String },
    /// A file is not a (supported) ELF file, or its headers are damaged.
    BadElf { path: PathBuf, error: String },
    /// Neither the file nor any separate debug file has DWARF.
    NoDebugInfo {
        /// The file whose debuginfo was wanted.
        file: PathBuf,
        /// Its GNU build-id in hex, when it has one.
        build_id: Option<String>,
        /// Its `.gnu_debuglink` name, when it has one.
        debuglink: Option<String>,
        /// Every place that was searched.
        looked: Vec<LookedAt>,
        /// For a LuaJIT: why each shipped layout does not fit it.
        layouts: Vec<String>,
    },
    /// The DWARF data is malformed or uses something we do not read.
    Dwarf {
        file: PathBuf,
        context: String,
        error: String,
    },
    /// No complete definition of a type of that name.
    TypeNotFound {
        name: String,
        file: PathBuf,
        /// Similarly named types, best first.
        nearest: Vec<String>,
    },
    /// `@var("name[@cu]")` found no variable.
    VariableNotFound {
        name: String,
        cu: Option<String>,
        file: PathBuf,
        nearest: Vec<String>,
    },
    /// A member chain step names a member the aggregate does not have.
    NoMember {
        /// The aggregate, as C spells it (`struct GCproto`).
        ty: String,
        member: String,
        /// Members with the smallest edit distance, best first.
        nearest: Vec<String>,
    },
    /// A member chain step that cannot apply to the type at hand
    /// (indexing a struct, `->` on an integer, `&` of a bitfield ...).
    BadAccess { ty: String, what: String },
    /// A symbol was not found, or an address maps to no segment/mapping.
    NotFound { what: String, file: PathBuf },
}

impl fmt::Display for DebugError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DebugError::Io { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            DebugError::BadElf { path, error } => {
                write!(f, "{} is not a usable ELF file: {error}", path.display())
            }
            DebugError::NoDebugInfo {
                file,
                build_id,
                debuglink,
                looked,
                layouts,
            } => {
                write!(f, "no DWARF debuginfo for {}", file.display())?;
                match build_id {
                    Some(id) => write!(f, " (build-id {id}")?,
                    None => write!(f, " (no build-id")?,
                }
                match debuglink {
                    Some(link) => write!(f, ", debuglink {link})")?,
                    None => write!(f, ", no debuglink)")?,
                }
                if looked.is_empty() {
                    write!(f, "; no separate debug file to look for")?;
                } else {
                    write!(f, "; looked in:")?;
                    for l in looked {
                        write!(f, "\n  {} ({})", l.path.display(), l.outcome)?;
                    }
                }
                if !layouts.is_empty() {
                    write!(
                        f,
                        "\nit is LuaJIT, but no LuaJIT layout shipped with stapxx-rs fits its machine code:"
                    )?;
                    for why in layouts {
                        write!(f, "\n  {why}")?;
                    }
                }
                write!(
                    f,
                    "\ninstall the -dbgsym/-debuginfo package, point DEBUGINFOD_URLS at a debuginfod server, or rebuild with -g"
                )
            }
            DebugError::Dwarf {
                file,
                context,
                error,
            } => write!(f, "bad DWARF in {} ({context}): {error}", file.display()),
            DebugError::TypeNotFound {
                name,
                file,
                nearest,
            } => {
                write!(f, "type '{name}' not found in {}", file.display())?;
                write_nearest(f, nearest)
            }
            DebugError::VariableNotFound {
                name,
                cu,
                file,
                nearest,
            } => {
                write!(f, "variable '{name}'")?;
                if let Some(cu) = cu {
                    write!(f, " in compile unit '{cu}'")?;
                }
                write!(f, " not found in {}", file.display())?;
                write_nearest(f, nearest)
            }
            DebugError::NoMember {
                ty,
                member,
                nearest,
            } => {
                write!(f, "{ty} has no member '{member}'")?;
                write_nearest(f, nearest)
            }
            DebugError::BadAccess { ty, what } => write!(f, "{what} (type {ty})"),
            DebugError::NotFound { what, file } => {
                write!(f, "{what} not found in {}", file.display())
            }
        }
    }
}

fn write_nearest(f: &mut fmt::Formatter<'_>, nearest: &[String]) -> fmt::Result {
    if nearest.is_empty() {
        Ok(())
    } else {
        write!(f, "; nearest: {}", nearest.join(", "))
    }
}

impl DebugError {
    /// Whether this is a name that does not resolve (no such type, member,
    /// variable or symbol; an access the type does not allow), as opposed to
    /// a file or DWARF problem. `@defined(...)` is false for the former and
    /// must report the latter.
    pub fn is_unresolved_name(&self) -> bool {
        matches!(
            self,
            DebugError::TypeNotFound { .. }
                | DebugError::VariableNotFound { .. }
                | DebugError::NoMember { .. }
                | DebugError::BadAccess { .. }
                | DebugError::NotFound { .. }
        )
    }
}

impl std::error::Error for DebugError {}
