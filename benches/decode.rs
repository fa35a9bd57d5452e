//! Decoding a 1,000,000-flow ctnetlink dump held in memory.
//!
//! The buffer has the layout a Linux 6.18 x86_64 kernel emits in a dump
//! (`encode_flow_as_kernel`, checked byte for byte against captured
//! fixtures): one `IPCTNL_MSG_CT_NEW | NLM_F_MULTI` message per flow, then
//! `NLMSG_DONE`. The mix: TCP and UDP over IPv4 and IPv6, ICMP and ICMPv6,
//! some NAT'd and zoned, every flow with counters (acct on), a start
//! timestamp, id, use, mark and timeout, TCP with full protoinfo.
//!
//! Both contenders do a full decode and compute the same facts: flows per
//! state, the sum of both directions' byte counters, and an XOR over ids,
//! marks, start times, ports and the last address byte, so that nothing
//! is optimised away.
//!
//! - `conntrack-kit`: `conntrack_netlink::wire::flows` over the buffer.
//! - `netlink-packet-netfilter` (the baseline): `NetlinkMessage::<
//!   NetfilterMessage>::deserialize` per message, as its own
//!   `dump_conntrack` example does, then walking its typed attributes
//!   (tuples, status, protoinfo, mark, timeout). It leaves counters,
//!   timestamps, id and use as opaque `DefaultNla`s whose bytes are only
//!   reachable through `Nla::emit_value`, so the baseline copies them into
//!   one reused scratch buffer and walks them with `NlasIterator` and
//!   `parse_u64_be`/`parse_u32_be`, as a user of that crate must.
//!
//! After criterion's report, both contenders' times, flows/s and GB/s
//! (by median) and the ratio are printed, read from criterion's own
//! estimates of this run. The median is the headline: the project's VM is
//! shared, and a co-tenant's burst moves the mean of 10 samples more than
//! the median.
//!
//! After that, both are measured again in CPU time of the benchmark
//! thread (`/proc/thread-self/schedstat`, best of 5 and 3 passes): the
//! one-core throughput, which a co-tenant's load does not inflate.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it only checks
//! that both decoders agree on 2,000 flows.
//!
//! Run: `cargo bench --bench decode -- --measurement-time 5`

use conntrack_kit::ct_core::{
    Counters, Flow, FlowState, L4Proto, L4Tuple, ProtoInfo, Status, TcpFlags, TcpInfo, TcpState,
    Timestamp, Tuple,
};
use conntrack_kit::netlink::wire::{self, encode, message};
use criterion::{Criterion, Throughput};
use netlink_packet_core::{
    NLA_TYPE_MASK, NetlinkMessage, NetlinkPayload, Nla, NlasIterator, parse_u32_be, parse_u64_be,
};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoInfo as NpProtoInfo, ProtoInfoTCP,
    ProtoTuple, Tuple as NpTuple,
};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

const FLOWS: usize = 1_000_000;
/// Flows under `cargo test --all-targets` (no `--bench` argument).
const SMOKE: usize = 2_000;
const GROUP: &str = "decode_1M_flows";
const OURS: &str = "conntrack-kit";
const BASELINE: &str = "netlink-packet-netfilter";

