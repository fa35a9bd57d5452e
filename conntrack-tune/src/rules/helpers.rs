//! Unused conntrack helpers: loadable ones are unloaded in one P3 action;
//! built-in ones cannot be and are declined with the reason. Since 4.7
//! (commit 3bb398d925ec "netfilter: nf_ct_helper: disable automatic
//! helper assignment") a helper acts only on flows an explicit CT rule
//! assigns to it, so an unused one is inert either way.

use super::{Ctx, Outcome};
use crate::plan::*;
use conntrack_analyze::{FindingId, Remedy};
use conntrack_core::host::ModuleKind;

pub(crate) fn plan(cx: &Ctx) -> Outcome {
    let mut o = Outcome::default();
    let Some(f) = cx.finding(FindingId::UnneededHelpers) else {
        return o;
    };
    let cfg = &cx.facts.obs.config;
    let helpers: Vec<&String> = cx
        .facts
        .obs
        .snapshot
        .helpers
        .iter()
        .filter(|h| h.starts_with("nf_conntrack_"))
        .collect();
    let (builtin, loadable): (Vec<&String>, Vec<&String>) = helpers
        .into_iter()
        .partition(|h| cfg.helper_kind(h) == ModuleKind::BuiltIn);
    if !builtin.is_empty() {
        let names: Vec<&str> = builtin.iter().map(|h| h.as_str()).collect();
        o.decline(
            "unload helpers (built in)",
            Some(Remedy::UnloadHelpers),
            format!(
                "{} {} built into the kernel (present in /sys/module, not in /proc/modules): a \
                 built-in helper cannot be unloaded, and `modprobe -r` refuses it. Since 4.7 \
                 (3bb398d925ec) helpers act only on flows an explicit CT helper rule assigns \
                 them, so the ruleset decides whether they are used",
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" }
            ),
        );
    }
    if loadable.is_empty() {
        return o;
    }
    let list: Vec<&str> = loadable.iter().map(|h| h.as_str()).collect();
    let unknown: Vec<&str> = list
        .iter()
        .copied()
        .filter(|h| cfg.helper_kind(h) != ModuleKind::Module)
        .collect();
    let mut a = Action::new(
        ActionKind::UnloadHelpers {
            modules: list.iter().map(|s| s.to_string()).collect(),
        },
        Priority::P3,
        Scope::HostInitNamespace,
        format!("Unload unused conntrack helpers: {}", list.join(", ")),
    )
    .answering(Remedy::UnloadHelpers, cx.cite(f));
    if !unknown.is_empty() {
        a.evidence.push(Evidence::new(
            Source::HostFiles,
            format!(
                "whether {} {} a loadable module or built in is unknown (no /proc/modules or \
                 /sys/module facts): modprobe -r refuses built-in ones, which then stay",
                unknown.join(", "),
                if unknown.len() == 1 { "is" } else { "are" }
            ),
        ));
    }
    let words = list.join(" ");
    a.effect.text = format!(
        "modprobe -r {words}: less attack surface; automatic helper assignment has been off by \
         default since 4.7 (commit 3bb398d925ec), so loaded helpers only act through explicit \
         CT rules"
    );
    a.risk = Risk {
        level: RiskLevel::Medium,
        text: "protocols needing a helper (e.g. active FTP) break if a CT helper rule is added \
               later; a rule that names a helper loads it again"
            .into(),
    };
    a.rollback = format!("modprobe -a {words}");
    a.verify = vec![Verify::Manual {
        text: format!("lsmod lists none of {}", list.join(", ")),
    }];
    o.actions.push(a);
    o
}
