//! JSON Schemas of conntrack-kit's JSON outputs (feature `schema`).
//!
//! The schemas are generated from the Rust types (`schemars`), so they say
//! what the types serialise, field by field, with the types' documentation
//! as descriptions. Every schema of the family is made with
//! [`document`]: JSON Schema draft 2020-12, the *serialised* form (a field
//! left out when empty is not required; one always written is), every
//! object closed (`additionalProperties: false`), so that a field added to
//! a type without a schema update fails validation instead of slipping
//! through, and what a top-level document carries: `$id`, title and
//! description. The schemas are committed in the repository's
//! `schemas/` directory, and a test of the root package fails when they and
//! the types drift apart.
//!
//! This module has the schema of a [`Comparison`] ([`compare`]);
//! `conntrack_tune::schema` has those of the report and the plan.
//!
//! ```
//! let s = conntrack_analyze::schema::compare();
//! assert_eq!(s.get("$id").unwrap(), "urn:conntrack-kit:compare:v1");
//! assert_eq!(s.get("additionalProperties").unwrap(), false);
//! ```

use crate::compare::{COMPARE_SCHEMA, COMPARE_SCHEMA_VERSION, Comparison};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value};

/// The schema of a top-level document of type `T`, made like every
/// conntrack-kit schema: draft 2020-12, the serialised form, objects
/// closed, descriptions in plain prose (doc examples and link syntax left
/// out). `$id` is `urn:<schema id with ':' for '/'>:v<version>` (the
/// document's `schema` and `version` fields).
pub fn document<T: JsonSchema>(
    schema_id: &str,
    version: u32,
    title: &str,
    description: &str,
) -> Schema {
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut s = generator.into_root_schema_for::<T>().to_value();
    let id = format!("urn:{}:v{version}", schema_id.replace('/', ":"));
    s["$id"] = id.into();
    s["title"] = title.into();
    s["description"] = description.into();
    tidy(&mut s, true);
    Schema::try_from(s).expect("a root schema is an object")
}

/// The schema of `compare --json`: a [`Comparison`].
pub fn compare() -> Schema {
    document::<Comparison>(
        COMPARE_SCHEMA,
        COMPARE_SCHEMA_VERSION,
        "conntrack-kit comparison",
        "Two conntrack observations side by side (two hosts, or one host before and after a \
         change): rows of configuration, table, rates, flows and top keys, each with a stable \
         key, and the differences that matter in words. Written by the compare example's \
         --json and by serialising conntrack_analyze::compare::Comparison.",
    )
}

/// Keywords whose value is one schema.
const ONE: [&str; 7] = [
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
];
/// Keywords whose value maps names to schemas.
const MAP: [&str; 4] = [
    "properties",
    "$defs",
    "patternProperties",
    "dependentSchemas",
];
/// Keywords whose value is a list of schemas.
const LIST: [&str; 4] = ["prefixItems", "oneOf", "anyOf", "allOf"];
/// The subset of [`LIST`] that combines alternatives or parts of one
/// object.
const COMBINE: [&str; 3] = ["oneOf", "anyOf", "allOf"];

