//! Variables whose DWARF locations are computed expressions (gcc -O2 folds
//! an argument into `argc * 7` or `argc >> 1` of the caller's register and
//! describes it by `DW_OP_shl`, `DW_OP_shra`, `DW_OP_shr`, `DW_OP_mul`), read
//! for real against `tests/fixtures/computed.c` built with `-O0` (every
//! parameter in memory) and `-O2` (inlined copies). stap reads these; so
//! must we, with the same values at both levels.

mod support;

use std::path::PathBuf;

fn fixture(opt: &str) -> PathBuf {
    support::c_fixture("computed.c", &format!("computed{opt}"), &[opt])
}

/// The probe's lines: the fixture's own (`result 6`) comes when its
/// buffer is flushed at exit, before or after ours.
fn probe_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| !l.starts_with("result ")).collect()
}

/// A data symbol's link-time address, by `nm`.
fn symbol(bin: &std::path::Path, name: &str) -> u64 {
    let out = std::process::Command::new("nm")
        .arg(bin)
        .output()
        .expect("run nm");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.ends_with(&format!(" {name}")))
        .unwrap_or_else(|| panic!("no {name} in {}", bin.display()));
    u64::from_str_radix(line.split(' ').next().unwrap(), 16).unwrap()
}

const USE: &str = r#"probe process("BIN").function("use") { printf("%d %d %d %d\n", $scaled, $half, $seen, $where[0]) }"#;

#[test]
fn computed_parameters_read_the_same_at_every_level() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let bin = fixture(opt);
        let script = USE.replace("BIN", &bin.display().to_string());
        // argc = 3: use(3 * 7, 3 >> 1, counter = 40, &counter); the program
        // prints 6.
        let (code, out, err) = support::stapxx_c(&format!("{} 5 b", bin.display()), &script);
        assert_eq!(code, 0, "{opt}: {err}");
        assert_eq!(probe_lines(&out), ["21 1 40 40"], "{opt}: {err}");
    }
}

#[test]
fn computed_locations_are_plain_stap_at_pass_2() {
    let bin = fixture("-O2");
    let script = USE.replace("BIN", &bin.display().to_string());
    let (code, out, err) = support::stapxx(&["-p2", "-e", &script]);
    assert_eq!(code, 0, "{err}");
    let body = out
        .lines()
        .find(|l| l.contains("printf"))
        .unwrap_or_default();
    // The 32-bit argc sign-extended (shl, shra), scaled; the logical shift
    // right masks the sign bits stap's arithmetic `>>` would keep; `seen`
    // is the global, found from the probe's own address (the load bias),
    // and so is what `where` points to: its value is the global's
    // link-time address moved by the bias, not that address itself.
    let site = support::p2_site_offsets(&bin, r#"function("use")"#)[0];
    let counter = symbol(&bin, "counter");
    assert_eq!(
        body.trim(),
        format!(
            r#"printf("%d %d %d %d\n", (((u_register("rdi") << 32) >> 32) * 7), ((((u_register("rdi") << 32) >> 32) >> 1) & 9223372036854775807), user_int64_error(((u_register("rip") - {site}) + {counter})), user_int64_error(((u_register("rip") - {site}) + {counter})))"#
        ),
        "{out}"
    );
}

#[test]
fn a_parameter_with_no_location_names_its_inlined_copy() {
    let bin = fixture("-O2");
    let script = format!(
        r#"probe process("{}").function("drop") {{ printf("%d\n", $gone) }}"#,
        bin.display()
    );
    let (code, _, err) = support::stapxx(&["-p2", "-e", &script]);
    assert_eq!(code, 1, "{err}");
    let line = support::c_line_of("computed.c", "drop_call");
    let site = support::p2_site_offsets(&bin, r#"function("drop")"#)[0];
    assert!(
        err.contains(&format!(
            "'$gone' is optimized out at the probe address {site:#x} of the copy of function 'drop' inlined at line {line} (--skip-badvars reads it as 0)"
        )),
        "{err}"
    );
}

#[test]
fn skip_badvars_reads_a_missing_parameter_as_zero() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    // argv[1] = "5": drop(5 * 7); at -O2 the value is gone.
    for (opt, want) in [("-O0", "35"), ("-O2", "0")] {
        let bin = fixture(opt);
        let script = format!(
            r#"probe process("{}").function("drop") {{ printf("%d\n", $gone) }}"#,
            bin.display()
        );
        let cmd = format!("{} 5", bin.display());
        let (code, out, err) = support::stapxx(&["--skip-badvars", "-c", &cmd, "-e", &script]);
        assert_eq!(code, 0, "{opt}: {err}");
        assert_eq!(probe_lines(&out), [want], "{opt}: {err}");
        // Said, as stap says it, where it happened (-O0 has a value).
        let warned = err.contains("'$gone' is optimized out")
            && err.contains(": read as 0 (--skip-badvars)");
        assert_eq!(warned, opt == "-O2", "{opt}: {err}");
    }
}
