//! NOTRACK rules for the raw table: iptables commands and an nftables
//! ruleset.

use super::{RenderError, one_line, unsafe_value};
use crate::plan::{ActionKind, Plan};

struct Rule<'a> {
    proto: &'static str,
    port: u16,
    id: &'a str,
    stops: &'a [String],
}

fn rules(plan: &Plan) -> Result<Vec<Rule<'_>>, RenderError> {
    let mut out = Vec::new();
    for a in &plan.actions {
        if let ActionKind::Notrack {
            proto,
            port,
            stops_working,
        } = &a.kind
        {
            let proto = match *proto {
                conntrack_core::L4Proto::TCP => "tcp",
                conntrack_core::L4Proto::UDP => "udp",
                other => return Err(unsafe_value("notrack protocol", &other.to_string())),
            };
            out.push(Rule {
                proto,
                port: *port,
                id: &a.id,
                stops: stops_working,
            });
        }
    }
    Ok(out)
}

fn header(r: &Rule<'_>) -> String {
    let mut s = format!(
        "# {}: {}/{} is no longer tracked. What stops working:\n",
        one_line(r.id),
        r.proto,
        r.port
    );
    for st in r.stops {
        s.push_str(&format!("#  - {}\n", one_line(st)));
    }
    s
}

/// iptables/ip6tables commands (idempotent: `-C` before `-A`) that exempt
/// the plan's NOTRACK services in the raw table: incoming packets to the
/// port (PREROUTING) and the service's replies (OUTPUT).
pub fn iptables(plan: &Plan) -> Result<String, RenderError> {
    let mut out =
        String::from("#!/bin/sh\n# Written by conntrack-tune (conntrack-kit).\nset -eu\n");
    let rs = rules(plan)?;
    if rs.is_empty() {
        out.push_str("# This plan proposes no NOTRACK rule.\n");
    }
    for r in rs {
        out.push_str(&header(&r));
        for bin in ["iptables", "ip6tables"] {
            for (chain, dir) in [("PREROUTING", "--dport"), ("OUTPUT", "--sport")] {
                let spec = format!(
                    "{chain} -p {} {dir} {} -m comment --comment 'conntrack-kit notrack' -j CT --notrack",
                    r.proto, r.port
                );
                out.push_str(&format!(
                    "{bin} -t raw -C {spec} 2>/dev/null || {bin} -t raw -A {spec}\n"
                ));
            }
        }
    }
    Ok(out)
}

/// An nftables ruleset (`nft -f`) with the plan's NOTRACK services in a
/// table of its own, at raw priority.
pub fn nftables(plan: &Plan) -> Result<String, RenderError> {
    let rs = rules(plan)?;
    let mut out = String::from("# Written by conntrack-tune (conntrack-kit).\n");
    if rs.is_empty() {
        out.push_str("# This plan proposes no NOTRACK rule.\n");
        return Ok(out);
    }
    for r in &rs {
        out.push_str(&header(r));
    }
    out.push_str("table inet conntrack_kit_notrack {\n");
    out.push_str(
        "\tchain prerouting {\n\t\ttype filter hook prerouting priority raw; policy accept;\n",
    );
    for r in &rs {
        out.push_str(&format!("\t\t{} dport {} notrack\n", r.proto, r.port));
    }
    out.push_str(
        "\t}\n\tchain output {\n\t\ttype filter hook output priority raw; policy accept;\n",
    );
    for r in &rs {
        out.push_str(&format!("\t\t{} sport {} notrack\n", r.proto, r.port));
    }
    out.push_str("\t}\n}\n");
    Ok(out)
}
