//! Parser tests: snapshots of the `-p1` listing (how the parser grouped
//! things) and of the AST, plus exact error positions.

use grammar::{parse_source, printer, MacroTable, PpConfig, SourceMap};

fn parse(text: &str) -> Result<grammar::ast::File, String> {
    let mut sm = SourceMap::new();
    let id = sm.add("t.stp", text);
    parse_source(id, text, &PpConfig::default(), &MacroTable::new()).map_err(|d| d.render(&sm))
}

fn listing(text: &str) -> String {
    match parse(text) {
        Ok(f) => printer::print_file(&f),
        Err(e) => panic!("parse failed:\n{e}"),
    }
}

fn error(text: &str) -> String {
    match parse(text) {
        Ok(f) => panic!("expected an error, got:\n{}", printer::print_file(&f)),
        Err(e) => e,
    }
}

#[test]
fn precedence_follows_stap() {
    insta::assert_snapshot!(listing(
        "probe begin {
            a = 1 + 2 * 3 - 4 / 2 % 3
            b = x . y . z + 1
            c = 1 << 2 + 3 < 4 == 5
            d = a || b && c | d ^ e & f
            e = k in arr && [1, \"s\"] in arr2
            f = c ? d : e ? f : g
            g += h -= 2
            s .= \"x\" \"y\"
            st <<< 1 + 2
            i = -x++ + ~--y + !z
            j = s =~ \"^a.*\" || s !~ \"b\"
        }"
    ));
}

