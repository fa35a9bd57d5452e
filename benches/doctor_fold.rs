//! doctor's per-flow user-space work on the `doctor_live` table, without
//! the kernel: the part of doctor's CPU time above the receive-only floor
//! that this crate's code controls, measured with less noise than the
//! live bench (no kernel dump, no other process's cache traffic between
//! datagrams).
//!
//! The table is the one `benches/doctor_live.rs` fills
//! (`conntrack_netlink::fill::synthetic_flow`, the default mix
//! `tcp=60,udp=30,icmp=10`, every flow from its own source), shuffled as a
//! hash-ordered kernel dump is, encoded in the kernel's layout
//! (`wire::encode::encode_flow_as_kernel`) in datagrams of at most 32 KiB
//! (what one `recvmsg` of a dump returns), ended by `NLMSG_DONE`. Each pass
//! is the dump doctor's collection runs (`Conntrack::fold` of a
//! table request, as `conntrack_kit::live` calls it) over a transport that
//! replays these datagrams: each is copied into one receive buffer, as
//! `recv` leaves it, and read by the library's own dump loop (sequence
//! checks, message walk, `FlowView` decode). Then, in CPU time of the
//! bench thread (best of 5 passes):
//!
//! - `decode` (baseline): every flow decoded, nothing counted;
//! - `+ hotspots`: and counted into `Hotspots` with
//!   `HotspotConfig::bounded()` (what doctor counts);
//! - `+ chains`: and into the sampled bucket simulation
//!   (`ChainSimulator::sampled` over 262,144 buckets, doctor's sample size);
//! - `+ owners`: and into `OwnerCounter` over the bench namespace's empty
//!   socket table and loopback addresses;
//! - `doctor fold`: all three, as doctor's dump fold does.
//!
//! ```text
//! cargo bench --bench doctor_fold                      # 1,000,000 flows
//! CONNTRACK_KIT_BENCH_FLOWS=3000000 cargo bench --bench doctor_fold
//! ```
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs the
//! passes once on 2,000 flows and checks what they counted.

mod support;

use conntrack_kit::analyze::attribution::{LocalAddrs, OwnerCounter, SocketTable};
use conntrack_kit::analyze::buckets::{ChainSimulator, SAMPLED_BUCKETS};
use conntrack_kit::analyze::capture::SIMULATION_SEED;
use conntrack_kit::analyze::hotspots::{HotspotConfig, Hotspots};
use conntrack_kit::ct_core::L3Family;
use conntrack_kit::ct_core::Status;
use conntrack_kit::netlink::fill::{Mix, synthetic_flow};
use conntrack_kit::netlink::wire::{FlowView, encode, message};
use conntrack_kit::netlink::{Conntrack, DumpRequest, Op, Transport};
use std::hint::black_box;
use std::time::Duration;

/// The bench namespace's bucket count (`nf_conntrack_buckets` of the VM).
const BUCKETS: u64 = 262_144;
/// The most a dump datagram holds.
const DATAGRAM: usize = 32 << 10;

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    let (user, system) = support::cpu(nix::sys::resource::UsageWho::RUSAGE_THREAD);
    user + system
}

/// The table as dump datagrams, flows in a shuffled order.
fn datagrams(n: u64) -> Vec<Vec<u8>> {
    let mix = Mix::default();
    let mut order: Vec<u64> = (0..n).collect();
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..order.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        order.swap(i, (s % (i as u64 + 1)) as usize);
    }
    let mut out = Vec::new();
    let mut buf = Vec::with_capacity(DATAGRAM);
    for (id, &i) in order.iter().enumerate() {
        if buf.len() + 512 > DATAGRAM {
            out.push(std::mem::replace(&mut buf, Vec::with_capacity(DATAGRAM)));
        }
        let mut f = synthetic_flow(mix.kind_of(i), i, 86_400);
        // What the kernel adds to a created flow.
        f.id = Some(id as u32);
        f.use_count = Some(1);
        f.status |= Status::CONFIRMED;
        let family = if f.orig.src.is_ipv4() { 2 } else { 10 };
        let m = encode::begin_message(
            &mut buf,
            message::ct_type(message::IPCTNL_MSG_CT_NEW),
            message::NLM_F_MULTI,
            1,
            family,
        );
        encode::encode_flow_as_kernel(&f, &mut buf);
        encode::finish_message(&mut buf, m);
    }
    // The end of the dump.
    let m = encode::begin_nlmsg(&mut buf, message::NLMSG_DONE, message::NLM_F_MULTI, SEQ);
    buf.extend_from_slice(&0i32.to_ne_bytes());
    encode::finish_message(&mut buf, m);
    out.push(buf);
    out
}

