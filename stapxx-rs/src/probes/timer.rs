//! `timer.s(N)`, `.ms`, `.us`, `.ns`, `.hz`, `.jiffies`: wall-clock timers
//! the host runs on absolute deadlines (no BPF program: the handler runs
//! in stapxx-rs, like begin/end). `timer.profile` is in [`super::perf`].

use super::{Cx, Miss, SiteKind};
use grammar::ast::{Literal, ProbePoint};
use std::time::Duration;

/// The longest period honoured: beyond a year is as good as never, and it
/// keeps deadline arithmetic far from overflow.
const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 3600);

pub fn resolve(pt: &ProbePoint, cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    let unit = pt.components.get(1).ok_or_else(|| {
        Miss::NoMatch("timer needs a unit: s, ms, us, ns, hz, jiffies or profile".into())
    })?;
    if pt.components.len() > 2 {
        // timer.s(N).randomize(M) is stap's; refuse rather than ignore it.
        return Err(Miss::Unserved(format!(
            "timer.{}(...).{} is not supported",
            unit.name, pt.components[2].name
        )));
    }
    let n = match &unit.arg {
        Some(Literal::Number(n)) if *n > 0 => *n as u64,
        _ => {
            return Err(Miss::Invalid(
                "the timer interval must be a positive number".into(),
            ))
        }
    };
    let d = match unit.name.as_str() {
        "s" | "sec" => Duration::from_secs(n),
        "ms" | "msec" => Duration::from_millis(n),
        "us" | "usec" => Duration::from_micros(n),
        "ns" | "nsec" => Duration::from_nanos(n),
        "hz" => Duration::from_nanos((1_000_000_000 / n).max(1)),
        // A jiffy is one tick of the kernel's clock: 1/CONFIG_HZ s.
        "jiffies" => Duration::from_nanos(n.saturating_mul(1_000_000_000 / cx.hz.max(1))),
        other => {
            let units = ["s", "ms", "us", "ns", "hz", "jiffies", "profile"];
            let near = crate::debuginfo::layout::nearest(other, units.into_iter(), 2);
            return Err(Miss::NoMatch(format!(
                "unknown timer unit '{other}' (nearest: {})",
                near.join(", ")
            )));
        }
    };
    Ok(vec![SiteKind::Timer(
        d.clamp(Duration::from_micros(1), MAX_PERIOD),
    )])
}