#[test]
fn declarations() {
    insta::assert_snapshot!(listing(
        "global a, b[100], c = 5, d%, e%[10], f = \"s\", g = -3
         private global h
         function f:long (x:long, y:string) { return x }
         function g(x) { return }
         private function h:string () %{ /* pure */ STAP_RETSTR(\"x\"); %}
         %{ #include <linux/sched.h> %}
         probe begin(-1), end { }
         probe process(\"/bin/ls\").function(\"main\").return ?, timer.profile !, kernel.trace(\"sched:sched_switch\") { }
         probe perf.type(1).config(0).sample(1000) if (enabled) { }
         probe syscall.* { }
         probe my.alias = process(\"x\").function(\"f*\") ? { v = 1 }
         probe my.alias += timer.s(1) { w = \"1\" }
         probe process(\"a\").statement(\"f@x.c:12\"), kernel.function(\"f\").callee(\"g\") {}
        "
    ));
}

#[test]
fn statements() {
    insta::assert_snapshot!(listing(
        "probe begin {
            if (a) b = 1 else { c = 2; }
            while (i < 10) { i++; if (i == 5) continue; if (i == 8) break }
            for (i = 0; i < 10; i++) n += i
            for (;;) break
            foreach ([a, b-] in arr+ limit 10) printf(\"%d %d\\n\", a, b)
            foreach (v = [k] in arr) delete arr[k]
            foreach (x in arr) next
            foreach ([i] in @hist_log(s)) {}
            foreach ([a, b] in arr[*, 3]) {}
            foreach (k in stats @sum- limit 5) {}
            delete arr
            try { error(\"boom\") } catch (msg) { warn(msg) }
            try { x = 1 } catch { }
            ;
            return
        }"
    ));
}

#[test]
fn dwarf_values() {
    insta::assert_snapshot!(listing(
        "probe process(\"x\").function(\"f\") {
            a = $r->start_sec * 1000 + $r->start_msec
            b = @cast(p, \"struct foo\", \"/usr/bin/x\")->next->arr[i + 1]->c
            c = &@cast(0, \"GCproto\")[1]
            d = @var(\"globalL\", \"/usr/bin/luajit\")
            e = @var(\"x@y.c\")->a$
            f = $$parms$ . $$vars . $$locals$$ . $$return
            g = @defined($foo->bar) ? $foo->bar : 0
            h = @entry($a) + @perf(\"cycles\") + @const(\"PAGE_SIZE\")
            i = &$var->m
            j = $ptr[3]
            k = @count(s) + @sum(s) + @min(s) + @max(s) + @avg(s) + @variance(s)
            print(@hist_linear(s, 0, 100, 10))
            l = @kregister(3) + @uregister(2)
        }"
    ));
}

#[test]
fn literals() {
    insta::assert_snapshot!(listing(
        "probe begin {
            a = 0x1F + 017 + 0 + 18446744073709551615 + 9223372036854775807
            b = \"tab\\there\\nnl \\\"q\\\" \\\\ \\101\\x42\"
            # a comment
            c = 1 // another
            /* and a
               block comment */ d = 2
        }"
    ));
}

#[test]
fn ast_shape() {
    let f = parse("global g\nprobe timer.ms(10) { g[pid()] <<< 1 }").unwrap();
    insta::assert_debug_snapshot!(f);
}

#[test]
fn keywords_are_member_names() {
    // `->next` and `->return` are C member names, not keywords.
    let l = listing("probe begin { x = @cast(p, \"T\")->next->return->in }");
    assert!(l.contains("->next->return->in"), "{l}");
}

#[test]
fn semicolons_are_optional() {
    let l = listing("probe begin { a = 1 b = 2; c = 3 }");
    assert_eq!(l.lines().filter(|l| l.contains('=')).count(), 3, "{l}");
}

#[test]
fn errors_point_at_the_place() {
    let e = error("probe begin {\n  x = \"abc\n}\n");
    assert!(e.starts_with("t.stp:2:"), "{e}");
    assert!(e.contains("unterminated string"), "{e}");

    let e = error("probe begin { }\n}\n");
    assert!(e.starts_with("t.stp:2:1: error:"), "{e}");

    let e = error("probe begin {\n  /* never closed\n}\n");
    assert!(
        e.starts_with("t.stp:2:3: error: unterminated comment"),
        "{e}"
    );

    let e = error("probe begin { x = 1 +  }");
    assert!(e.starts_with("t.stp:1:"), "{e}");
    assert!(e.contains("expected an expression"), "{e}");

    let e = error("probe kernel..function(\"x\") { }");
    assert!(e.starts_with("t.stp:1:14:"), "{e}");

    let e = error("function f( { }");
    assert!(e.starts_with("t.stp:1:"), "{e}");

    let e = error("probe begin { x = 1 +\n 2 * }");
    assert!(e.starts_with("t.stp:2:"), "{e}");
    // The caret line sits under the reported column.
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines[1], "     2 * }");
    assert_eq!(lines[2].find('^'), Some(9), "{e}");
}

#[test]
fn never_panics_on_junk() {
    for junk in [
        "",
        "}",
        "{",
        "probe",
        "probe {",
        "@",
        "$",
        "%{",
        "\"",
        "/*",
        "global",
        "function",
        "probe begin { @cast( }",
        "probe a.b(\"x\" { }",
        "\u{0}",
        "probe begin { x = 99999999999999999999999 }",
        "probe begin { $$ }",
        "probe begin { a[ }",
        "probe begin { foreach ( }",
        "probe begin { &x }",
    ] {
        let _ = parse(junk);
    }
}

#[test]
fn alias_with_prologue_and_epilogue() {
    let l = listing("probe a.b = kernel.function(\"f\") ? { x = 1 }, { y = 2 }");
    assert_eq!(
        l,
        "probe a.b = kernel.function(\"f\")? {\n  x = 1\n}\n, {\n  y = 2\n}\n"
    );
    assert!(error("probe a { }, { }").contains("epilogue"));
}

#[test]
fn dollar_suffix_only_right_after_a_target_variable() {
    // `$value` on the next line is a new statement, not a `$` suffix.
    let l = listing("probe begin {\n  x = sprintf(\"a\")\n\n  $value .= \"b\"\n}");
    assert!(l.contains("x = sprintf(\"a\")\n  $value .= \"b\""), "{l}");
}

#[test]
fn deep_operator_chains_are_refused_not_crashed() {
    let bangs = "!".repeat(100_000);
    assert!(error(&format!("probe begin {{ x = {bangs}1 }}")).contains("nested too deeply"));
    let sum = vec!["1"; 20_000].join(" + ");
    assert!(error(&format!("probe begin {{ x = {sum} }}")).contains("too many operators"));
}

#[test]
fn keywords_are_not_names() {
    assert!(error("probe begin { a++ else b++ }").contains("unexpected keyword 'else'"));
    assert!(error("probe begin { x = in + 1 }").contains("unexpected keyword 'in'"));
    assert!(error("function for() { }").contains("unexpected keyword 'for'"));
}

#[test]
fn deep_nesting_is_refused_not_crashed() {
    // The parser recurses per bracket; the CLI gives it a big stack, as a
    // library user must (unoptimized builds need ~40 KiB per level).
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(deep_nesting)
        .unwrap()
        .join()
        .unwrap();
}

fn deep_nesting() {
    let open = "(".repeat(100_000);
    let close = ")".repeat(100_000);
    assert!(error(&format!("probe begin {{ x = {open}1{close} }}")).contains("nested more than"));
    // 100 levels are fine.
    let open = "(".repeat(90);
    let close = ")".repeat(90);
    listing(&format!("probe begin {{ x = {open}1{close} }}"));
}

/// Brace expansion gives the points stap's `-p1` lists for the same text.
#[test]
fn brace_expansion_in_probe_points() {
    assert_eq!(
        listing(
            "probe {begin,end}{ }
             probe timer.{s(1), ms(2)}, a.{b,{c,d}.e}.f { }
             probe process.{function(\"a\"), function(\"b\").{call,return}} { }
             probe process.{function(\"*\").callees,plt}? { }
             probe {kernel,module(\"nfs\")}.function(\"nfs*\")! { }
             probe a.{b?,c} if (x) { }
             probe x = { begin , end } { }
             probe process(\"x\").function(\"{a,b}*\") { }"
        ),
        "probe begin, end {\n}\n\
         probe timer.s(1), timer.ms(2), a.b.f, a.c.e.f, a.d.e.f {\n}\n\
         probe process.function(\"a\"), process.function(\"b\").call, process.function(\"b\").return {\n}\n\
         probe process.function(\"*\").callees?, process.plt? {\n}\n\
         probe kernel.function(\"nfs*\")!, module(\"nfs\").function(\"nfs*\")! {\n}\n\
         probe a.b? if (x), a.c if (x) {\n}\n\
         probe x = begin, end {\n}\n\
         probe process(\"x\").function(\"{a,b}*\") {\n}\n"
    );
}

#[test]
fn brace_expansion_errors() {
    // Flags and conditions inside braces only at the end of the point.
    assert_eq!(
        error("probe {a?,c}.d { }"),
        "t.stp:1:8: error: '?', '!' and 'if (...)' inside braces must end the probe point, \
         but more components follow the braces\n    probe {a?,c}.d { }\n           ^\n"
    );
    assert_eq!(
        error("probe a.{c?,d}! { }"),
        "t.stp:1:15: error: '?' or '!' given both inside and after braces\n    \
         probe a.{c?,d}! { }\n                  ^\n"
    );
    assert_eq!(
        error("probe a.{b if (x)} if (y) { }"),
        "t.stp:1:20: error: 'if (...)' given both inside and after braces\n    \
         probe a.{b if (x)} if (y) { }\n                       ^\n"
    );
    // A group is whole components: no argument after it, no empty member.
    assert!(error("probe timer.{s,ms}(1) { }").contains("1:19: error: parse error"));
    assert!(error("probe a.{b,} { }").contains("1:12: error: parse error"));
    // Each group multiplies the points; the total is bounded.
    let many = format!("probe x{} {{ }}", ".{a,b,c,d,e,f,g,h,i,j}".repeat(5));
    assert!(error(&many).contains("brace expansion makes more than 10000 probe points"));
}
