//! The string functions SystemTap's string.stp writes in embedded C,
//! served by our `tapsets/string.stp` in the script language: the same
//! results in a host probe (`begin`) and a kernel one (`timer.profile`,
//! BPF), as C's strstr() and isdigit() give them.

mod support;

const CALLS: &str = r#"printf("%d %d %d %d %d %d %d %d\n", strpos("hello", "ll"), strpos("hello", "x"), strpos("hello", ""), strpos("", "a"), strpos("abab", "bab"), isdigit("7a"), isdigit("a7"), isdigit(""))"#;
const WANT: &str = "2 -1 0 -1 1 1 0 0\n";

#[test]
fn host_probe() {
    let (code, out, err) = support::stapxx(&["-e", &format!("probe begin {{ {CALLS}; exit() }}")]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, WANT);
}

#[test]
fn kernel_probe() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let (code, out, err) = support::stapxx(&[
        "-e",
        &format!("global done probe timer.profile {{ if (!done++) {{ {CALLS}; exit() }} }}"),
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    // Both CPUs may take the first tick before exit() is seen: each line
    // is the whole answer.
    assert!(
        !out.is_empty() && out.lines().all(|l| format!("{l}\n") == WANT),
        "{out}"
    );
}
