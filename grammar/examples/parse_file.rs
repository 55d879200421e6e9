//! Parse files given on the command line and print the `-p1` listing.
//! Handy for poking at the grammar: `cargo run -p stapxx-grammar --example parse_file -- x.stp`
use grammar::{parse_source, printer, MacroTable, PpConfig, SourceMap};

fn main() {
    let mut sm = SourceMap::new();
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let id = sm.add(path.clone(), text.clone());
        match parse_source(id, &text, &PpConfig::default(), &MacroTable::new()) {
            Ok(f) => print!("{}", printer::print_file(&f)),
            Err(d) => eprint!("{}", d.render(&sm)),
        }
    }
}
