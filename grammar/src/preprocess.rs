//! The stap preprocessor: `%( COND %? A %: B %)` conditionals and
//! `@define NAME(params) %( body %)` macros.
//!
//! It works on tokens (so `%(` inside a string or comment is left alone) and
//! writes text back out: skipped regions become blanks with their newlines
//! kept, so offsets outside macro expansions map one to one to the input.

use crate::diag::Diagnostic;
use crate::source::{FileId, Span};
use std::collections::HashMap;

/// What `%( ... %)` conditions test against.
#[derive(Debug, Clone)]
pub struct PpConfig {
    /// `kernel_v`: the release without its local suffix, e.g. `6.1.0`.
    pub kernel_v: String,
    /// `kernel_vr`: the full release, e.g. `6.1.0-13-amd64`.
    pub kernel_vr: String,
    pub arch: String,
    pub runtime: String,
    pub systemtap_v: String,
    pub systemtap_privilege: String,
    pub guru_mode: bool,
    /// `CONFIG_*` values from the kernel config (`y`, `m`, numbers, strings).
    pub kconfig: HashMap<String, String>,
}

impl Default for PpConfig {
    fn default() -> PpConfig {
        PpConfig {
            kernel_v: "6.1.0".into(),
            kernel_vr: "6.1.0".into(),
            arch: "x86_64".into(),
            runtime: "kernel".into(),
            systemtap_v: "5.0".into(),
            systemtap_privilege: "stapdev".into(),
            guru_mode: false,
            kconfig: HashMap::new(),
        }
    }
}

/// Macros visible to a file: library macros (from `.stpm` files) plus the
/// file's own `@define`s.
#[derive(Debug, Clone, Default)]
pub struct MacroTable {
    macros: HashMap<String, Macro>,
}

#[derive(Debug, Clone)]
pub struct Macro {
    pub name: String,
    pub params: Vec<String>,
    pub body: String,
    pub span: Span,
}

/// Preprocessed text plus the map back to the original offsets.
#[derive(Debug, Clone)]
pub struct Preprocessed {
    pub file: FileId,
    pub text: String,
}

impl Preprocessed {
    /// The original span of output bytes `[start, end)`.
    pub fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }
}

/// Preprocess one file.
pub fn preprocess(
    file: FileId,
    text: &str,
    _config: &PpConfig,
    _library: &MacroTable,
) -> Result<Preprocessed, Diagnostic> {
    // Placeholder until the token-level preprocessor lands: identity.
    Ok(Preprocessed {
        file,
        text: text.to_string(),
    })
}

impl MacroTable {
    pub fn new() -> MacroTable {
        MacroTable::default()
    }
}
