//! Hash bucket occupancy: the Poisson model of chain lengths for N entries
//! in B buckets (2N hash nodes, KERNEL.md section 3), the chance that an
//! insert is refused under the kernel era's chain cap, and a keyed-SipHash
//! simulation over real tuples that shows what the model cannot: duplicate
//! and skewed tuples.
//!
//! The kernel's hash key is random per boot and namespace, so user space
//! cannot compute real bucket indices; the simulation uses its own key and
//! gives the same distribution statistically.
//!
//! ```
//! use conntrack_analyze::buckets::{ChainCap, poisson_model};
//! use conntrack_core::KernelVersion;
//! // 6.x defaults at a full table: 2 nodes per bucket on average.
//! let m = poisson_model(262144, 262144, ChainCap::of(KernelVersion::new(6, 18, 0)));
//! assert_eq!(m.lambda, 2.0);
//! assert!((m.p_len[0] - (-2.0f64).exp()).abs() < 1e-12); // e^-2 empty buckets
//! assert!(m.p_insert_refused.unwrap() < 1e-30);         // cap 50..79: never
//! ```

use conntrack_core::{FlowLike, KernelVersion, L3Family, Tuple};
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher24;
use std::hash::Hasher;
use std::net::IpAddr;

/// The kernel's limit on a hash chain at insert time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum ChainCap {
    /// No cap (before 5.15).
    None,
    /// A cap drawn uniformly from `min..=max` for every insert.
    Uniform {
        /// Smallest cap.
        min: u32,
        /// Largest cap.
        max: u32,
    },
}

impl ChainCap {
    /// The cap of a mainline kernel: none before 5.15; 5.15 to 6.2 a
    /// random cap in 8..=31 (d7e7747ac5c2 added the cap, c9c3b6811f74
    /// made it random, both in 5.15); 6.3 and later 50..=79
    /// (c77737b736ce). Stable kernels took these commits at various
    /// releases: a 5.15.y or 6.1.y kernel may have 50..=79 (the stricter
    /// 8..=31 is assumed), and an older one that reports `chaintoolong`
    /// has a cap (see `Facts::chain_cap`).
    pub fn of(v: KernelVersion) -> ChainCap {
        if v.at_least(6, 3) {
            ChainCap::Uniform { min: 50, max: 79 }
        } else if v.at_least(5, 15) {
            ChainCap::Uniform { min: 8, max: 31 }
        } else {
            ChainCap::None
        }
    }
}

/// The Poisson model of chain lengths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChainModel {
    /// Entries.
    pub entries: u64,
    /// Buckets.
    pub buckets: u64,
    /// Mean chain length `2N / B`.
    pub lambda: f64,
    /// `p_len[k]`: probability that a bucket holds `k` nodes, for `k` up to
    /// where the tail is below 1e-12 (at least to the cap + 2).
    pub p_len: Vec<f64>,
    /// Expected number of buckets holding `k` nodes (`B x p_len[k]`).
    pub expected_buckets: Vec<f64>,
    /// Expected longest chain over all buckets.
    pub expected_longest: f64,
    /// The chain cap applied.
    pub cap: ChainCap,
    /// Probability that one new insert is refused for a too-long chain
    /// (either of its two chains); `None` without a cap.
    pub p_insert_refused: Option<f64>,
}

/// Poisson probabilities `P(X = k)` for `k = 0..=kmax`, computed in log
/// space so that large lambdas do not underflow to NaN.
fn poisson_pmf(lambda: f64, kmax: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(kmax + 1);
    if lambda <= 0.0 {
        v.push(1.0);
        v.resize(kmax + 1, 0.0);
        return v;
    }
    let ll = lambda.ln();
    let mut lfact = 0.0f64;
    for k in 0..=kmax {
        if k > 0 {
            lfact += (k as f64).ln();
        }
        v.push((k as f64 * ll - lambda - lfact).exp());
    }
    v
}

