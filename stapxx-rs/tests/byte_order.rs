//! SystemTap's byte-order functions (`linux/inet.stp`: embedded C that
//! stapxx-rs translates) give the values the kernel's conversions give,
//! on the host (a `begin` probe) and in a kernel probe alike.

mod support;

/// The values printed for `ntohs(0x11234)` (only the low 16 bits count),
/// `ntohl`, `htonl`, `ntohll` and `htonll` of fixed inputs.
const WANT: &str = "3412 78563412 78563412 807060504030201 8070605040302f1\n";

const CALLS: &str = r#"printf("%x %x %x %x %x\n", ntohs(0x11234), ntohl(0x12345678),
    htonl(0x12345678), ntohll(0x0102030405060708), htonll(0xf102030405060708))"#;

#[test]
fn on_the_host() {
    let script = format!("probe begin {{ {CALLS}; exit() }}");
    let (status, out, err) = support::stapxx(&["-e", &script]);
    assert_eq!((status, out.as_str()), (0, WANT), "{err}");
}

#[test]
fn in_a_kernel_probe() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let script = format!("probe timer.profile {{ if (cpu() == 0) {{ {CALLS}; exit() }} }}");
    let (status, out, err) = support::stapxx(&["-e", &script]);
    assert_eq!(status, 0, "{err}");
    assert!(out.starts_with(WANT), "{out}\n{err}");
}
