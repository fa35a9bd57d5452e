//! Counting one key kind, exactly or with a bounded top-K, and turning the
//! counts into a [`KeyTable`].

use super::aggregate::CountMode;
use super::key::{Key, KeyKind};
use super::summary::{KeyCount, KeyTable, Ranking, share};
use crate::topk::{Occurrence, SpaceSaving};
use rustc_hash::FxHashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

/// An exactly counted key table: keys with a zero count dropped (counts
/// kept incrementally can return to zero), sorted by count then key, the
/// first `n` with their share of `flows`.
pub(super) fn exact_table(kind: KeyKind, mut v: Vec<(Key, u64)>, n: usize, flows: u64) -> KeyTable {
    v.retain(|x| x.1 > 0);
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    // Keys left out with the count of the last row kept.
    let tied_left_out = match (n.checked_sub(1).and_then(|i| v.get(i)), v.get(n..)) {
        (Some(last), Some(rest)) => rest.iter().take_while(|x| x.1 == last.1).count() as u64,
        _ => 0,
    };
    KeyTable {
        kind,
        counted: v.iter().map(|x| x.1).sum(),
        distinct: Some(v.len() as u64),
        exact: true,
        error_bound: 0,
        others_at_most: v.get(n).map_or(0, |x| x.1),
        ranking: Ranking::Exact,
        tied_left_out,
        top: v
            .into_iter()
            .take(n)
            .map(|(key, count)| KeyCount {
                key,
                count,
                error: 0,
                share: share(count, flows),
            })
            .collect(),
    }
}

/// The certified part of a bounded count: of `rows` (every tracked key as
/// `(estimate, error)`, largest estimate first), the longest prefix of at
/// most `n` rows whose smallest lower bound (`estimate - error`) is at
/// least the largest upper bound left out: the next row's estimate, and
/// `untracked`, the most flows a key no longer tracked can have. Returns
/// the prefix length, that largest upper bound, and whether the order
/// within the prefix is proven too (each row's lower bound at least the
/// next row's estimate).
///
/// With exact counts (`error` 0, `untracked` 0) every prefix qualifies.
pub(super) fn certify(rows: &[(u64, u64)], n: usize, untracked: u64) -> (usize, u64, Ranking) {
    let upper_after = |r: usize| rows.get(r).map_or(0, |x| x.0).max(untracked);
    let mut best = 0;
    let mut min_lower = u64::MAX;
    for (r, &(est, err)) in rows.iter().take(n).enumerate() {
        min_lower = min_lower.min(est - err.min(est));
        if min_lower >= upper_after(r + 1) {
            best = r + 1;
        }
    }
    let ordered = rows
        .windows(2)
        .take(best.saturating_sub(1))
        .all(|w| w[0].0 - w[0].1.min(w[0].0) >= w[1].0);
    let ranking = if untracked == 0 && rows.iter().all(|x| x.1 == 0) {
        Ranking::Exact
    } else if ordered {
        Ranking::Certified
    } else {
        Ranking::CertifiedSet
    };
    (best, upper_after(best), ranking)
}

/// The doorkeeper of a top-`k` count (`2^door_bits(k)` bits): 256 bits a
/// key, so that the 4,096 keys of [`super::BOUNDED_KEYS`] get 128 KiB (2^20
/// bits). The bit set is read once per flow for every high-cardinality
/// kind, so it has to stay in a core's cache with the others: a 1 MiB set
/// a kind (94 % of a flat million-key stream kept out) cost more in cache
/// misses than the evictions it saved (see BENCHMARKS.md). 128 KiB keeps
/// about 63 % of a flat million-key stream's first occurrences out of the
/// summary. At most 2^26 bits (8 MiB).
fn door_bits(k: usize) -> u32 {
    (k.max(1).next_power_of_two().trailing_zeros() + 8).min(26)
}

/// Counts of one key kind, exact or bounded.
#[derive(Debug, Clone)]
pub(super) enum Tally<K> {
    Exact(FxHashMap<K, u64>),
    Bounded(SpaceSaving<K>),
}

impl<K: Hash + Eq + Clone> Tally<K> {
    pub(super) fn new(mode: CountMode) -> Self {
        match mode {
            CountMode::Exact => Tally::Exact(FxHashMap::default()),
            CountMode::TopK(k) => Tally::Bounded(SpaceSaving::with_doorkeeper(k, door_bits(k))),
        }
    }

