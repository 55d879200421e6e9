//! The socket formatters of SystemTap's syscall tapsets that are embedded
//! C there and script here (`tapsets/linux/syscall_formats.stp`):
//! `_struct_sockaddr_u` and its parts (the address, port, family of every
//! family stap formats), `_sock_type_str`, `_fildes_index_u`; read from a
//! real process's memory in a uprobe and, through the installed tree's
//! own `syscall.connect`, `syscall.socket` and `syscall.pipe.return` aliases, at
//! its system calls: the text stap's C prints. The aliases compute more
//! variables than `argstr` (eight calls of the sockaddr formatter in
//! `syscall.connect`); only what the script reads is compiled, as stap
//! elides the rest, or the handler would not fit in one BPF program.
//! Fixture `tests/fixtures/sockaddrs.c`, -O0 and -O2.

mod support;

/// The sockaddrs the fixture passes, in order, as stap formats them.
const PRETTY: &[&str] = &[
    "{AF_INET, 127.0.0.1, 47001}",
    "{AF_INET6, fe80:0000:0000:0000:0000:0001:0002:abcd, 47002}",
    "{AF_UNIX, \"/nonexistent/stapxx.sock\"}",
    "{AF_UNIX, \"\\000stapxx-abstract\"}",
    "{AF_NETLINK, pid=1234, groups=00000005}",
    "{AF_PACKET, proto=8, ind=2, hatype=1, pkttype=3, halen=6, addr=0x60504030201}",
    "{unknown sockaddr with sa=99, salen=16}",
    "{unknown sockaddr with salen=1}",
    "NULL",
    "{unknown sockaddr with sa=2, salen=12}",
];

#[test]
fn sockaddrs_and_socket_calls_format_as_stap() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let bin = support::c_fixture("sockaddrs.c", &format!("sockaddrs{opt}"), &[opt]);
        let script = format!(
            r#"probe process("{b}").function("show") {{ println("show ", _struct_sockaddr_u($addr, $len)) }}
probe process("{b}").function("show") {{ println("parts ", _struct_sockaddr_u_sa_family($addr, $len), "|", _struct_sockaddr_u_ip_addr($addr, $len), "|", _struct_sockaddr_u_tcp_port($addr, $len)) }}
probe syscall.connect, syscall.socket {{ if (pid() == target()) println(name, "(", argstr, ")") }}
probe syscall.pipe.return {{ if (pid() == target()) printf("%s([%d, %d]) = %s\n", name, pipe0, pipe1, retstr) }}"#,
            b = bin.display()
        );
        let (code, out, err) = support::stapxx_c(&bin.display().to_string(), &script);
        assert_eq!(code, 0, "{opt}: {err}");
        let lines = |p: &str| -> Vec<String> {
            out.lines()
                .filter_map(|l| l.strip_prefix(p))
                .map(String::from)
                .collect()
        };
        assert_eq!(lines("show "), PRETTY, "{opt}");
        assert_eq!(
            lines("parts "),
            [
                "AF_INET|127.0.0.1|47001",
                "AF_INET6|fe80:0000:0000:0000:0000:0001:0002:abcd|47002",
                "AF_UNIX||",
                "AF_UNIX||",
                "AF_NETLINK||",
                "AF_PACKET||",
                "{unknown sockaddr with sa=99, salen=16}|{unknown sockaddr with sa=99, salen=16}|{unknown sockaddr with sa=99, salen=16}",
                "{unknown sockaddr with salen=1}|{unknown sockaddr with salen=1}|{unknown sockaddr with salen=1}",
                "NULL|NULL|NULL",
                "{unknown sockaddr with sa=2, salen=12}|{unknown sockaddr with sa=2, salen=12}|{unknown sockaddr with sa=2, salen=12}",
            ],
            "{opt}"
        );
        let sizes = [16, 28, 27, 18, 12, 20, 16, 1, 0, 12];
        let mut want = vec![
            "socket(PF_INET, SOCK_DGRAM|SOCK_CLOEXEC|SOCK_NONBLOCK, IPPROTO_IP)".to_string(),
            // glibc's pipe() is the pipe2 system call.
            "pipe2([4, 5]) = 0".to_string(),
        ];
        want.extend(
            PRETTY
                .iter()
                .zip(sizes)
                .map(|(p, n)| format!("connect(3, {p}, {n})")),
        );
        let calls: Vec<&str> = out
            .lines()
            .filter(|l| {
                ["socket(", "pipe2(", "connect("]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect();
        assert_eq!(calls, want, "{opt}: {out}");
    }
}

/// `_sock_type_str`: the type, then the flags, then leftover bits in hex
/// (one C int), host and kernel alike.
#[test]
fn socket_types_host_and_kernel() {
    let calls = r#"printf("%s %s %s %s %s\n", _sock_type_str(1), _sock_type_str(0x80805), _sock_type_str(0x42), _sock_type_str(0), _sock_type_str(-1))"#;
    let want = "SOCK_STREAM SOCK_SEQPACKET|SOCK_CLOEXEC|SOCK_NONBLOCK SOCK_DGRAM|0x40 0x0 SOCK_CLOEXEC|SOCK_NONBLOCK|0xfff7f7ff\n";
    support::same_on_host_and_kernel(calls, want);
}
