//! Print the preprocessor's output for a file (debugging aid).
fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    match grammar::preprocess(
        grammar::FileId(0),
        &text,
        &grammar::PpConfig::default(),
        &grammar::MacroTable::new(),
    ) {
        Ok(p) => print!("{}", p.text),
        Err(d) => eprintln!("{}", d.message),
    }
}
