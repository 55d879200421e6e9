//! stapxx-rs as a library: the passes the `stapxx-rs` binary drives.
//!
//! cli -> expand (stapxx macros) -> grammar (preprocess + parse) -> ...

pub mod cli;
pub mod codegen;
pub mod debuginfo;
pub mod driver;
pub mod expand;
pub mod flame;
pub mod ir;
pub mod kernel;
pub mod kernel_btf;
pub mod ksyms;
pub mod loadinfo;
pub mod preflight;
pub mod probes;
pub mod resolve;
pub mod runtime;
pub mod system;
pub mod target;
