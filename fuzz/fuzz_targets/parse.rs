//! Arbitrary UTF-8 through the stap front end: the preprocessor, the parser,
//! and the `.stpm` library loader must return a diagnostic, never panic.
#![no_main]

use grammar::{FileId, MacroTable, PpConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The parser recurses per nesting level (bounded at 100): give it the
    // stack the CLI gives it.
    let data = data.to_vec();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || one(&data))
        .expect("thread")
        .join()
        .expect("no panic");
});

fn one(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = FileId(0);
    let empty = MacroTable::new();
    for guru_mode in [false, true] {
        let config = PpConfig {
            guru_mode,
            ..PpConfig::default()
        };
        // The preprocessor alone, then preprocessor and parser.
        let _ = grammar::preprocess(file, text, &config, &empty);
        let _ = grammar::parse_source(file, text, &config, &empty);
    }
    // The same text as a macro library, then as a script that may use its macros.
    let config = PpConfig::default();
    let mut library = MacroTable::new();
    if library.add_library_file(FileId(1), text, &config).is_ok() {
        let _ = grammar::parse_source(file, text, &config, &library);
    }
}
