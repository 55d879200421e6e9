//! `stapxx-rs`: run SystemTap/stapxx scripts on eBPF.

fn main() {
    let options = stapxx::cli::parse_args(std::env::args_os());
    // The passes recurse over the script's syntax tree; give them room
    // beyond the main thread's default stack.
    let worker = std::thread::Builder::new()
        .name("stapxx-rs".into())
        .stack_size(256 << 20)
        .spawn(move || stapxx::driver::run(&options));
    let code = match worker.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("stapxx-rs: internal error");
            2
        }
    };
    std::process::exit(code);
}
