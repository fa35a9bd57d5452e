//! A synthetic kube-proxy node: a table of flows through UDP Services
//! (DNATed to endpoints) among TCP and ICMP flows, and the cleanup rules
//! kube-proxy makes when endpoints go away. For the live tests, the
//! benchmark (`benches/bulk_delete.rs`) and the documentation; the flows
//! are created with [`crate::fill::fill_flows`].
//!
//! The table, flow `i` of [`KubeTable::flow`]:
//!
//! - 60 % TCP and 10 % ICMP: [`crate::fill::synthetic_flow`]'s (clients
//!   `10.a.b.c` to `192.0.2.1`/`.3`);
//! - 30 % UDP through Services: UDP flow `u` goes from client
//!   `10.128.0.0 + u` to Service `k = u mod services` at ClusterIP
//!   `10.96.0.0 + 1 + k`, port 53 (even `k`) or 8125 (odd `k`), and was
//!   DNATed to endpoint `j = (u / services) mod endpoints` at
//!   `10.244.0.0 + 1 + k * endpoints + j`, port 8053 or 9125.
//!
//! The rules ([`KubeTable::stale_rules`]) come in the shapes of
//! kube-proxy's conntrack cleanup (`pkg/proxy/conntrack`), interleaved in
//! a cycle of twelve so that any prefix has all of them:
//!
//! - 2 in 12, a Service IP:port whose endpoints are all gone:
//!   `proto=udp orig-dst=SVC orig-dport=PORT` (1.32's `filterForIP` with
//!   the port);
//! - 5 in 12, one endpoint of a Service: `proto=udp orig-dst=SVC
//!   reply-src=EP` (1.32's `filterForNAT`);
//! - 5 in 12, one endpoint IP:port of a Service IP:port: `proto=udp
//!   orig-dst=SVC orig-dport=PORT reply-src=EP reply-sport=TARGET` (1.33's
//!   `filterForIPPortNAT`).
//!
//! Rule `r` names Service `r` (endpoint 0 for the endpoint shapes); rules
//! past the last Service name Services without entries, as kube-proxy's
//! rules for entries that already expired do. With the defaults (3,000
//! Services of 5 endpoints) and 1,000,000 flows, each Service has 100 UDP
//! flows and each endpoint 20, so 3,000 rules match 100,000 flows: 10 %.
//!
//! ```
//! use conntrack_netlink::bulk::kube::KubeTable;
//! let t = KubeTable::default();
//! let rules = t.stale_rules(12);
//! assert_eq!(rules[0].to_string(), "proto=udp orig-dst=10.96.0.1 orig-dport=53");
//! assert_eq!(rules[2].to_string(), "proto=udp orig-dst=10.96.0.3 reply-src=10.244.0.11");
//! assert_eq!(t.matching(1_000_000, 3000), 100_000);
//! ```

use super::rule::{Rule, TupleRule};
use crate::fill::{FlowKind, synthetic_flow};
use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
use std::net::{IpAddr, Ipv4Addr};

/// The shape of the synthetic node (see the [module](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeTable {
    /// UDP Services.
    pub services: u32,
    /// Endpoints per Service.
    pub endpoints: u32,
    /// Timeout of every flow, seconds.
    pub timeout: u32,
}

impl Default for KubeTable {
    /// 3,000 Services of 5 endpoints, flows for a day.
    fn default() -> Self {
        KubeTable {
            services: 3000,
            endpoints: 5,
            timeout: 86_400,
        }
    }
}

fn v4(base: u32, off: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(base.wrapping_add(off)))
}

/// How many of the first `n` flows are UDP (`i mod 10` in 6..=8).
fn udp_before(n: u64) -> u64 {
    n / 10 * 3 + (n % 10).saturating_sub(6).min(3)
}

impl KubeTable {
    /// Service `k`'s ClusterIP.
    pub fn service_ip(&self, k: u32) -> IpAddr {
        v4(0x0a60_0000, 1 + k)
    }

    /// Service `k`'s port.
    pub fn service_port(&self, k: u32) -> u16 {
        if k.is_multiple_of(2) { 53 } else { 8125 }
    }

    /// Endpoint `j` of Service `k`.
    pub fn endpoint_ip(&self, k: u32, j: u32) -> IpAddr {
        v4(0x0af4_0000, 1 + k * self.endpoints + j)
    }

    /// The endpoints' port for Service `k`.
    pub fn target_port(&self, k: u32) -> u16 {
        if k.is_multiple_of(2) { 8053 } else { 9125 }
    }

