use super::*;
use grammar::FileId;

const TABLES: &str = r#"
#include <linux/mman.h>
static const _stp_val_array _stp_prot_list[] = {
	{0, "PROT_NONE"},
	V(PROT_READ),
	V(PROT_WRITE),
#ifdef PROT_SAO // powerpc only
	V(PROT_SAO),
#endif
#ifndef O_DSYNC
	{ O_SYNC | 04000000, "O_SYNC" },
#else
	V(O_DSYNC),
#endif
	{0, NULL}
};
static const _stp_val_array _stp_cfg_list[] = {
#ifdef CONFIG_COMPAT
	V(PROT_READ),
#endif
	{0, NULL}
};
"#;

fn embedded(name: &str, params: &[&str], code: &str) -> Function {
    let span = Span::new(FileId(0), 0, 0);
    Function {
        name: name.into(),
        ret: None,
        params: params
            .iter()
            .map(|p| Param {
                name: p.to_string(),
                ty: None,
                span,
            })
            .collect(),
        body: FunctionBody::Embedded(Embedded {
            code: code.into(),
            span,
        }),
        private: false,
        span,
    }
}

fn listing(f: &Function) -> Result<String, String> {
    let b = translate(f, &[TABLES])?;
    Ok(b.stmts
        .iter()
        .map(|s| match &s.kind {
            StmtKind::Return(Some(e)) => grammar::printer::print_expr(e),
            k => format!("{k:?}"),
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

#[test]
fn tables_follow_the_constants_data() {
    let t = read_table("_stp_prot_list", &[TABLES]).unwrap();
    let names: Vec<(i64, &str)> = t.iter().map(|(v, n)| (*v, n.as_str())).collect();
    assert_eq!(
        names,
        [
            (0, "PROT_NONE"),
            (1, "PROT_READ"),
            (2, "PROT_WRITE"),
            (4096, "O_DSYNC")
        ]
    );
    // `#ifdef CONFIG_COMPAT`: the running kernel's configuration decides
    // (as its headers would for stap); without one it is refused.
    let cfg = read_table("_stp_cfg_list", &[TABLES]);
    match crate::system::kconfig()
        .get("CONFIG_COMPAT")
        .map(String::as_str)
    {
        _ if crate::system::kconfig().is_empty() => {
            assert!(cfg.unwrap_err().contains("CONFIG_COMPAT"))
        }
        Some("y") => assert_eq!(cfg.unwrap(), [(1, "PROT_READ".to_string())]),
        _ => assert_eq!(cfg.unwrap(), []),
    }
    let e = read_table("_stp_nowhere", &[TABLES]).unwrap_err();
    assert_eq!(e, "its table _stp_nowhere is not in the loaded tapsets");
}

#[test]
fn one_lookup_bodies() {
    let f = embedded(
        "_prot_str",
        &["prot"],
        "/* pure */ /* unprivileged */\n\t_stp_lookup_or_str(_stp_prot_list, STAP_ARG_prot, STAP_RETVALUE, MAXSTRINGLEN);\n",
    );
    assert_eq!(
        listing(&f).unwrap(),
        r#"__stapxx_lookup_or_str(prot, 16, "PROT_NONE=0;PROT_READ=1;PROT_WRITE=2;O_DSYNC=4096")"#
    );
    let f = embedded(
        "_whence_str",
        &["w"],
        "_stp_lookup_str(_stp_prot_list, (unsigned int)STAP_ARG_w,\n\t\tSTAP_RETVALUE, MAXSTRINGLEN);",
    );
    assert!(listing(&f)
        .unwrap()
        .starts_with("__stapxx_lookup_str((w & 4294967295), 16, "));
    let f = embedded(
        "_flag_str",
        &["f"],
        "int flags = (int)STAP_ARG_f;\n_stp_lookup_str2(_stp_prot_list, flags, STAP_RETVALUE, MAXSTRINGLEN, 10);",
    );
    assert!(listing(&f)
        .unwrap()
        .starts_with("__stapxx_lookup_str(((((((f & 4294967295) ^ 2147483648) - 2147483648) & 4294967295) ^ 2147483648) - 2147483648), 10, "));
    let f = embedded("_other", &["f"], "STAP_RETVALUE = STAP_ARG_f * 2;");
    assert_eq!(
        listing(&f).unwrap_err(),
        "its C statement 'STAP_RETVALUE = STAP_ARG_f * 2' is not one stapxx-rs can translate"
    );
}

#[test]
fn byte_order_conversions() {
    let f = embedded(
        "ntohs",
        &["x"],
        " /* pure */ STAP_RETVALUE = (int64_t) be16_to_cpu ((u16) STAP_ARG_x); ",
    );
    assert_eq!(
        listing(&f).unwrap(),
        "(((((x & 65535) >> 0) & 255) << 8) | ((((x & 65535) >> 8) & 255) << 0))"
    );
    // Little-endian forms keep the bytes; the width still applies.
    let f = embedded("le", &["v"], "STAP_RETVALUE = le32_to_cpu(STAP_ARG_v);");
    assert_eq!(listing(&f).unwrap(), "(v & 4294967295)");
    // Not a conversion: refused as any other C.
    let f = embedded("x", &["v"], "STAP_RETVALUE = be24_to_cpu(STAP_ARG_v);");
    assert!(listing(&f)
        .unwrap_err()
        .contains("not one stapxx-rs can translate"));
}