/// The model for `entries` conntracks in `buckets` buckets. Zero buckets
/// give an empty, NaN-free model (lambda 0, nothing refused).
///
/// An insert walks both of its chains and is refused when a chain already
/// holds more than `cap + 1` nodes (the kernel compares a post-incremented
/// counter, `chainlen++ > max_chainlen`); the chance is averaged over the
/// cap's uniform range, the two chains taken as independent.
pub fn poisson_model(entries: u64, buckets: u64, cap: ChainCap) -> ChainModel {
    let lambda = if buckets == 0 {
        0.0
    } else {
        2.0 * entries as f64 / buckets as f64
    };
    // Enough terms for the tail to vanish.
    let mut kmax = (lambda + 12.0 * lambda.sqrt() + 20.0).ceil() as usize;
    if let ChainCap::Uniform { max, .. } = cap {
        kmax = kmax.max(max as usize + 3);
    }
    let kmax = kmax.min(1 << 16);
    let p = poisson_pmf(lambda, kmax);
    // sf[k] = P(X >= k), summed from the top so that tiny tails keep
    // their precision (1 - cdf would round them to 0 or 1e-16).
    let mut sf = vec![0.0; p.len() + 1];
    for k in (0..p.len()).rev() {
        sf[k] = (sf[k + 1] + p[k]).min(1.0);
    }
    // E[max] = sum_{k>=1} P(max >= k) = sum_{k>=1} 1 - (1 - sf[k])^B.
    let b = buckets as f64;
    let mut longest = 0.0;
    if buckets > 0 {
        for &tail in sf.iter().skip(1) {
            // 1 - (1 - tail)^B, stable for tiny tails.
            let term = -((-tail).ln_1p() * b).exp_m1();
            if term.is_finite() {
                longest += term;
            }
        }
    }
    // Lambdas beyond the computed range (absurd inputs such as billions of
    // entries in one bucket): the Gaussian approximation of the maximum.
    let beyond = buckets > 0 && sf.first().is_some_and(|&m| m < 0.5);
    if beyond {
        longest = lambda + (2.0 * lambda * b.ln().max(0.0)).sqrt();
    }
    let p_insert_refused = match cap {
        ChainCap::None => None,
        ChainCap::Uniform { min, max } => {
            let (lo, hi) = (min.min(max), min.max(max));
            let n = (hi - lo + 1) as f64;
            let mut s = 0.0;
            for c in lo..=hi {
                // Refused when a chain holds >= c + 2 nodes.
                // Beyond the computed range every chain is far longer.
                let one = if beyond {
                    1.0
                } else {
                    sf.get(c as usize + 2).copied().unwrap_or(0.0)
                };
                s += 1.0 - (1.0 - one) * (1.0 - one);
            }
            Some(if buckets == 0 { 0.0 } else { s / n })
        }
    };
    ChainModel {
        entries,
        buckets,
        lambda,
        expected_buckets: p.iter().map(|x| x * b).collect(),
        p_len: p,
        expected_longest: longest,
        cap,
        p_insert_refused,
    }
}

/// Chain lengths observed by hashing real tuples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct SimulatedChains {
    /// Buckets simulated.
    pub buckets: u64,
    /// Hash nodes placed (2 per flow).
    pub nodes: u64,
    /// `histogram[k]`: buckets holding `k` nodes.
    pub histogram: Vec<u64>,
    /// The longest chain.
    pub longest: u64,
    /// Flows whose original tuple was already seen (same tuple and zone):
    /// they always share a chain.
    pub duplicate_tuples: u64,
    // The defaults below read simulations written before sampling existed
    // (they hashed every flow). Every simulation written has them, so the
    // schema names no default.
    /// Buckets of the table the simulation stands for: `buckets` when
    /// every flow was hashed; under sampling ([`ChainSimulator::sampled`])
    /// the simulated `buckets` are this share of them.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub table_buckets: u64,
    /// Share of the flows hashed, 0..=1 (1: every flow). Under sampling
    /// the flows whose original tuple falls in the sample are hashed into
    /// the same share of the buckets, so the mean chain (2N/B) and the
    /// distribution of chain lengths are the table's; the longest chain is
    /// the longest of the simulated buckets only.
    #[serde(default = "one")]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub flow_share: f64,
}

