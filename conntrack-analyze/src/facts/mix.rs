//! What the table holds: protocols, translation, DNS, states, and where
//! translated and short-lived connections go.

use crate::hotspots::{HotspotSummary, Key, KeyCount, share};
use crate::observation::Observation;
use conntrack_core::{FlowState, L4Proto, TcpState};
use serde::Serialize;

/// The composition of the table, from the flows that were listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Mix {
    /// Flows examined.
    pub flows: u64,
    /// Table entries per examined flow (1 when every entry was listed;
    /// more when the listing is a sample of a bigger table).
    pub scale: f64,
    /// TCP share, 0..=1.
    pub tcp_share: f64,
    /// UDP share.
    pub udp_share: f64,
    /// Translated share of all flows.
    pub nat_share: f64,
    /// Translated share of TCP flows.
    pub tcp_nat_share: f64,
    /// Source-translated share of TCP flows (SNAT, MASQUERADE).
    pub tcp_snat_share: f64,
    /// Sources whose flows are source-translated (distinct, when counted
    /// exactly; else a lower bound: the rows kept, at least two).
    pub snat_sources: u64,
    /// Translated share of UDP flows.
    pub udp_nat_share: f64,
    /// Source-translated share of all flows.
    pub snat_share: f64,
    /// DNS flows (port 53, UDP and TCP).
    pub dns_flows: u64,
    /// DNS share.
    pub dns_share: f64,
    /// Translated share of DNS flows.
    pub dns_nat_share: f64,
    /// TIME_WAIT share.
    pub time_wait_share: f64,
    /// Unreplied share.
    pub unreplied_share: f64,
    /// The destination most source-translated flows go to, with its share
    /// of them.
    pub top_snat_destination: Option<(String, f64)>,
}

impl Mix {
    pub(crate) fn derive(obs: &Observation, count: Option<u64>) -> Option<Mix> {
        let h = obs.hotspots.as_ref().filter(|h| h.flows > 0)?;
        let n = h.flows;
        let tcp = h.nat_by_proto.tcp;
        let udp = h.nat_by_proto.udp;
        let snat = h.nat.snat + h.nat.both;
        let dns = h.dns.udp + h.dns.tcp;
        let scale = match count {
            Some(c) if c > n => c as f64 / n as f64,
            _ => 1.0,
        };
        let top = h
            .snat_by_destination
            .top
            .first()
            .filter(|_| snat > 0)
            .map(|k: &KeyCount| (k.key.to_string(), share(k.count, snat)));
        Some(Mix {
            flows: n,
            scale,
            tcp_share: share(tcp.total(), n),
            udp_share: share(udp.total(), n),
            nat_share: share(h.nat.snat + h.nat.dnat + h.nat.both, n),
            tcp_nat_share: share(tcp.translated(), tcp.total()),
            tcp_snat_share: share(tcp.snat + tcp.both, tcp.total()),
            // A bounded count that is not exact evicted a key for another
            // one: it has seen more keys than it holds, at least two.
            snat_sources: h.snat_by_source.distinct.unwrap_or(
                (h.snat_by_source.top.len() as u64).max(if h.snat_by_source.exact { 0 } else { 2 }),
            ),
            udp_nat_share: share(udp.translated(), udp.total()),
            snat_share: share(snat, n),
            dns_flows: dns,
            dns_share: share(dns, n),
            dns_nat_share: share(h.dns.nat, dns),
            time_wait_share: share(
                h.state_count(L4Proto::TCP, FlowState::Tcp(TcpState::TIME_WAIT)),
                n,
            ),
            unreplied_share: share(h.unreplied, n),
            top_snat_destination: top,
        })
    }

    /// Scales a count of examined flows to the table.
    pub fn scaled(&self, n: u64) -> u64 {
        let v = (n as f64 * self.scale).round();
        if v.is_finite() && v < u64::MAX as f64 {
            v as u64
        } else {
            u64::MAX
        }
    }
}

/// The flows of a service key (`udp/53`), translated or not, from a
/// summary's NAT-by-service table.
pub fn nat_flows_of(h: &HotspotSummary, proto: L4Proto, port: u16) -> Option<u64> {
    h.nat_by_service
        .top
        .iter()
        .find(|k| k.key == Key::Port { proto, port })
        .map(|k| k.count)
}