/// The dump's sequence number: the replay's only one.
const SEQ: u32 = 1;

/// A transport that answers any request with the datagrams, in order,
/// each copied into one receive buffer.
struct Replay<'a> {
    dgrams: &'a [Vec<u8>],
    next: usize,
    recv: Vec<u8>,
}

impl Transport for Replay<'_> {
    fn send(&mut self, _request: &[u8]) -> conntrack_kit::netlink::Result<()> {
        self.next = 0;
        Ok(())
    }

    fn recv(&mut self, op: Op) -> conntrack_kit::netlink::Result<&[u8]> {
        let d = self
            .dgrams
            .get(self.next)
            .ok_or(conntrack_kit::netlink::Error::Timeout { op })?;
        self.next += 1;
        let buf = &mut self.recv[..d.len()];
        buf.copy_from_slice(d);
        Ok(black_box(buf))
    }

    fn next_seq(&mut self) -> u32 {
        SEQ
    }
}

/// Every flow of the datagrams, through the library's dump as doctor
/// runs it.
fn each_flow(dgrams: &[Vec<u8>], mut f: impl FnMut(&FlowView<'_>)) -> u64 {
    let mut ct = Conntrack::from_transport(Replay {
        dgrams,
        next: 0,
        recv: vec![0; DATAGRAM],
    });
    let ((), summary) = ct
        .fold(&DumpRequest::table(L3Family::UNSPEC), || (), |(), v| f(v))
        .expect("the replayed dump");
    summary.flows
}

/// What one pass counted, to check the passes did the work.
#[derive(Debug, Default, PartialEq)]
struct Counted {
    flows: u64,
    hotspots: Option<u64>,
    chains: Option<u64>,
    owners: Option<u64>,
}

fn pass(dgrams: &[Vec<u8>], hot: bool, chains: bool, owners: bool) -> Counted {
    let sockets = SocketTable::default();
    let local = LocalAddrs::new([]);
    let mut h = hot.then(|| Hotspots::new(HotspotConfig::bounded()));
    let mut c = chains.then(|| {
        ChainSimulator::sampled(BUCKETS, SIMULATION_SEED, SAMPLED_BUCKETS).without_duplicates()
    });
    let mut o = owners.then(|| OwnerCounter::new(&sockets, Some(&local)));
    let flows = each_flow(dgrams, |v| {
        if let Some(h) = &mut h {
            h.add(v);
        }
        if let Some(c) = &mut c {
            c.add(v);
        }
        if let Some(o) = &mut o {
            o.add(v);
        }
        black_box(v);
    });
    Counted {
        flows,
        hotspots: h.map(|h| black_box(h.summary()).flows),
        chains: c.map(|c| black_box(c.finish()).nodes),
        owners: o.map(|o| black_box(o.summary(10)).flows),
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = support::bench_flows(bench, 2_000);
    let dgrams = datagrams(n);
    let variants: [(&str, bool, bool, bool); 5] = [
        ("decode (baseline)", false, false, false),
        ("+ hotspots", true, false, false),
        ("+ chains", false, true, false),
        ("+ owners", false, false, true),
        ("doctor fold (all three)", true, true, true),
    ];
    if !bench {
        for &(what, h, c, o) in &variants {
            let got = pass(&dgrams, h, c, o);
            assert_eq!(got.flows, n, "{what}");
            assert_eq!(got.hotspots, h.then_some(n), "{what}");
            assert_eq!(got.owners, o.then_some(n), "{what}");
            // A sampled share of the flows, two nodes each.
            let nodes = got.chains.unwrap_or(0);
            assert_eq!(got.chains.is_some(), c, "{what}");
            assert!(
                !c || (nodes > 0 && nodes < 2 * n && nodes.is_multiple_of(2)),
                "{what}: {nodes}"
            );
        }
        println!("doctor_fold: smoke test on {n} flows passed (cargo bench for numbers)");
        return;
    }
    let mut rows = vec![
        format!("| {n} flows, best of 5 passes | CPU | per flow | / decode |"),
        "|---|---|---|---|".to_string(),
    ];
    let mut base = None;
    for &(what, h, c, o) in &variants {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let t = thread_cpu();
            black_box(pass(&dgrams, h, c, o));
            best = best.min(thread_cpu() - t);
        }
        let base = *base.get_or_insert(best);
        rows.push(format!(
            "| {what} | {:.3} s | {:.0} ns | {:.2} |",
            best.as_secs_f64(),
            best.as_secs_f64() * 1e9 / n as f64,
            best.as_secs_f64() / base.as_secs_f64()
        ));
    }
    println!("{}", rows.join("\n"));
}
