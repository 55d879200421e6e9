//! The end of pass 2 (`resolve/elide.rs`): assignments to locals nothing
//! reads go, keeping their right side when it has an effect (a function
//! that changes a global); statements with no effect go (an `if` whose
//! branches became empty, a `try` around a read that was dropped);
//! functions no handler calls any more are not listed. stap's own pass 2
//! elides the same.

mod support;

const SCRIPT: &str = r#"global g
function bump() { g++; return 1 }
function twice(x) { y = x; return y * 2 }
probe begin { a = twice(3); b = bump(); c = 5; d = c + 1; if (twice(1)) { e = 2 } try { f = user_long(0) } catch { h = 1 } println(d, " ", g); exit() }"#;

#[test]
fn unread_locals_and_pure_statements_are_elided_at_pass_2() {
    let (code, out, err) = support::stapxx(&["-p2", "-e", SCRIPT]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "global g\n\
         function bump () {\n  g++\n  return 1\n}\n\
         # sites:\n#   begin(0) <- begin\n\
         probe begin {\n  bump()\n  c = 5\n  d = (c + 1)\n  println(d, \" \", g)\n  exit()\n}\n"
    );
    // The effect kept is still there when it runs.
    let (code, out, err) = support::stapxx(&["-e", SCRIPT]);
    assert_eq!((code, out.as_str()), (0, "6 1\n"), "{err}");
}
