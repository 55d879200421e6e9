//! `stapxx-rs`: run SystemTap/stapxx scripts on eBPF.

fn main() {
    let options = stapxx::cli::parse_args(std::env::args_os());
    std::process::exit(stapxx::driver::run(&options));
}
