//! The eBPF back end of stapxx-rs: turns the lowered IR into BPF bytecode,
//! wraps it in an ELF object and loads/attaches it.
//!
//! Nothing is here yet: the compiler issue fills it in. The crate exists so
//! that the workspace layout matches the design from the first commit.