fn one() -> f64 {
    1.0
}

impl SimulatedChains {
    /// Observed share of buckets holding `k` nodes.
    pub fn share(&self, k: usize) -> f64 {
        if self.buckets == 0 {
            return 0.0;
        }
        self.histogram.get(k).copied().unwrap_or(0) as f64 / self.buckets as f64
    }

    /// Total variation distance between the observed distribution and a
    /// model's (0: identical, 1: disjoint).
    pub fn distance_to(&self, model: &ChainModel) -> f64 {
        let n = self.histogram.len().max(model.p_len.len());
        let mut d = 0.0;
        for k in 0..n {
            let m = model.p_len.get(k).copied().unwrap_or(0.0);
            d += (self.share(k) - m).abs();
        }
        d / 2.0
    }
}

/// The bucket hasher: SipHash-2-4 with a 128-bit key over the tuple fields
/// the kernel hashes since 5.15 (source address and port, l3 family,
/// destination address, zone, destination port, protocol), truncated to 32
/// bits and scaled to the bucket count with `(hash * B) >> 32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketHasher {
    k0: u64,
    k1: u64,
    buckets: u64,
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl BucketHasher {
    /// A hasher for `buckets` buckets keyed from `seed` (fixed seeds give
    /// reproducible simulations; pass a random one to mimic a boot).
    pub fn new(buckets: u64, seed: u64) -> Self {
        let mut s = seed;
        BucketHasher {
            k0: splitmix(&mut s),
            k1: splitmix(&mut s),
            buckets,
        }
    }

    /// The bucket of one direction's tuple; `None` with 0 buckets.
    pub fn bucket(&self, t: &Tuple, zone: u16) -> Option<u64> {
        if self.buckets == 0 {
            return None;
        }
        // The fields' bytes in one buffer and one `write`: SipHash hashes
        // the byte stream, so this equals a `write` per field (proptest
        // `bucket_hash_is_the_field_by_field_siphash`) without each small
        // write going through the hasher's tail buffer.
        let mut buf = [0u8; 2 * 16 + 8];
        let mut n = 0;
        let mut put = |b: &[u8]| {
            buf[n..n + b.len()].copy_from_slice(b);
            n += b.len();
        };
        let fam = match t.src {
            IpAddr::V4(a) => {
                put(&a.octets());
                L3Family::INET.0
            }
            IpAddr::V6(a) => {
                put(&a.octets());
                L3Family::INET6.0
            }
        };
        put(&t.src_endpoint().port.to_ne_bytes());
        put(&[fam]);
        match t.dst {
            IpAddr::V4(a) => put(&a.octets()),
            IpAddr::V6(a) => put(&a.octets()),
        }
        put(&zone.to_ne_bytes());
        put(&t.dst_endpoint().port.to_ne_bytes());
        put(&[t.proto.0]);
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        h.write(&buf[..n]);
        let h32 = h.finish() as u32 as u64;
        Some((h32 * self.buckets) >> 32)
    }
}

/// Hashes both tuples of every flow into `buckets` buckets with a keyed
/// SipHash and reports the chain lengths. Memory: one u16 per bucket
/// (`buckets` is capped at 2^26, 128 MiB; the cap shows in
/// [`SimulatedChains::buckets`]) plus one tuple per flow for duplicate
/// detection. A chain's length saturates at 65,535 nodes, over 800 times
/// the largest cap the kernel puts on a chain at insert time (79, see
/// [`ChainCap`]).
///
/// ```
/// use conntrack_analyze::buckets::simulate;
/// use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
/// let ip = |s: &str| s.parse().unwrap();
/// let f = Flow::new(
///     Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::TCP, L4Tuple::Ports { src: 1, dst: 2 }),
///     Tuple::new(ip("10.0.0.2"), ip("10.0.0.1"), L4Proto::TCP, L4Tuple::Ports { src: 2, dst: 1 }),
///     Status::CONFIRMED);
/// let s = simulate([&f, &f], 1024, 7);
/// assert_eq!(s.nodes, 4);
/// assert_eq!(s.duplicate_tuples, 1);
/// assert!(s.longest >= 2); // the duplicate shares its chain
/// ```
pub fn simulate<'a, F, I>(flows: I, buckets: u64, seed: u64) -> SimulatedChains
where
    F: FlowLike + 'a,
    I: IntoIterator<Item = &'a F>,
{
    let mut sim = ChainSimulator::new(buckets, seed);
    for f in flows {
        sim.add(f);
    }
    sim.finish()
}

