//! Receive Packet Steering: proposed on each physical interface with RPS
//! off when diagnosis found NET_RX softirq work concentrated on few CPUs
//! (`cpu-imbalance`, the same spread rule). Never for confirm-time
//! failures: they come from parallel processing of new flows, which RPS
//! adds to. The effect is stated as what RPS does (spreads protocol work
//! by flow hash), nothing more.

use super::{Ctx, Outcome};
use crate::plan::*;
use crate::rps;
use conntrack_analyze::facts::Rps;
use conntrack_analyze::{FindingId, Remedy};

pub(crate) fn plan(cx: &Ctx) -> Outcome {
    let mut o = Outcome::default();
    let Some(finding) = cx.finding(FindingId::CpuImbalance) else {
        // No finding: say so when diagnosis could not look.
        let cpu = &cx.facts.cpu;
        if cpu.softirq.is_none() {
            o.unjudged(
                "rps",
                "the NET_RX softirq counts per CPU (/proc/softirqs) were not read: whether \
                 receive work is concentrated on few CPUs is unknown",
            );
        } else if cpu.rps == Rps::Unknown {
            o.unjudged(
                "rps",
                "no receive queue of a physical interface was read (/sys/class/net/*/queues): \
                 whether RPS is on is unknown",
            );
        }
        return o;
    };
    let s = &cx.facts.obs.snapshot;
    let decline = |o: &mut Outcome, what: &str, why: String| {
        o.decline(what, Some(Remedy::EnableRps), why);
    };
    if s.rx_queues.is_empty() {
        decline(
            &mut o,
            "rps",
            "no rx queue of any interface is known (/sys/class/net/*/queues was not read): set \
             /sys/class/net/IFACE/queues/rx-*/rps_cpus by hand on the interface that receives \
             the traffic"
                .into(),
        );
        return o;
    }
    let online: Vec<u32> = if !s.cpus_online.is_empty() {
        s.cpus_online.clone()
    } else if !s.cpus_possible.is_empty() {
        s.cpus_possible.clone()
    } else {
        (0..s.net_rx_softirqs.len() as u32).collect()
    };
    let mut ifaces: Vec<&str> = s.rx_queues.iter().map(|q| q.iface.as_str()).collect();
    ifaces.sort_unstable();
    ifaces.dedup();
    let mut virtual_only = Vec::new();
    let before = (o.actions.len(), o.declined.len());
    for iface in ifaces {
        let what = format!("rps:{iface}");
        if !rps::valid_ifname(iface) {
            decline(
                &mut o,
                &what,
                "not a valid interface name (dev_valid_name): refusing to build a path from it"
                    .into(),
            );
            continue;
        }
        if rps::is_virtual(iface) {
            virtual_only.push(iface);
            continue;
        }
        let queues: Vec<u32> = s
            .rx_queues
            .iter()
            .filter(|q| q.iface == iface)
            .map(|q| q.queue)
            .collect();
        if s.rx_queues
            .iter()
            .any(|q| q.iface == iface && !q.rps_cpus.is_empty())
        {
            decline(&mut o, &what, "RPS is already on for this interface".into());
            continue;
        }
        if queues.len() >= online.len() {
            decline(
                &mut o,
                &what,
                format!(
                    "{} rx queues for {} CPUs: hardware RSS already spreads the load",
                    queues.len(),
                    online.len()
                ),
            );
            continue;
        }
        let masks = rps::queue_masks(&online, &queues);
        let desc: Vec<String> = masks
            .iter()
            .map(|m| format!("rx-{}={}", m.queue, m.mask))
            .collect();
        let mut a = Action::new(
            ActionKind::EnableRps {
                iface: iface.to_string(),
                queues: masks.clone(),
            },
            Priority::P1,
            Scope::Interface,
            format!("Enable RPS on {iface} across {} CPUs", online.len()),
        );
        a.remedy = Some(Remedy::EnableRps);
        a.change = Some(Change {
            target: format!("/sys/class/net/{iface}/queues/rx-*/rps_cpus"),
            current: Some(Value::Mask("0".into())),
            proposed: Value::Mask(desc.join(" ")),
        });
        a.evidence.push(cx.cite(finding));
        a.effect.text = format!(
            "packet processing (conntrack lookups included) of {iface}'s {} rx queue{} is \
             spread over all {} CPUs by flow hash instead of running where the interrupt \
             lands; it relieves a saturated CPU and does not change how often new flows clash",
            queues.len(),
            if queues.len() == 1 { "" } else { "s" },
            online.len()
        );
        a.risk = Risk {
            level: RiskLevel::Low,
            text: "an inter-processor interrupt per steered batch costs some CPU; not persistent \
                   across reboot (use a udev rule or a systemd unit)"
                .into(),
        };
        a.rollback = format!("echo 0 > /sys/class/net/{iface}/queues/rx-N/rps_cpus for each queue");
        a.verify = masks
            .iter()
            .map(|m| Verify::ReadBack {
                path: rps_path(iface, m.queue),
                expected: m.mask.clone(),
            })
            .chain(std::iter::once(Verify::Manual {
                text: "NET_RX columns of /proc/softirqs grow on every CPU".into(),
            }))
            .collect();
        o.actions.push(a);
    }
    if (o.actions.len(), o.declined.len()) == before {
        decline(
            &mut o,
            "rps",
            format!(
                "every interface with known rx queues is virtual ({}): RPS belongs on the \
                 physical interface that receives the traffic, which this observation does not \
                 show",
                virtual_only.join(", ")
            ),
        );
    }
    o
}
