//! Inputs the fuzzer (`fuzz/`, target `frontend`) found taking exponential
//! time: a statement or `@name(...)` that failed inside was parsed again by
//! another alternative, twice per nesting level (a 4 KiB script took 20 s
//! at 18 levels). At the depths below the old grammar would not finish;
//! now each is one pass, ending in the error at the right place.

use grammar::{parse_source, printer, MacroTable, PpConfig, SourceMap};

fn parse(text: &str) -> Result<grammar::ast::File, String> {
    let mut sm = SourceMap::new();
    let id = sm.add("t.stp", text);
    parse_source(id, text, &PpConfig::default(), &MacroTable::new()).map_err(|d| d.render(&sm))
}

/// The first line of the error for `text`.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(f) => panic!("expected an error, got:\n{}", printer::print_file(&f)),
        Err(e) => e.lines().next().unwrap_or("").to_string(),
    }
}

#[test]
fn nested_statements_with_an_error_inside() {
    // Minimized from the fuzzer's slow unit: unclosed `if (1) {` blocks.
    let src = format!("probe begin {{ {} x +", "if (1) {".repeat(60));
    assert_eq!(
        error(&src),
        "t.stp:1:499: error: parse error: expected an expression, found end of input"
    );
    for head in ["while (1) {", "for (;;) {", "foreach (k in a) {", "try {"] {
        let src = format!("probe begin {{ {} x + }}", head.repeat(40));
        assert!(
            error(&src).ends_with("error: parse error: expected an expression, found '}'"),
            "{head}: {}",
            error(&src)
        );
    }
}

#[test]
fn nested_else_branches_with_an_error_inside() {
    let src = format!(
        "probe begin {{ {} x + }}",
        "if (1) x = 1; else {".repeat(60)
    );
    assert_eq!(
        error(&src),
        "t.stp:1:1220: error: parse error: expected an expression, found '}'"
    );
}

#[test]
fn nested_at_calls_with_an_error_inside() {
    for open in [
        "@count(@sum(",
        "x = @cast(@cast(",
        "@var(@defined(@hist_log(",
    ] {
        let src = format!("probe begin {{ y = {} x + }}", open.repeat(30));
        assert!(
            error(&src).ends_with("error: parse error: expected an expression, found '}'"),
            "{open}: {}",
            error(&src)
        );
    }
}

#[test]
fn a_statement_keyword_is_that_statement() {
    // Not an expression statement naming the keyword: the error says what
    // the statement lacks, where.
    assert_eq!(
        error("probe begin { if *(x) y }"),
        "t.stp:1:18: error: parse error: expected '(', found '*'"
    );
    assert_eq!(
        error("probe begin { while x }"),
        "t.stp:1:21: error: parse error: expected '(', found 'x'"
    );
    assert_eq!(
        error("probe begin { try x }"),
        "t.stp:1:19: error: parse error: expected '{', found 'x'"
    );
    assert_eq!(
        error("probe begin { if (x) y else }"),
        "t.stp:1:29: error: parse error: expected a statement, found '}'"
    );
    // A keyword elsewhere is still refused as a name.
    assert_eq!(
        error("probe begin { a++ else b++ }"),
        "t.stp:1:19: error: unexpected keyword 'else'"
    );
}

#[test]
fn at_calls_are_told_apart_by_name_and_shape() {
    let listing = |src: &str| printer::print_file(&parse(src).unwrap());
    // Literal strings: @cast/@var; adjacent literals are one string.
    assert_eq!(
        listing("probe begin { x = @cast(p, \"struct a\" \"b\", \"m\")->f + @var(\"v\", \"m\") }"),
        listing("probe begin { x = @cast(p, \"struct ab\", \"m\")->f + @var(\"v\", \"m\") }")
    );
    // Other shapes stay plain @calls, as before (refused later).
    assert_eq!(
        listing("probe begin { x = @cast(p, t) + @var(1) }"),
        "probe begin {\n  x = (@cast(p, t) + @var(1))\n}\n"
    );
    // A statistic needs its operand.
    assert_eq!(
        error("probe begin { x = @count() }"),
        "t.stp:1:19: error: @count takes 1 argument"
    );
    assert_eq!(
        error("probe begin { x = @hist_linear(v, 1) }"),
        "t.stp:1:19: error: @hist_linear takes 4 arguments"
    );
}