/// The buckets a simulation of a big table keeps (2 bytes each, 128 KiB):
/// a table with more is simulated on a proportional sample of its flows
/// ([`ChainSimulator::sampled`]), which doctor uses live and on captures.
pub const SAMPLED_BUCKETS: u64 = 1 << 16;

/// The simulation fed one flow at a time (a streaming dump or a listing
/// read line by line); [`simulate`] over an iterator.
#[derive(Debug, Clone)]
pub struct ChainSimulator {
    hasher: BucketHasher,
    /// Nodes per simulated bucket, saturating (see [`simulate`]): two
    /// bytes a bucket keep a live dump's sampled simulation at 128 KiB,
    /// whose random increments miss the core's caches once the kernel's
    /// work between datagrams has evicted it (half the lines of `u32`).
    chains: Vec<u16>,
    nodes: u64,
    seen: Option<rustc_hash::FxHashSet<(Tuple, u16)>>,
    dups: u64,
    table_buckets: u64,
    /// A flow is hashed when its sample hash is below this (`None`: all).
    sample_below: Option<u64>,
    sample_key: u64,
}

/// A cheap 64-bit hash of a tuple and zone that picks the flows of a
/// sample (independent of the keyed bucket hash, fast enough for every
/// flow of a dump).
fn sample_hash(t: &Tuple, zone: u16, key: u64) -> u64 {
    let addr = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let mut x = key;
    let mut mix = |v: u64| {
        x = (x ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 29;
    };
    let (s, d) = (addr(t.src), addr(t.dst));
    mix(s as u64);
    mix((s >> 64) as u64);
    mix(d as u64);
    mix((d >> 64) as u64);
    mix(u64::from(t.src_endpoint().port)
        | u64::from(t.dst_endpoint().port) << 16
        | u64::from(t.proto.0) << 32
        | u64::from(zone) << 40);
    let mut s = x;
    splitmix(&mut s)
}

impl ChainSimulator {
    /// A simulator for `buckets` buckets (at most 2^26) keyed from `seed`.
    pub fn new(buckets: u64, seed: u64) -> Self {
        let buckets = buckets.min(1 << 26);
        ChainSimulator {
            hasher: BucketHasher::new(buckets, seed),
            chains: vec![0u16; buckets as usize],
            nodes: 0,
            seen: Some(Default::default()),
            dups: 0,
            table_buckets: buckets,
            sample_below: None,
            sample_key: 0,
        }
    }

    /// A simulator that keeps at most `max_buckets` counters (4 bytes
    /// each) whatever the table's `buckets`: for a larger table it
    /// simulates `max_buckets` of them with the same share of the flows,
    /// chosen by a hash of the original tuple and zone (so copies of one
    /// tuple are chosen together and still pile up in one chain). Each
    /// simulated bucket then receives what a bucket of the table does, so
    /// the distribution of chain lengths is the table's, at a fraction of
    /// the memory and of the keyed hashing. Only the longest chain is of
    /// the simulated buckets, not of the whole table.
    ///
    /// ```
    /// use conntrack_analyze::buckets::ChainSimulator;
    /// use conntrack_core::testkit::{flow, tcp};
    /// let mut sim = ChainSimulator::sampled(1 << 20, 7, 1 << 16);
    /// for p in 0..40_000 {
    ///     sim.add(&flow(tcp("10.0.0.1", p as u16, "10.0.0.2", 443)));
    /// }
    /// let s = sim.finish();
    /// assert_eq!((s.buckets, s.table_buckets, s.flow_share), (1 << 16, 1 << 20, 1.0 / 16.0));
    /// // About one flow in 16 was hashed (two nodes each).
    /// assert!((4_000..6_000).contains(&s.nodes), "{}", s.nodes);
    /// ```
    pub fn sampled(buckets: u64, seed: u64, max_buckets: u64) -> Self {
        let max_buckets = max_buckets.clamp(1, 1 << 26);
        if buckets <= max_buckets {
            return Self::new(buckets, seed);
        }
        let mut sim = Self::new(max_buckets, seed);
        sim.table_buckets = buckets;
        // The share max_buckets / buckets of the 64-bit hash space.
        let below = (u128::from(max_buckets) << 64) / u128::from(buckets);
        sim.sample_below = Some(below.min(u128::from(u64::MAX)) as u64);
        let mut s = seed ^ 0x5a5a_5a5a_5a5a_5a5a;
        sim.sample_key = splitmix(&mut s);
        sim
    }

    /// Does not look for duplicate tuples (a live kernel table holds none;
    /// the set of tuples seen would grow with the table).
    pub fn without_duplicates(mut self) -> Self {
        self.seen = None;
        self
    }

    /// Places one flow's two hash nodes (when the flow is in the sample).
    #[inline]
    pub fn add<F: FlowLike + ?Sized>(&mut self, f: &F) {
        let zone = f.zone().unwrap_or(0);
        let o = f.orig();
        if let Some(below) = self.sample_below
            && sample_hash(&o, zone, self.sample_key) >= below
        {
            return;
        }
        let r = f.reply();
        if let (Some(a), Some(b)) = (self.hasher.bucket(&o, zone), self.hasher.bucket(&r, zone)) {
            self.chains[a as usize] = self.chains[a as usize].saturating_add(1);
            self.chains[b as usize] = self.chains[b as usize].saturating_add(1);
            self.nodes += 2;
            if let Some(seen) = self.seen.as_mut()
                && !seen.insert((o, zone))
            {
                self.dups += 1;
            }
        }
    }

    /// The chain-length distribution of the flows added.
    pub fn finish(self) -> SimulatedChains {
        let buckets = self.chains.len() as u64;
        let longest = self.chains.iter().copied().max().unwrap_or(0) as u64;
        let mut histogram = vec![0u64; longest as usize + 1];
        for &c in &self.chains {
            histogram[c as usize] += 1;
        }
        if buckets == 0 {
            histogram.clear();
        }
        SimulatedChains {
            buckets,
            nodes: self.nodes,
            histogram,
            longest,
            duplicate_tuples: self.dups,
            table_buckets: self.table_buckets,
            flow_share: if self.table_buckets == 0 {
                1.0
            } else {
                buckets as f64 / self.table_buckets as f64
            },
        }
    }
}

/// One chain length: buckets the model expects and buckets observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChainRow {
    /// Nodes in a bucket.
    pub len: usize,
    /// Buckets the Poisson model expects with this many nodes.
    pub expected: f64,
    /// Buckets the simulation observed.
    pub observed: u64,
}