/// Closes objects and tidies descriptions, in `v` and every schema in it.
/// A property without a description of its own (the tag and content of an
/// enum variant) gets its object's.
///
/// An object schema with properties gets `additionalProperties: false`.
/// One that also combines subschemas (a struct with a flattened tagged
/// enum: its own fields, then one variant's) gets `unevaluatedProperties:
/// false` instead, and the subschemas are left open: each sees only its
/// own properties, so closing them would refuse the parent's.
fn tidy(v: &mut Value, close: bool) {
    let Some(o) = v.as_object_mut() else {
        return;
    };
    let combines = COMBINE.iter().any(|k| o.contains_key(*k));
    let open = !o.contains_key("additionalProperties") && !o.contains_key("unevaluatedProperties");
    if o.contains_key("properties") && open {
        if combines {
            o.insert("unevaluatedProperties".into(), false.into());
        } else if close {
            o.insert("additionalProperties".into(), false.into());
        }
    }
    let parts_open = !(o.contains_key("properties") && combines);
    if let Some(Value::String(d)) = o.get_mut("description") {
        *d = prose(d);
    }
    // An enum variant's tag and content properties are described by the
    // variant's documentation.
    if let (Some(Value::String(d)), Some(Value::Object(props))) =
        (o.get("description").cloned(), o.get_mut("properties"))
    {
        for p in props.values_mut().filter_map(Value::as_object_mut) {
            p.entry("description").or_insert_with(|| d.clone().into());
        }
    }
    for (k, sub) in o.iter_mut() {
        let k = k.as_str();
        if ONE.contains(&k) {
            tidy(sub, true);
        } else if MAP.contains(&k) {
            sub.as_object_mut()
                .into_iter()
                .flat_map(Map::values_mut)
                .for_each(|s| tidy(s, true));
        } else if LIST.contains(&k) {
            let close = !COMBINE.contains(&k) || parts_open;
            sub.as_array_mut()
                .into_iter()
                .flatten()
                .for_each(|s| tidy(s, close));
        }
    }
}

/// A doc comment as plain prose: code blocks dropped, lines of a paragraph
/// joined, intra-doc links reduced to their text (`` [`X`] `` and
/// `` [`X`](path) `` become `` `X` ``).
fn prose(doc: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut fenced = false;
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if t.is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(t);
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    unlink(&paragraphs.join("\n\n"))
}

