//! Facts a program keeps as constants and static tables rather than in
//! its types: the enumerators of an enum (found by one of its names, see
//! [`dwarf::enums`](super::dwarf)), the global variables of a name family
//! and the bytes of static data at a link-time address. LuaJIT's
//! fast-function names are read this way (`crate::flame::ffnames`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::error::{DebugError, Result};
use super::Module;

/// Enumerators, (name, value), in declaration order.
pub type Enumerators = Vec<(String, i64)>;

/// Per module: the enumerations looked up so far, by the enumerator asked
/// for (a miss is remembered too: the scan is not repeated).
pub(super) type Cache = Mutex<HashMap<String, Result<Arc<Enumerators>>>>;

impl Module {
    /// All enumerators of the enumeration type declaring `enumerator`,
    /// which works for anonymous enums and for typedefs the compiler left
    /// out (only the enumerators' names are sure to be in the DWARF).
    /// Cached per module.
    pub fn enumeration_with(&self, enumerator: &str) -> Result<Arc<Enumerators>> {
        let mut cache = self.enums.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = cache.get(enumerator) {
            return done.clone();
        }
        let found = self.dwarf().and_then(|d| {
            d.enumeration_with(enumerator)?
                .map(Arc::new)
                .ok_or_else(|| DebugError::NotFound {
                    what: format!("an enumeration declaring '{enumerator}'"),
                    file: d.path().to_path_buf(),
                })
        });
        cache.insert(enumerator.to_string(), found.clone());
        found
    }

    /// The names of the global and file-scope variables the DWARF has
    /// starting with `prefix`, sorted.
    pub fn variables_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .dwarf()?
            .variable_names()
            .filter(|n| n.starts_with(prefix))
            .map(str::to_string)
            .collect();
        names.sort();
        Ok(names)
    }

    /// `len` bytes of the file's initialized data at link-time address
    /// `address` (what a static variable holds when the program starts).
    pub fn static_bytes(&self, address: u64, len: u64) -> Result<Vec<u8>> {
        self.elf
            .bytes_at(address, len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| DebugError::NotFound {
                what: format!("{len} byte(s) of file data at address {address:#x}"),
                file: self.elf.path().to_path_buf(),
            })
    }
}