    #[inline]
    pub(super) fn add(&mut self, k: K) {
        self.add_known(k, Occurrence::Unknown);
    }

    /// Counts `k`, knowing whether it is its first occurrence, and says
    /// whether it is: see [`SpaceSaving::add_known`]. A kind whose keys
    /// contain another kind's key (the source and destination pair
    /// contains the source) passes on what the other kind's count proved.
    #[inline]
    pub(super) fn add_known(&mut self, k: K, first: Occurrence) -> Occurrence {
        match self {
            Tally::Exact(m) => match m.entry(k) {
                Entry::Occupied(mut e) => {
                    *e.get_mut() += 1;
                    Occurrence::Unknown
                }
                Entry::Vacant(e) => {
                    e.insert(1);
                    Occurrence::First
                }
            },
            Tally::Bounded(s) => s.add_known(k, first),
        }
    }

    pub(super) fn memory_bytes(&self) -> usize {
        match self {
            Tally::Exact(m) => m.capacity() * (std::mem::size_of::<K>() + 8 + 1),
            Tally::Bounded(s) => s.memory_bytes(),
        }
    }

    pub(super) fn table(
        &self,
        kind: KeyKind,
        flows: u64,
        n: usize,
        conv: impl Fn(&K) -> Key,
    ) -> KeyTable {
        match self {
            Tally::Exact(m) => exact_table(
                kind,
                m.iter().map(|(k, &c)| (conv(k), c)).collect(),
                n,
                flows,
            ),
            // Not full yet: every count is exact, and the table is the
            // one exact counting gives (ties ordered by key).
            Tally::Bounded(s) if s.error_bound() == 0 => exact_table(
                kind,
                s.top(s.len())
                    .into_iter()
                    .map(|(k, c, _)| (conv(&k), c))
                    .collect(),
                n,
                flows,
            ),
            Tally::Bounded(s) => {
                let bound = s.error_bound();
                // Every tracked key, largest estimate first (ties: the
                // smaller error, i.e. the larger lower bound, first).
                let all = s.top(s.len());
                let rows: Vec<(u64, u64)> = all.iter().map(|x| (x.1, x.2)).collect();
                let (shown, others_at_most, ranking) = certify(&rows, n, bound);
                KeyTable {
                    kind,
                    counted: s.items(),
                    distinct: None,
                    exact: false,
                    error_bound: bound,
                    others_at_most,
                    ranking,
                    tied_left_out: 0,
                    top: all
                        .into_iter()
                        .take(shown)
                        .map(|(k, count, error)| KeyCount {
                            key: conv(&k),
                            count,
                            error,
                            share: share(count, flows),
                        })
                        .collect(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn port_table(t: &Tally<u16>, flows: u64, n: usize) -> KeyTable {
        t.table(KeyKind::DstPort, flows, n, |&p| Key::Port {
            proto: conntrack_core::L4Proto::TCP,
            port: p,
        })
    }

    fn port_of(k: &Key) -> u16 {
        match k {
            Key::Port { port, .. } => *port,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_flat_distribution_lists_no_key() {
        // Every key once, far more keys than the summary holds: the
        // counts of the tracked keys are all noise, so none is listed.
        let mut t = Tally::new(CountMode::TopK(256));
        for p in 0..60_000u16 {
            t.add(p);
        }
        let table = port_table(&t, 60_000, 10);
        assert!(!table.exact);
        assert!(table.top.is_empty(), "{:?}", table.top);
        // ... and the table says how far the top can go: no key has more
        // than the largest estimate, about N / K.
        assert!(table.others_at_most >= table.error_bound);
        assert!(table.others_at_most <= 60_000 / 256 + 1, "{table:?}");
    }

    #[test]
    fn heavy_keys_over_flat_noise_are_certified_and_only_they() {
        let mut t = Tally::new(CountMode::TopK(256));
        let mut truth: HashMap<u16, u64> = HashMap::new();
        // Five heavy keys interleaved with 40,000 keys of one flow each.
        for i in 0..40_000u32 {
            let noise = 100 + (i % 40_000) as u16;
            t.add(noise);
            *truth.entry(noise).or_default() += 1;
            if i % 8 == 0 {
                let heavy = (i / 8 % 5) as u16;
                for _ in 0..=heavy {
                    t.add(heavy);
                    *truth.entry(heavy).or_default() += 1;
                }
            }
        }
        let flows = truth.values().sum();
        let table = port_table(&t, flows, 10);
        assert!(!table.exact);
        let listed: Vec<u16> = table.top.iter().map(|r| port_of(&r.key)).collect();
        assert_eq!(listed, [4, 3, 2, 1, 0]);
        assert_eq!(table.ranking, Ranking::Certified);
        for r in &table.top {
            let t = truth[&port_of(&r.key)];
            assert!(r.lower() <= t && t <= r.count, "{r:?} truth {t}");
            assert!(r.lower() >= table.others_at_most);
        }
        assert!(table.others_at_most < table.top[4].lower());
    }

    #[test]
    fn not_full_is_exactly_the_exact_table() {
        let mut bounded = Tally::new(CountMode::TopK(100));
        let mut exact = Tally::new(CountMode::Exact);
        for p in [5u16, 3, 5, 9, 3, 5, 7, 7, 1] {
            bounded.add(p);
            exact.add(p);
        }
        for n in [1, 2, 3, 10] {
            let (b, e) = (port_table(&bounded, 9, n), port_table(&exact, 9, n));
            assert_eq!(b, e);
            assert_eq!(b.ranking, Ranking::Exact);
        }
        // Ties are ordered by key; the first key left out bounds the rest.
        let t = port_table(&exact, 9, 2);
        assert_eq!(
            t.top.iter().map(|r| port_of(&r.key)).collect::<Vec<_>>(),
            [5, 3]
        );
        assert_eq!(t.others_at_most, 2);
    }

    #[test]
    fn certify_hand_cases() {
        // Exact rows: every prefix qualifies.
        assert_eq!(
            certify(&[(5, 0), (5, 0), (1, 0)], 2, 0),
            (2, 1, Ranking::Exact)
        );
        assert_eq!(certify(&[], 10, 0), (0, 0, Ranking::Exact));
        // [90, 100] and [80, 85] above everything else (<= 20): both,
        // order proven.
        assert_eq!(
            certify(&[(100, 10), (85, 5), (20, 19)], 10, 20),
            (2, 20, Ranking::Certified)
        );
        // Overlapping bounds between the two heavy rows: the set only.
        assert_eq!(
            certify(&[(100, 30), (85, 5), (20, 19)], 10, 20),
            (2, 20, Ranking::CertifiedSet)
        );
        // The cut at n = 1 is not provable (85 may exceed 70): nothing is
        // listed, and no key has more than the largest estimate.
        assert_eq!(
            certify(&[(100, 30), (85, 5), (20, 19)], 1, 20),
            (0, 100, Ranking::Certified)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Whatever the stream: a listed key's bounds hold its true count,
        /// and every key not listed has at most `others_at_most` flows,
        /// which no listed key's lower bound is under.
        #[test]
        fn listed_keys_are_proven_heaviest(
            stream in prop::collection::vec((0u16..200, 0u16..8), 0..3000),
            k in 1usize..64,
            n in 1usize..12,
        ) {
            let mut t = Tally::new(CountMode::TopK(k));
            let mut truth: HashMap<u16, u64> = HashMap::new();
            // A skewed mix: small keys often repeated.
            for &(a, b) in &stream {
                let key = if b < 4 { a % 8 } else { a };
                t.add(key);
                *truth.entry(key).or_default() += 1;
            }
            let table = port_table(&t, stream.len() as u64, n);
            prop_assert!(table.top.len() <= n);
            let listed: Vec<u16> = table.top.iter().map(|r| port_of(&r.key)).collect();
            for r in &table.top {
                let tc = truth[&port_of(&r.key)];
                prop_assert!(r.lower() <= tc && tc <= r.count);
                prop_assert!(r.lower() >= table.others_at_most);
            }
            for (key, &c) in &truth {
                if !listed.contains(key) {
                    prop_assert!(c <= table.others_at_most, "{key}: {c} > {}", table.others_at_most);
                }
            }
            if table.ranking != Ranking::CertifiedSet {
                for w in table.top.windows(2) {
                    prop_assert!(truth[&port_of(&w[0].key)] >= truth[&port_of(&w[1].key)]);
                }
            }
        }
    }
}