/// The model next to the simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChainComparison {
    /// The model.
    pub model: ChainModel,
    /// The simulation.
    pub simulated: SimulatedChains,
    /// Per chain length, up to the longer of the observed longest chain and
    /// the last length the model expects at least 0.01 buckets of.
    pub rows: Vec<ChainRow>,
    /// Total variation distance between the two distributions.
    pub distance: f64,
}

/// Puts a model and a simulation side by side. Duplicate or skewed tuples
/// show up as observed long chains the model does not expect.
///
/// ```
/// use conntrack_analyze::buckets::{compare_chains, poisson_model, simulate, ChainCap};
/// use conntrack_core::Flow;
/// let flows: Vec<Flow> = Vec::new();
/// let c = compare_chains(&poisson_model(0, 4, ChainCap::None), &simulate(flows.iter(), 4, 1));
/// assert_eq!(c.rows[0].expected, 4.0);
/// assert_eq!(c.rows[0].observed, 4);
/// assert_eq!(c.distance, 0.0);
/// ```
pub fn compare_chains(model: &ChainModel, simulated: &SimulatedChains) -> ChainComparison {
    let last_model = model
        .expected_buckets
        .iter()
        .rposition(|&e| e >= 0.01)
        .unwrap_or(0);
    let n = last_model.max(simulated.longest as usize) + 1;
    let rows = (0..n)
        .map(|k| ChainRow {
            len: k,
            expected: model.expected_buckets.get(k).copied().unwrap_or(0.0),
            observed: simulated.histogram.get(k).copied().unwrap_or(0),
        })
        .collect();
    ChainComparison {
        model: model.clone(),
        simulated: simulated.clone(),
        rows,
        distance: simulated.distance_to(model),
    }
}

