//! stapxx-rs as a library: the passes the `stapxx-rs` binary drives.
//!
//! cli -> expand (stapxx macros) -> grammar (preprocess + parse) -> ...

/// `eprint!` that never panics: a message that cannot be written (stderr
/// closed, or a full disk behind it) is dropped and the run goes on.
#[macro_export]
macro_rules! ewrite {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}

/// `eprintln!` that never panics (see [`ewrite!`]).
#[macro_export]
macro_rules! ewriteln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod cli;
pub mod cli_utf8;
pub mod codegen;
pub mod consts;
pub mod debuginfo;
pub mod driver;
pub mod expand;
pub mod flame;
pub mod footprint;
pub mod ir;
pub mod kernel;
pub mod kernel_btf;
pub mod ksyms;
pub mod library;
pub mod limits;
pub mod load_error;
pub mod loadinfo;
pub mod preflight;
pub mod probes;
pub mod resolve;
pub mod runtime;
pub mod script_options;
pub mod scriptfile;
pub mod system;
pub mod target;
pub mod task_info;
pub mod unwind;
pub mod valtable;
