//! kube-proxy: when it manages `nf_conntrack_max` on this host, it sets
//! `max(maxPerCore x CPUs, min)` at every start and raises the hash table
//! to max/4 buckets when smaller (`cmd/kube-proxy/app/conntrack.go`), so a
//! plan's sysctl.d value is overwritten: the plan warns and persists
//! through kube-proxy's configuration instead (persistence rule).

use super::{Ctx, Outcome, n};
use crate::plan::WarningKind;

pub(crate) fn plan(cx: &Ctx) -> Outcome {
    let mut o = Outcome::default();
    let Some(k) = cx.kube.as_ref() else {
        return o;
    };
    let cpus = cx.facts.cpu.online as u32;
    let eff = (cpus > 0).then(|| k.effective_max(cpus)).flatten();
    let mut text = format!(
        "kube-proxy is configured here ({}) and sets nf_conntrack_max at start",
        k.files.join(", ")
    );
    if let Some(m) = eff {
        text.push_str(&format!(
            " to max(maxPerCore x CPUs, min) = {} on {} CPUs",
            n(m),
            cpus
        ));
    }
    text.push_str(
        ", and raises the hash table to max/4 buckets when smaller (mean chain 8 at a full \
         table). A value persisted in sysctl.d is overwritten when kube-proxy restarts: set \
         conntrack.maxPerCore/min in kube-proxy's configuration instead.",
    );
    if k.tcp_established_timeout.is_some() || k.tcp_close_wait_timeout.is_some() {
        text.push_str(" It also rewrites the TCP established/close-wait timeouts.");
    }
    o.warn(WarningKind::KubeProxyManaged, text);
    o
}