impl std::fmt::Display for ChainComparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} entries, {} buckets, 2N/B = {:.2}; expected longest chain {:.1}, observed {}",
            self.model.entries,
            self.model.buckets,
            self.model.lambda,
            self.model.expected_longest,
            self.simulated.longest
        )?;
        if let Some(p) = self.model.p_insert_refused {
            writeln!(f, "modelled probability an insert is refused: {p:.3e}")?;
        }
        if self.simulated.duplicate_tuples > 0 {
            writeln!(f, "duplicate tuples: {}", self.simulated.duplicate_tuples)?;
        }
        writeln!(f, "{:>6} {:>14} {:>12}", "chain", "model", "observed")?;
        for r in &self.rows {
            writeln!(f, "{:>6} {:>14.1} {:>12}", r.len, r.expected, r.observed)?;
        }
        write!(f, "distance (total variation): {:.4}", self.distance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_core::{Flow, L4Proto, L4Tuple, Status};
    use std::net::Ipv4Addr;

    proptest::proptest! {
        /// The one-buffer hash equals SipHash written field by field
        /// (what the scenario goldens were made with).
        #[test]
        fn bucket_hash_is_the_field_by_field_siphash(
            v6 in proptest::bool::ANY,
            src in proptest::num::u128::ANY,
            dst in proptest::num::u128::ANY,
            sport in proptest::num::u16::ANY,
            dport in proptest::num::u16::ANY,
            proto in proptest::num::u8::ANY,
            zone in proptest::num::u16::ANY,
            seed in proptest::num::u64::ANY,
        ) {
            let addr = |a: u128| if v6 {
                IpAddr::V6(std::net::Ipv6Addr::from(a))
            } else {
                IpAddr::V4(Ipv4Addr::from(a as u32))
            };
            let t = Tuple::new(
                addr(src),
                addr(dst),
                L4Proto(proto),
                L4Tuple::Ports { src: sport, dst: dport },
            );
            let hasher = BucketHasher::new(1 << 20, seed);
            let mut h = SipHasher24::new_with_keys(hasher.k0, hasher.k1);
            match t.src {
                IpAddr::V4(a) => h.write(&a.octets()),
                IpAddr::V6(a) => h.write(&a.octets()),
            }
            h.write_u16(t.src_endpoint().port);
            h.write_u8(if v6 { L3Family::INET6.0 } else { L3Family::INET.0 });
            match t.dst {
                IpAddr::V4(a) => h.write(&a.octets()),
                IpAddr::V6(a) => h.write(&a.octets()),
            }
            h.write_u16(zone);
            h.write_u16(t.dst_endpoint().port);
            h.write_u8(t.proto.0);
            let want = ((h.finish() as u32 as u64) << 20) >> 32;
            proptest::prop_assert_eq!(hasher.bucket(&t, zone), Some(want));
        }
    }

    #[test]
    fn pmf_hand_values() {
        let p = poisson_pmf(2.0, 4);
        let e2 = (-2.0f64).exp();
        let want = [e2, 2.0 * e2, 2.0 * e2, 4.0 / 3.0 * e2, 2.0 / 3.0 * e2];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        // Huge lambda: no NaN, sums near 1 over the computed range.
        let m = poisson_model(u32::MAX as u64 * 1000, 1, ChainCap::None);
        assert!(m.p_len.iter().all(|x| x.is_finite()));
        // One bucket: the longest chain is the chain, 2N.
        assert_eq!(m.expected_longest, m.lambda);
        let m = poisson_model(u64::MAX, 3, ChainCap::Uniform { min: 50, max: 79 });
        assert!(m.expected_longest.is_finite() && m.expected_longest > m.lambda);
        assert_eq!(m.p_insert_refused, Some(1.0)); // every chain is over the cap
    }

    #[test]
    fn expected_longest_hand_values() {
        // One bucket: the longest chain is the chain, E = lambda.
        let m = poisson_model(1, 1, ChainCap::None);
        assert!(
            (m.expected_longest - 2.0).abs() < 1e-9,
            "{}",
            m.expected_longest
        );
        // Two buckets, lambda = 1: E[max(X, Y)] = sum_k 1 - F(k-1)^2.
        let m = poisson_model(1, 2, ChainCap::None);
        let e = (-1.0f64).exp();
        let mut f = 0.0;
        let mut p = e;
        let mut want = 0.0;
        for k in 0..60 {
            f += p;
            want += 1.0 - f * f;
            p *= 1.0 / (k as f64 + 1.0);
        }
        assert!((m.expected_longest - want).abs() < 1e-9);
    }

    #[test]
    fn refusal_probability_hand_value() {
        // A fixed cap of 0 (min = max = 0): refused when a chain has >= 2
        // nodes. lambda = 1: one chain P(X >= 2) = 1 - 2/e.
        let m = poisson_model(1, 2, ChainCap::Uniform { min: 0, max: 0 });
        let q = 1.0 - 2.0 * (-1.0f64).exp();
        let want = 1.0 - (1.0 - q) * (1.0 - q);
        assert!((m.p_insert_refused.unwrap() - want).abs() < 1e-12);
        // Eras.
        assert_eq!(ChainCap::of(KernelVersion::new(5, 10, 0)), ChainCap::None);
        assert_eq!(
            ChainCap::of(KernelVersion::new(5, 15, 0)),
            ChainCap::Uniform { min: 8, max: 31 }
        );
        assert_eq!(
            ChainCap::of(KernelVersion::new(6, 3, 0)),
            ChainCap::Uniform { min: 50, max: 79 }
        );
        // lambda 16 (explicit hashsize, full) under the 5.15 cap: refusals are real.
        let m = poisson_model(8, 1, ChainCap::of(KernelVersion::new(5, 15, 0)));
        assert!(m.p_insert_refused.unwrap() > 0.01);
    }

    #[test]
    fn zero_buckets_is_defined() {
        let m = poisson_model(1000, 0, ChainCap::Uniform { min: 8, max: 31 });
        assert_eq!(m.lambda, 0.0);
        assert_eq!(m.expected_longest, 0.0);
        assert_eq!(m.p_insert_refused, Some(0.0));
        let f: Vec<Flow> = Vec::new();
        let s = simulate(f.iter(), 0, 1);
        assert_eq!((s.nodes, s.longest, s.share(0)), (0, 0, 0.0));
    }

    fn synth(n: u32) -> Vec<Flow> {
        (0..n)
            .map(|i| {
                let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i >> 8)));
                let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
                let sp = 1024 + (i & 0xff) as u16 * 200;
                Flow::new(
                    Tuple::new(a, b, L4Proto::TCP, L4Tuple::Ports { src: sp, dst: 443 }),
                    Tuple::new(b, a, L4Proto::TCP, L4Tuple::Ports { src: 443, dst: sp }),
                    Status::CONFIRMED,
                )
            })
            .collect()
    }

    /// The keyed-hash simulation over distinct tuples matches the Poisson
    /// model: total variation distance under 0.01 with 200k nodes in 65536
    /// buckets (fixed seed; the sampling noise is ~0.003).
    #[test]
    fn model_matches_simulation() {
        let flows = synth(100_000);
        let b = 65536;
        let s = simulate(flows.iter(), b, 42);
        let m = poisson_model(flows.len() as u64, b, ChainCap::None);
        assert_eq!(s.nodes, 200_000);
        assert_eq!(s.duplicate_tuples, 0);
        let d = s.distance_to(&m);
        assert!(d < 0.01, "distance {d}");
        // Longest chain close to its expectation.
        assert!((s.longest as f64 - m.expected_longest).abs() <= 3.0);
        let c = compare_chains(&m, &s);
        assert_eq!(c.rows.iter().map(|r| r.observed).sum::<u64>(), b);
        assert!((c.rows.iter().map(|r| r.expected).sum::<f64>() - b as f64).abs() < 1.0);
        assert!(c.to_string().contains("distance"));
    }

    /// Duplicated tuples pile up in a few chains: the simulation shows what
    /// the model cannot.
    #[test]
    fn duplicates_show_in_simulation() {
        let mut flows = synth(10_000);
        let one = flows[0].clone();
        flows.extend(std::iter::repeat_n(one, 200));
        let s = simulate(flows.iter(), 65536, 42);
        assert_eq!(s.duplicate_tuples, 200);
        assert!(s.longest >= 201);
    }

    /// Chains saturate at 65,535 nodes instead of wrapping; the node
    /// count stays exact.
    #[test]
    fn chains_saturate() {
        let flows = synth(40_000);
        let s = simulate(flows.iter(), 1, 42);
        assert_eq!(
            (s.nodes, s.longest, s.histogram.len()),
            (80_000, 65_535, 65_536)
        );
        assert_eq!(s.histogram[65_535], 1);
    }

    /// A sampled simulation of a large table gives the distribution of
    /// chain lengths the full one does (total variation under 0.02 on
    /// 300k flows, 2^19 buckets, sampled to 2^15), the mean chain 2N/B,
    /// and hashes about one flow in 16.
    #[test]
    fn sampled_simulation_has_the_full_distribution() {
        let flows = synth(300_000);
        let full = simulate(flows.iter(), 1 << 19, 9);
        let mut sim = ChainSimulator::sampled(1 << 19, 9, 1 << 15);
        for f in &flows {
            sim.add(f);
        }
        let part = sim.finish();
        assert_eq!((part.buckets, part.table_buckets), (1 << 15, 1 << 19));
        assert!((part.flow_share - 1.0 / 16.0).abs() < 1e-12);
        let hashed = part.nodes as f64 / 2.0;
        assert!(
            (hashed - 300_000.0 / 16.0).abs() < 300_000.0 / 16.0 * 0.05,
            "{hashed}"
        );
        let mean = |c: &SimulatedChains| c.nodes as f64 / c.buckets as f64;
        assert!(
            (mean(&part) - mean(&full)).abs() < 0.05 * mean(&full),
            "{} {}",
            mean(&part),
            mean(&full)
        );
        let frac = |c: &SimulatedChains, k: usize| {
            c.histogram.get(k).copied().unwrap_or(0) as f64 / c.buckets as f64
        };
        let tv: f64 = (0..full.histogram.len().max(part.histogram.len()))
            .map(|k| (frac(&full, k) - frac(&part, k)).abs())
            .sum::<f64>()
            / 2.0;
        assert!(tv < 0.02, "total variation {tv}");
        // Not larger than the table: every flow hashed, as before.
        let s = ChainSimulator::sampled(1 << 10, 9, 1 << 15).finish();
        assert_eq!(
            (s.buckets, s.table_buckets, s.flow_share),
            (1 << 10, 1 << 10, 1.0)
        );
    }
}