/// Deterministic xorshift, so every run decodes the same buffer.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn make_flow(rng: &mut Rng, i: usize) -> Flow {
    let r = rng.next();
    let kind = r % 100;
    let v6 = matches!(kind, 50..=59 | 70..=79 | 95..=99);
    let proto = match kind {
        0..=59 => L4Proto::TCP,
        60..=89 => L4Proto::UDP,
        90..=94 => L4Proto::ICMP,
        _ => L4Proto::ICMPV6,
    };
    let host = (r >> 8) as u32;
    let (src, dst, nat_dst): (IpAddr, IpAddr, IpAddr) = if v6 {
        (
            Ipv6Addr::from(0xfd00_0000_0000_0000_0000_0000_0000_0000u128 | u128::from(host)).into(),
            Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | u128::from(!host))
                .into(),
            Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0001u128).into(),
        )
    } else {
        (
            Ipv4Addr::from(0x0a00_0000 | (host & 0x00ff_ffff)).into(),
            Ipv4Addr::from(0xc633_6400 | (host >> 24)).into(),
            Ipv4Addr::new(198, 51, 100, 1).into(),
        )
    };
    let sport = 32768 + (r >> 40) as u16 % 28000;
    let dport = [443u16, 80, 53, 8080, 5432][(r >> 56) as usize % 5];
    let ol4 = match proto {
        L4Proto::TCP | L4Proto::UDP => L4Tuple::Ports {
            src: sport,
            dst: dport,
        },
        _ => L4Tuple::Icmp {
            kind: if proto == L4Proto::ICMP { 8 } else { 128 },
            code: 0,
            id: sport,
        },
    };
    let nat = r.is_multiple_of(7);
    let orig = Tuple::new(src, dst, proto, ol4);
    let mut reply = orig.inverse().expect("TCP, UDP and echo tuples invert");
    if nat {
        // A masqueraded flow: the reply comes back to the host's address.
        reply.dst = nat_dst;
    }
    let replied = !r.is_multiple_of(5);
    let mut status = Status::CONFIRMED;
    if replied {
        status |= Status::SEEN_REPLY | Status::ASSURED;
    }
    if nat {
        status |= Status::SRC_NAT | Status::SRC_NAT_DONE;
    }
    let mut f = Flow::new(orig, reply, status);
    if proto == L4Proto::TCP {
        let state = match r % 10 {
            0..=5 => TcpState::ESTABLISHED,
            6 | 7 => TcpState::TIME_WAIT,
            8 => TcpState::SYN_SENT,
            _ => TcpState::CLOSE_WAIT,
        };
        f.protoinfo = Some(ProtoInfo::Tcp(
            TcpInfo::new(state).with_wscale(7, 7).with_flags(
                TcpFlags {
                    flags: 0x23,
                    mask: 0x23,
                },
                TcpFlags {
                    flags: 0x23,
                    mask: 0x23,
                },
            ),
        ));
    }
    f.timeout = Some((r >> 20) as u32 % 432_000);
    f.mark = Some(if r.is_multiple_of(11) { 0x42 } else { 0 });
    if r.is_multiple_of(13) {
        f.zone = Some(7);
    }
    f.id = Some(rng.next() as u32);
    f.use_count = Some(1);
    f.counters_orig = Some(Counters {
        packets: r % 1000,
        bytes: r % 1_000_000,
    });
    f.counters_reply = Some(Counters {
        packets: (r >> 10) % 1000,
        bytes: (r >> 10) % 10_000_000,
    });
    f.timestamp = Some(Timestamp {
        start: 1_795_000_000_000_000_000 + i as u64 * 1000,
        stop: None,
    });
    f
}

/// A dump of `n` flows as the kernel sends it, with `NLMSG_DONE`.
fn dump(n: usize) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::with_capacity(n * 260);
    let ty = message::ct_type(message::IPCTNL_MSG_CT_NEW);
    for i in 0..n {
        let f = make_flow(&mut rng, i);
        let family = if f.orig.src.is_ipv6() { 10 } else { 2 };
        let m = encode::begin_message(&mut buf, ty, message::NLM_F_MULTI, 1, family);
        encode::encode_flow_as_kernel(&f, &mut buf);
        encode::finish_message(&mut buf, m);
    }
    let m = encode::begin_message(&mut buf, message::NLMSG_DONE, message::NLM_F_MULTI, 1, 0);
    buf.extend_from_slice(&0i32.to_ne_bytes());
    encode::finish_message(&mut buf, m);
    buf
}

/// What both decoders compute.
#[derive(Debug, Default, PartialEq, Eq)]
struct Facts {
    per_state: [u64; 20],
    bytes: u64,
    mix: u64,
    flows: u64,
}

fn state_index(tcp: Option<u8>, status: u32) -> usize {
    match tcp {
        Some(s) => usize::from(s.min(15)),
        None if status & Status::SEEN_REPLY.bits() != 0 => 17,
        None => 16,
    }
}

fn addr_byte(a: IpAddr) -> u64 {
    match a {
        IpAddr::V4(a) => u64::from(a.octets()[3]),
        IpAddr::V6(a) => u64::from(a.octets()[15]),
    }
}

