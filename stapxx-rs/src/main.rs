//! `stapxx-rs`: run SystemTap/stapxx scripts on eBPF.
//!
//! `stapxx-rs flamegraph ...` (the word first) is the flame graph
//! subcommand; anything else is a script run, as with `stap++`. (A script
//! file named `flamegraph` is run as `./flamegraph`.)

use std::ffi::OsString;

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "flamegraph") {
        let rest = argv[2..].to_vec();
        std::process::exit(on_big_stack(move || stapxx::flame::main(&rest)));
    }
    let options = stapxx::cli::parse_args(argv);
    stapxx::flame::begin_live(&options);
    std::process::exit(on_big_stack(move || stapxx::driver::run(&options)));
}

/// Run `f` on a thread with a large stack: the passes recurse over the
/// script's syntax tree and the Lua parser over Lua sources, beyond the
/// main thread's default stack.
fn on_big_stack<F: FnOnce() -> i32 + Send + 'static>(f: F) -> i32 {
    let worker = std::thread::Builder::new()
        .name("stapxx-rs".into())
        .stack_size(256 << 20)
        .spawn(f);
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            stapxx::ewriteln!("stapxx-rs: internal error");
            2
        }
    }
}