    /// The UDP flow number `u` (through Service `u mod services`).
    pub fn udp_flow(&self, u: u64) -> Flow {
        let k = (u % u64::from(self.services)) as u32;
        let j = ((u / u64::from(self.services)) % u64::from(self.endpoints)) as u32;
        let client = v4(0x0a80_0000, (u & 0x7f_ffff) as u32);
        let sport = 1024 + (u % 50_000) as u16;
        let orig = Tuple::new(
            client,
            self.service_ip(k),
            L4Proto::UDP,
            L4Tuple::Ports {
                src: sport,
                dst: self.service_port(k),
            },
        );
        let reply = Tuple::new(
            self.endpoint_ip(k, j),
            client,
            L4Proto::UDP,
            L4Tuple::Ports {
                src: self.target_port(k),
                dst: sport,
            },
        );
        let mut f = Flow::new(orig, reply, Status::SEEN_REPLY);
        f.timeout = Some(self.timeout);
        f
    }

    /// Flow number `i` of the table.
    pub fn flow(&self, i: u64) -> Flow {
        match i % 10 {
            0..=5 => synthetic_flow(FlowKind::Tcp, i, self.timeout),
            6..=8 => self.udp_flow(udp_before(i)),
            _ => synthetic_flow(FlowKind::Icmp, i, self.timeout),
        }
    }

    /// Flows `start..start + count`.
    pub fn flows(&self, start: u64, count: u64) -> impl Iterator<Item = Flow> + '_ {
        (start..start + count).map(|i| self.flow(i))
    }

    /// The first `n` cleanup rules (see the [module](self)).
    pub fn stale_rules(&self, n: usize) -> Vec<Rule> {
        (0..n).map(|r| self.stale_rule(r as u32)).collect()
    }

    /// Cleanup rule number `r`.
    pub fn stale_rule(&self, r: u32) -> Rule {
        let k = r;
        let svc = TupleRule::new().dst(self.service_ip(k));
        let ep = TupleRule::new().src(self.endpoint_ip(k, 0));
        let base = Rule::new().proto(L4Proto::UDP);
        match r % 12 {
            0 | 1 => base.orig(svc.dst_port(self.service_port(k))),
            2..=6 => base.orig(svc).reply(ep),
            _ => base
                .orig(svc.dst_port(self.service_port(k)))
                .reply(ep.src_port(self.target_port(k))),
        }
    }

    /// How many of the first `flows` flows the first `rules` rules match
    /// (computed, not dumped).
    pub fn matching(&self, flows: u64, rules: usize) -> u64 {
        let udp = udp_before(flows);
        let per = |k: u32, whole: bool| -> u64 {
            if k >= self.services {
                return 0;
            }
            let s = u64::from(self.services);
            // UDP flows u < udp with u mod S == k.
            let of_k = if u64::from(k) < udp {
                (udp - 1 - u64::from(k)) / s + 1
            } else {
                0
            };
            if whole {
                return of_k;
            }
            // ... and endpoint 0: (u / S) mod E == 0.
            (0..of_k)
                .filter(|m| m % u64::from(self.endpoints) == 0)
                .count() as u64
        };
        (0..rules as u32).map(|r| per(r, r % 12 < 2)).sum()
    }

    /// The flows of `0..flows` that the first `rules` rules match, in
    /// table order, without testing the rules (for deleting them by tuple,
    /// or creating them again, in a benchmark).
    pub fn matching_flows(&self, flows: u64, rules: usize) -> impl Iterator<Item = Flow> + '_ {
        let s = u64::from(self.services);
        let e = u64::from(self.endpoints);
        let named = (rules as u64).min(s);
        (0..udp_before(flows))
            .filter(move |u| {
                let k = u % s;
                k < named && (k % 12 < 2 || (u / s) % e == 0)
            })
            .map(|u| self.udp_flow(u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::reply_tuple;
    use std::collections::HashSet;

    #[test]
    fn flows_are_unique_and_replies_are_dnat() {
        let t = KubeTable::default();
        let mut seen = HashSet::new();
        for i in 0..200_000 {
            let f = t.flow(i);
            assert!(seen.insert(f.orig), "duplicate at {i}");
            if f.orig.proto == L4Proto::UDP {
                assert_ne!(f.reply, reply_tuple(&f.orig));
                assert_eq!(f.reply.dst, f.orig.src);
            }
        }
    }

    #[test]
    fn matching_counts_agree_with_the_rules() {
        let t = KubeTable {
            services: 30,
            endpoints: 5,
            timeout: 60,
        };
        for (flows, rules) in [(10_000, 30), (10_000, 12), (1234, 40), (0, 5)] {
            let set = t.stale_rules(rules);
            let naive: Vec<Flow> = t
                .flows(0, flows)
                .filter(|f| set.iter().any(|r| r.matches_fields(f)))
                .collect();
            let listed: Vec<Flow> = t.matching_flows(flows, rules).collect();
            assert_eq!(listed, naive, "{flows} flows, {rules} rules");
            assert_eq!(naive.len() as u64, t.matching(flows, rules));
        }
        let d = KubeTable::default();
        assert_eq!(d.matching(1_000_000, 3000), 100_000);
        assert_eq!(d.matching(1_000_000, 30_000), 100_000);
        assert_eq!(udp_before(1_000_000), 300_000);
    }
}