fn ours(buf: &[u8]) -> Facts {
    let mut f = Facts::default();
    for v in wire::flows(buf) {
        let Ok(v) = v else { continue };
        let tcp = match v.state() {
            FlowState::Tcp(s) => Some(s.0),
            _ => None,
        };
        f.per_state[state_index(tcp, v.status().bits())] += 1;
        let (o, r) = (
            v.counters_orig().unwrap_or_default(),
            v.counters_reply().unwrap_or_default(),
        );
        f.bytes = f.bytes.wrapping_add(o.bytes).wrapping_add(r.bytes);
        let t = v.orig();
        f.mix ^= u64::from(v.id().unwrap_or(0))
            ^ u64::from(v.mark().unwrap_or(0))
            ^ v.timestamp().map_or(0, |t| t.start)
            ^ u64::from(t.src_port().unwrap_or(0))
            ^ addr_byte(t.src)
            ^ addr_byte(v.reply().dst);
        f.flows += 1;
    }
    f
}

fn nested_u64(nla: &impl Nla, scratch: &mut Vec<u8>, want: u16) -> u64 {
    scratch.clear();
    scratch.resize(nla.value_len(), 0);
    nla.emit_value(scratch);
    for n in NlasIterator::new(&scratch[..]) {
        let Ok(n) = n else { break };
        if n.kind() == want {
            return parse_u64_be(n.value()).unwrap_or(0);
        }
    }
    0
}

fn baseline_tuple(t: &[NpTuple]) -> (IpAddr, IpAddr, u16) {
    let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let (mut src, mut dst, mut sport) = (unspecified, unspecified, 0);
    for part in t {
        match part {
            NpTuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => src = *a,
                        IPTuple::DestinationAddress(a) => dst = *a,
                        _ => {}
                    }
                }
            }
            NpTuple::Proto(ps) => {
                for p in ps {
                    if let ProtoTuple::SourcePort(port) = p {
                        sport = *port;
                    }
                }
            }
            _ => {}
        }
    }
    (src, dst, sport)
}

