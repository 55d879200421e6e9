//! `begin`, `end`, `error` (each with an optional sequence number) and
//! `never`: run by the host, never attached.

use super::{Cx, Miss, SiteKind};
use grammar::ast::{Literal, ProbePoint};

pub fn resolve(pt: &ProbePoint, _cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    let [c] = pt.components.as_slice() else {
        return Err(Miss::NoMatch(format!(
            "'{}' takes no further components",
            pt.components[0].name
        )));
    };
    let seq = match &c.arg {
        None => 0,
        Some(Literal::Number(n)) => *n,
        Some(_) => {
            return Err(Miss::Invalid(format!(
                "the sequence number of {} must be a number",
                c.name
            )))
        }
    };
    Ok(vec![match c.name.as_str() {
        "begin" => SiteKind::Begin(seq),
        "end" => SiteKind::End(seq),
        "error" => SiteKind::Error(seq),
        _ if c.arg.is_some() => return Err(Miss::Invalid("never takes no argument".into())),
        _ => SiteKind::Never,
    }])
}
