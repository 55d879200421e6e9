//! A call graph as SystemTap's users write one (`para-callgraph.stp` is
//! the classic): a wildcard over every function, a script function that
//! prints `ppfunc()` and the probe's `$$parms`/`$$return`. `ppfunc()`
//! inside a function names the point of the handler that called it, so
//! the handler is compiled once per function name; functions DWARF does
//! not describe (`_init`) have empty context strings, as in stap.

mod support;

const SCRIPT: &str = r#"
function trace(entry_p, extra) {
  printf("%s%s %s\n", entry_p > 0 ? "->" : "<-", ppfunc(), extra)
}
probe process("BIN").function("*").call { trace(1, $$parms) }
probe process("BIN").function("*").return { trace(-1, $$return) }
"#;

#[test]
fn every_function_named_with_its_parameters() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let bin = support::c_fixture("pretty.c", &format!("pretty{opt}"), &[opt]);
        let script = SCRIPT.replace("BIN", &bin.display().to_string());
        let (code, out, err) = support::stapxx_c(&bin.display().to_string(), &script);
        assert_eq!((code, err.as_str()), (0, ""), "{opt}: {out}");
        let traced: Vec<&str> = out.lines().filter(|l| !l.starts_with("pretty ")).collect();
        // The fixture's own functions, in the order they ran.
        let own: Vec<String> = traced
            .iter()
            .filter(|l| {
                ["main", "visit", "sum"]
                    .iter()
                    .any(|f| l[2..].starts_with(&format!("{f} ")))
            })
            .map(|l| {
                // Addresses vary: keep the names of the parameters.
                let mut words = l.split(' ');
                let head = words.next().unwrap_or("").to_string();
                let rest: Vec<String> = words
                    .map(|w| match w.split_once("=0x") {
                        Some((n, _)) if n != "return" => format!("{n}=ADDR"),
                        _ => w.to_string(),
                    })
                    .collect();
                format!("{head} {}", rest.join(" "))
            })
            .collect();
        assert_eq!(
            own,
            [
                "->main ",
                "->visit n=ADDR depth=ADDR why=ADDR val={...} ip=ADDR c=ADDR",
                // 65710 and 7800: the sums the fixture prints.
                "<-visit return=0x100ae",
                "->sum b=ADDR",
                "<-sum return=0x1e78",
                "<-main return=0x0",
            ],
            "{opt}: {out}"
        );
        // The C runtime's functions (no DWARF) by their own names, with
        // empty context strings; `_start` has no return (refused there).
        for line in ["->_init ", "<-_init ", "->_start "] {
            assert!(traced.contains(&line), "{opt}: {line:?} in {out}");
        }
        assert!(!traced.contains(&"<-_start "), "{opt}: {out}");
        let calls = traced.iter().filter(|l| l.starts_with("->")).count();
        let returns = traced.iter().filter(|l| l.starts_with("<-")).count();
        assert_eq!(
            calls,
            returns + 1,
            "{opt}: every call but _start's returns: {out}"
        );
    }
}

/// The handlers the listing shows: one per function (the script function
/// prints the point), not one for all the functions alike.
#[test]
fn one_handler_per_point_text() {
    let bin = support::c_fixture("pretty.c", "pretty-O0", &["-O0"]);
    let script = SCRIPT.replace("BIN", &bin.display().to_string());
    let (code, out, err) = support::stapxx(&["-p2", "-e", &script]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let handlers = out.matches("# sites:").count();
    let sites = out
        .lines()
        .filter(|l| l.starts_with("#   uprobe") || l.starts_with("#   uretprobe"))
        .count();
    assert_eq!(handlers, sites, "{out}");
    assert!(sites > 10, "{out}");
}
