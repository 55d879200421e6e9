//! The SystemTap/stapxx language front end, free of I/O:
//!
//! text --[`preprocess`]--> [`Preprocessed`] --[`parse`]--> [`ast::File`]
//!
//! The stapxx macro layer (`$^arg_x`, `@use`, ...) runs before this crate, in
//! the `stapxx-rs` binary, because it needs the command line and the target.

// pest is built without its `std` feature (see Cargo.toml): its stack guard
// cost a sixth of the parse time; the code it generates then names `alloc`.
extern crate alloc;

pub mod ast;
pub mod bytes;
pub mod decode;
pub mod diag;
pub mod parser;
pub mod preprocess;
pub mod printer;
pub mod source;
pub mod visit;

pub use decode::{decode_source, NotUtf8};
pub use diag::Diagnostic;
pub use parser::parse;
pub use preprocess::{preprocess, MacroTable, PpConfig, Preprocessed};
pub use source::{FileId, SourceFile, SourceMap, Span};

/// Preprocess and parse one file with the given library macros.
pub fn parse_source(
    file: FileId,
    text: &str,
    config: &PpConfig,
    library: &MacroTable,
) -> Result<ast::File, Diagnostic> {
    let pre = preprocess(file, text, config, library)?;
    parse(file, &pre)
}