fn baseline(buf: &[u8]) -> Facts {
    let mut f = Facts::default();
    let mut scratch = Vec::new();
    let mut off = 0;
    while off < buf.len() {
        let Ok(msg) = NetlinkMessage::<NetfilterMessage>::deserialize(&buf[off..]) else {
            break;
        };
        off += (msg.header.length as usize + 3) & !3;
        let NetlinkPayload::InnerMessage(nf) = msg.payload else {
            continue;
        };
        let NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)) = nf.inner else {
            continue;
        };
        let (mut tcp, mut status, mut id, mut mark, mut start, mut bytes) = (None, 0, 0, 0, 0, 0);
        let (mut src, mut sport, mut rdst) = (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0, None);
        for a in &attrs {
            match a {
                ConntrackAttribute::CtaTupleOrig(t) => {
                    let (s, _, p) = baseline_tuple(t);
                    (src, sport) = (s, p);
                }
                ConntrackAttribute::CtaTupleReply(t) => rdst = Some(baseline_tuple(t).1),
                ConntrackAttribute::CtaStatus(s) => status = s.bits(),
                ConntrackAttribute::CtaMark(m) => mark = *m,
                ConntrackAttribute::CtaTimeout(t) => {
                    black_box(t);
                }
                ConntrackAttribute::CtaProtoInfo(ps) => {
                    for p in ps {
                        if let NpProtoInfo::TCP(ts) = p {
                            for t in ts {
                                if let ProtoInfoTCP::State(s) = t {
                                    tcp = Some(*s);
                                }
                            }
                        }
                    }
                }
                // DefaultNla keeps the flag bits in its kind: mask them.
                ConntrackAttribute::Other(nla) => match nla.kind() & NLA_TYPE_MASK {
                    // CTA_COUNTERS_ORIG / _REPLY: CTA_COUNTERS_BYTES.
                    9 | 10 => bytes = nested_u64(nla, &mut scratch, 2).wrapping_add(bytes),
                    // CTA_TIMESTAMP: CTA_TIMESTAMP_START.
                    20 => start = nested_u64(nla, &mut scratch, 1),
                    // CTA_ID, CTA_USE.
                    12 | 11 => {
                        scratch.clear();
                        scratch.resize(nla.value_len(), 0);
                        nla.emit_value(&mut scratch);
                        let v = parse_u32_be(&scratch).unwrap_or(0);
                        if nla.kind() & NLA_TYPE_MASK == 12 {
                            id = v;
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        f.per_state[state_index(tcp, status)] += 1;
        f.bytes = f.bytes.wrapping_add(bytes);
        f.mix ^= u64::from(id)
            ^ u64::from(mark)
            ^ start
            ^ u64::from(sport)
            ^ addr_byte(src)
            ^ rdst.map_or(0, addr_byte);
        f.flows += 1;
    }
    f
}

fn bench(c: &mut Criterion, buf: &[u8]) {
    let mut g = c.benchmark_group(GROUP);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(FLOWS as u64));
    g.bench_function(OURS, |b| b.iter(|| black_box(ours(black_box(buf)))));
    g.bench_function(BASELINE, |b| b.iter(|| black_box(baseline(black_box(buf)))));
    g.finish();
}

/// Criterion's output directory, as criterion computes it.
fn criterion_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CRITERION_HOME") {
        return d.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("criterion")
}

/// Criterion's headline time (the slope of its linear fit, as printed on
/// the `time:` line, or the mean when there is no slope) and the median
/// of one benchmark of this run (estimates written after `since`), in
/// nanoseconds.
fn estimates_ns(name: &str, since: SystemTime) -> Option<(f64, f64)> {
    let path = criterion_dir()
        .join(GROUP)
        .join(name)
        .join("new")
        .join("estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let typical = v["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| v["mean"]["point_estimate"].as_f64())?;
    Some((typical, v["median"]["point_estimate"].as_f64()?))
}

/// CPU time of this thread in nanoseconds (`/proc/thread-self/schedstat`,
/// first field: time on CPU), so that a co-tenant's load does not count.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// The best of `passes` runs of `f` in thread CPU time, in nanoseconds.
fn best_cpu_ns(passes: usize, mut f: impl FnMut() -> Facts) -> Option<f64> {
    let mut best = u64::MAX;
    for _ in 0..passes {
        let t0 = thread_cpu_ns()?;
        black_box(f());
        best = best.min(thread_cpu_ns()? - t0);
    }
    Some(best as f64)
}

fn report(name: &str, what: &str, ns: f64, bytes: usize) {
    println!(
        "{name:>26}: {what} {:>7.1} ms = {:>6.2} M flows/s, {:>6.3} GB/s",
        ns / 1e6,
        FLOWS as f64 / ns * 1e3,
        bytes as f64 / ns
    );
}

fn main() {
    let started = SystemTime::now();
    // `cargo test --all-targets` runs this binary without `--bench`: then
    // it is a smoke test of both decoders on a small buffer.
    if !std::env::args().any(|a| a == "--bench") {
        let buf = dump(SMOKE);
        let (a, b) = (ours(&buf), baseline(&buf));
        assert_eq!(a, b, "the two decoders disagree");
        assert_eq!(a.flows, SMOKE as u64);
        println!("decode: smoke test on {SMOKE} flows passed (run with cargo bench for numbers)");
        return;
    }
    let buf = dump(FLOWS);
    // Both decoders must see the same flows; otherwise the comparison
    // is meaningless.
    let (a, b) = (ours(&buf), baseline(&buf));
    assert_eq!(a, b, "the two decoders disagree");
    assert_eq!(a.flows, FLOWS as u64);
    println!(
        "buffer: {FLOWS} flows, {} bytes ({:.1} bytes/flow)",
        buf.len(),
        buf.len() as f64 / FLOWS as f64
    );

    let mut c = Criterion::default()
        .output_directory(&criterion_dir())
        .configure_from_args();
    bench(&mut c, &buf);
    c.final_summary();

    // Only when both ran in this process (not with a filter).
    if let (Some(o), Some(base)) = (estimates_ns(OURS, started), estimates_ns(BASELINE, started)) {
        println!("wall time (criterion, this run):");
        report(OURS, "median", o.1, buf.len());
        report(BASELINE, "median", base.1, buf.len());
        println!(
            "ratio (baseline time / ours): {:.1}x by median, {:.1}x by criterion's time",
            base.1 / o.1,
            base.0 / o.0
        );
        // The same in CPU time of this thread, best of several passes:
        // the one-core throughput even when the machine is shared.
        if let (Some(o), Some(base)) = (
            best_cpu_ns(5, || ours(&buf)),
            best_cpu_ns(3, || baseline(&buf)),
        ) {
            println!("thread CPU time (best of 5 / 3 passes):");
            report(OURS, "cpu", o, buf.len());
            report(BASELINE, "cpu", base, buf.len());
            println!("ratio (baseline CPU time / ours): {:.1}x", base / o);
        }
    }
}