/// `[text]` and `[text](target)` become `text`; other brackets stay.
fn unlink(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if after[..close].starts_with('`') && after[..close].ends_with('`') => {
                out.push_str(&after[..close]);
                rest = &after[close + 1..];
                if rest.starts_with('(')
                    && let Some(end) = rest.find(')')
                {
                    rest = &rest[end + 1..];
                }
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_drops_code_and_links() {
        let doc = "One number.\nSecond line, see [`Counter::ALL`].\n\n```\nlet x = 1;\n\n```\n\
                   Last [`X`](crate::X) and [0, 1].";
        assert_eq!(
            prose(doc),
            "One number. Second line, see `Counter::ALL`.\n\nLast `X` and [0, 1]."
        );
    }

    #[test]
    fn objects_are_closed_and_flattened_variants_left_open() {
        let mut v = serde_json::json!({
            "type": "object",
            "properties": { "a": { "type": "object", "properties": {} } },
            "oneOf": [ { "type": "object", "properties": { "tag": { "const": "x" } } } ],
            "$defs": { "D": { "type": "object", "properties": {} } }
        });
        tidy(&mut v, true);
        assert_eq!(v["unevaluatedProperties"], false);
        assert!(v.get("additionalProperties").is_none());
        assert!(v["oneOf"][0].get("additionalProperties").is_none());
        assert_eq!(v["properties"]["a"]["additionalProperties"], false);
        assert_eq!(v["$defs"]["D"]["additionalProperties"], false);
    }
}

/// `JsonSchema` for the types of `hotspots` and `rates` that appear in the
/// outputs, from mirror definitions: same fields, same serde attributes,
/// same documentation. (Those two modules are being split into
/// directories; once they are, each mirror becomes a
/// `#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]` on the
/// type itself.) A mirror that drifts from its type fails the validation
/// of the scenario reports against the committed schema.
mod mirrors {
    use crate::hotspots::{
        CountMode, DnsCounts, HotspotSummary, Key, KeyCount, KeyKind, KeyTable, NatClass,
        NatCounts, ProtoNat, RemainingHistogram, StateCount,
    };
    use crate::rates::{CpuId, Imbalance, Spread};
    use conntrack_core::{Counter, FlowState, L4Proto};
    use schemars::{JsonSchema, Schema, SchemaGenerator};
    use std::borrow::Cow;
    use std::net::IpAddr;

    /// Implements `JsonSchema` for a type by its mirror.
    macro_rules! by_mirror {
        ($($ty:ty => $mirror:ty),* $(,)?) => {$(
            impl JsonSchema for $ty {
                fn schema_name() -> Cow<'static, str> {
                    <$mirror>::schema_name()
                }

                fn schema_id() -> Cow<'static, str> {
                    <$mirror>::schema_id()
                }

                fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                    <$mirror>::json_schema(generator)
                }
            }
        )*};
    }

    by_mirror! {
        KeyKind => KeyKindDef,
        NatClass => NatClassDef,
        Key => KeyDef,
        CountMode => CountModeDef,
        RemainingHistogram => RemainingHistogramDef,
        KeyCount => KeyCountDef,
        KeyTable => KeyTableDef,
        StateCount => StateCountDef,
        NatCounts => NatCountsDef,
        ProtoNat => ProtoNatDef,
        DnsCounts => DnsCountsDef,
        HotspotSummary => HotspotSummaryDef,
        CpuId => CpuIdDef,
        Imbalance => ImbalanceDef,
        Spread => SpreadDef,
    }

    /// What flows are grouped by.
    #[derive(JsonSchema)]
    #[schemars(rename = "KeyKind")]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum KeyKindDef {
        /// Original source address.
        SrcIp,
        /// Original destination address.
        DstIp,
        /// Protocol and original destination port.
        DstPort,
        /// Original destination endpoint: protocol, address and port (the
        /// service a flow goes to; for ICMP and other port-less protocols
        /// the port is 0).
        Destination,
        /// Layer 4 protocol.
        Proto,
        /// Protocol and state (TCP state; UDP and others:
        /// replied/unreplied).
        State,
        /// Conntrack zone (0 when none).
        Zone,
        /// Connection mark (0 when none).
        Mark,
        /// Source /24 (IPv6: /64).
        SrcNet,
        /// Source /16 (IPv6: /48).
        SrcNetWide,
        /// (source, destination) address pair.
        Pair,
        /// Translated or not, and how.
        Nat,
        /// A caller-supplied name for the address.
        Name,
    }

    /// How a flow is translated.
    #[derive(JsonSchema)]
    #[schemars(rename = "NatClass")]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum NatClassDef {
        /// Not translated.
        None,
        /// Source translated (masquerade, SNAT).
        Snat,
        /// Destination translated (DNAT, port forward, service VIP).
        Dnat,
        /// Both.
        Both,
    }

    /// One key value.
    #[derive(JsonSchema)]
    #[schemars(rename = "Key")]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum KeyDef {
        /// An address.
        Ip(IpAddr),
        /// A protocol and port.
        Port {
            /// Protocol.
            proto: L4Proto,
            /// Port.
            port: u16,
        },
        /// A protocol, address and port.
        Endpoint {
            /// Protocol.
            proto: L4Proto,
            /// Address.
            addr: IpAddr,
            /// Port (0 for port-less protocols).
            port: u16,
        },
        /// A protocol.
        Proto(L4Proto),
        /// A protocol and state.
        State {
            /// Protocol.
            proto: L4Proto,
            /// State.
            state: FlowState,
        },
        /// A zone.
        Zone(u16),
        /// A mark.
        Mark(u32),
        /// A network prefix.
        Net {
            /// The masked address.
            addr: IpAddr,
            /// Prefix length.
            prefix: u8,
        },
        /// An address pair.
        Pair {
            /// Source.
            src: IpAddr,
            /// Destination.
            dst: IpAddr,
        },
        /// A NAT class.
        Nat(NatClass),
        /// A caller-supplied name.
        Name(String),
    }

    /// Exact counting or a bounded top-K per key.
    #[derive(JsonSchema)]
    #[schemars(rename = "CountMode")]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum CountModeDef {
        /// Every distinct key is counted (memory grows with distinct keys).
        Exact,
        /// Space-Saving with at most this many keys per key kind; counts
        /// carry an error bound. Keys with small domains (protocol, state,
        /// NAT class, names) are always counted exactly.
        TopK(usize),
    }

    /// Remaining-timeout histogram, sparse: `[bin start in seconds,
    /// flows]` pairs in ascending order, empty bins left out. Bins are one
    /// second wide below 128 s, then 64 per power of two.
    #[derive(JsonSchema)]
    #[schemars(rename = "RemainingHistogram")]
    #[allow(dead_code)]
    struct RemainingHistogramDef(Vec<(u64, u64)>);

    /// A row of a key table.
    #[derive(JsonSchema)]
    #[schemars(rename = "KeyCount")]
    #[allow(dead_code)]
    struct KeyCountDef {
        /// The key.
        key: Key,
        /// Flows counted for it (an upper bound under top-K).
        count: u64,
        /// How much of `count` may be overestimate (0 when exact).
        error: u64,
        /// `count` over all flows seen, 0..=1.
        share: f64,
    }

    /// The heaviest keys of one kind.
    #[derive(JsonSchema)]
    #[schemars(rename = "KeyTable")]
    #[allow(dead_code)]
    struct KeyTableDef {
        /// Which key.
        kind: KeyKind,
        /// Flows counted in this table (all flows, or for names: the named
        /// ones, for unreplied-by-source: the unreplied ones).
        counted: u64,
        /// Distinct keys, when known exactly.
        distinct: Option<u64>,
        /// Whether every count is exact.
        exact: bool,
        /// Under top-K: no count is overestimated by more than this, and no
        /// key missing from the table has more flows than this.
        error_bound: u64,
        /// The heaviest keys, largest first.
        top: Vec<KeyCount>,
    }

    /// Flows in one protocol state.
    #[derive(JsonSchema)]
    #[schemars(rename = "StateCount")]
    #[allow(dead_code)]
    struct StateCountDef {
        /// Protocol.
        proto: L4Proto,
        /// State.
        state: FlowState,
        /// Flows.
        count: u64,
        /// Share of all flows, 0..=1.
        share: f64,
        /// Remaining timeouts (seconds) of the flows in this state that
        /// carried one.
        remaining: RemainingHistogram,
    }

    /// Flows by translation.
    #[derive(JsonSchema)]
    #[schemars(rename = "NatCounts")]
    #[allow(dead_code)]
    struct NatCountsDef {
        /// Untranslated.
        none: u64,
        /// Source only.
        snat: u64,
        /// Destination only.
        dnat: u64,
        /// Both.
        both: u64,
    }

    /// Flows by translation per protocol family.
    #[derive(JsonSchema)]
    #[schemars(rename = "ProtoNat")]
    #[allow(dead_code)]
    struct ProtoNatDef {
        /// TCP flows.
        tcp: NatCounts,
        /// UDP (and UDP-Lite) flows.
        udp: NatCounts,
        /// Every other protocol.
        other: NatCounts,
    }

    /// DNS flows (destination port 53).
    #[derive(JsonSchema)]
    #[schemars(rename = "DnsCounts")]
    #[allow(dead_code)]
    struct DnsCountsDef {
        /// UDP flows to port 53.
        udp: u64,
        /// TCP flows to port 53.
        tcp: u64,
        /// Of those, translated (a DNS service behind DNAT, such as
        /// Kubernetes' kube-dns ClusterIP, or queries masqueraded out).
        nat: u64,
        /// Of those, never answered.
        unreplied: u64,
    }

    /// The result of a hotspot pass over the listed flows.
    #[derive(JsonSchema)]
    #[schemars(rename = "HotspotSummary")]
    #[allow(dead_code)]
    struct HotspotSummaryDef {
        /// Flows seen.
        flows: u64,
        /// How keys were counted.
        mode: CountMode,
        /// One table per key kind, in the order of `KeyKind`.
        tables: Vec<KeyTable>,
        /// Sources of flows without a reply (`IPS_SEEN_REPLY` clear): scan
        /// suspects, or clients of a dead backend.
        unreplied_by_source: KeyTable,
        /// Every (protocol, state) seen, largest first, with
        /// remaining-timeout histograms.
        states: Vec<StateCount>,
        /// Flows by translation.
        nat: NatCounts,
        /// Flows by translation for TCP, UDP and every other protocol.
        nat_by_proto: ProtoNat,
        /// Translated flows by protocol and destination port (which
        /// services are NAT'd: NAT needs conntrack, so these can never be
        /// NOTRACKed).
        nat_by_service: KeyTable,
        /// Source-translated flows by destination endpoint: many new
        /// connections to one destination through one SNAT address compete
        /// for the same source ports.
        snat_by_destination: KeyTable,
        /// Source-translated flows by original source address: the hosts
        /// or containers that share the translated address.
        snat_by_source: KeyTable,
        /// TCP flows in a closing state (FIN_WAIT, CLOSE_WAIT, LAST_ACK,
        /// TIME_WAIT, CLOSE) by destination endpoint: where short-lived
        /// connections go.
        closing_by_destination: KeyTable,
        /// The same by original source address: who opens them.
        closing_by_source: KeyTable,
        /// DNS flows (destination port 53, UDP or TCP).
        dns: DnsCounts,
        /// Flows with a helper attached or created from an expectation
        /// (`IPS_HELPER` or `IPS_EXPECTED`).
        helper_flows: u64,
        /// Flows without a reply.
        unreplied: u64,
        /// Flows that carried a remaining timeout.
        with_timeout: u64,
    }

    /// How a CPU row is identified: by the CPU id the source named, or by
    /// its row position when the source names none (`/proc` rows).
    #[derive(JsonSchema)]
    #[schemars(rename = "CpuId")]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum CpuIdDef {
        /// A CPU id (ctnetlink `res_id`, `conntrack -S`).
        Id(u32),
        /// A row index (`/proc/net/stat/nf_conntrack` skips impossible
        /// CPUs, so row N is not necessarily CPU N).
        Row(usize),
    }

    /// Per-CPU imbalance of one counter's rate.
    #[derive(JsonSchema)]
    #[schemars(rename = "Imbalance")]
    #[allow(dead_code)]
    struct ImbalanceDef {
        /// The counter.
        counter: Counter,
        /// CPUs considered.
        cpus: usize,
        /// Sum of the CPUs' rates.
        total_per_sec: f64,
        /// Mean rate per CPU.
        mean_per_sec: f64,
        /// The busiest CPU's rate.
        max_per_sec: f64,
        /// `max / mean` (1 when balanced, `cpus` when one CPU has it all).
        max_over_mean: f64,
        /// The busiest CPU.
        busiest: CpuId,
        /// The busiest CPU's share of the total, 0..=1.
        busiest_share: f64,
        /// How the load is spread (excess over the fair share, effective
        /// CPUs).
        spread: Spread,
    }

    /// How unevenly a per-CPU load (rates, softirq counts) is spread.
    #[derive(JsonSchema)]
    #[schemars(rename = "Spread")]
    #[allow(dead_code)]
    struct SpreadDef {
        /// CPUs considered.
        cpus: usize,
        /// Position of the busiest CPU in the load slice.
        busiest: usize,
        /// The busiest CPU's share of the total, 0..=1 (fair: `1 / cpus`).
        busiest_share: f64,
        /// The busiest CPU's excess over its fair share, 0..=1 (0.5 or more
        /// counts as imbalanced).
        excess: f64,
        /// The effective number of CPUs doing the work, `1 / sum(share^2)`
        /// (the inverse Herfindahl index): `k` when `k` CPUs share it
        /// evenly.
        effective_cpus: f64,
    }
}
