//! Bounded-memory heavy hitters: the Space-Saving algorithm (Metwally,
//! Agrawal, El Abbadi, "Efficient Computation of Frequent and Top-k
//! Elements in Data Streams", ICDT 2005).
//!
//! At most `k` keys are kept. A key not tracked replaces the key with the
//! smallest count and inherits that count plus one, recording the
//! inherited part as its error. Guarantees, for a stream of `n` items:
//!
//! - every tracked key's estimate `c` satisfies `c - error <= true <= c`;
//! - every key whose true count exceeds the smallest tracked count (at most
//!   `n / k`) is tracked;
//! - the estimates sum to `n` once `k` keys are tracked.
//!
//! ```
//! use conntrack_analyze::topk::SpaceSaving;
//! let mut s = SpaceSaving::new(2);
//! for k in ["a", "a", "a", "b", "c"] { s.add(k); }
//! let top = s.top(2);
//! assert_eq!(top[0], ("a", 3, 0));          // exact
//! assert_eq!(top[1], ("c", 2, 1));          // inherited b's count: error 1
//! assert_eq!(s.error_bound(), 2);
//! ```

use rustc_hash::FxHashMap;
use std::hash::Hash;

#[derive(Debug, Clone)]
struct Slot<K> {
    key: K,
    error: u64,
}

/// A Space-Saving summary holding at most `k` keys.
#[derive(Debug, Clone)]
pub struct SpaceSaving<K> {
    k: usize,
    n: u64,
    index: FxHashMap<K, u32>,
    slots: Vec<Slot<K>>,
    /// Min-heap of `(count, slot)`: counts live next to each other so that
    /// sifting reads one array.
    heap: Vec<(u64, u32)>,
    /// Position of each slot in `heap`.
    pos: Vec<u32>,
}

impl<K: Hash + Eq + Clone> SpaceSaving<K> {
    /// A summary keeping at most `k` keys (`k` of 0 is treated as 1).
    pub fn new(k: usize) -> Self {
        let k = k.clamp(1, u32::MAX as usize);
        SpaceSaving {
            k,
            n: 0,
            index: FxHashMap::default(),
            slots: Vec::new(),
            heap: Vec::new(),
            pos: Vec::new(),
        }
    }

    /// The capacity `k`.
    pub fn capacity(&self) -> usize {
        self.k
    }

    /// Items seen.
    pub fn items(&self) -> u64 {
        self.n
    }

    /// Keys tracked (at most `k`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no item was added.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Counts one occurrence of `key`.
    #[inline]
    pub fn add(&mut self, key: K) {
        self.n += 1;
        if let Some(&s) = self.index.get(&key) {
            let i = self.pos[s as usize] as usize;
            self.heap[i].0 += 1;
            self.sift_down(i);
            return;
        }
        if self.slots.len() < self.k {
            let s = self.slots.len() as u32;
            self.index.insert(key.clone(), s);
            self.slots.push(Slot { key, error: 0 });
            self.heap.push((1, s));
            self.pos.push((self.heap.len() - 1) as u32);
            self.sift_up(self.heap.len() - 1);
            return;
        }
        let (min, s) = self.heap[0];
        let s = s as usize;
        self.index.remove(&self.slots[s].key);
        self.index.insert(key.clone(), s as u32);
        self.slots[s] = Slot { key, error: min };
        self.heap[0].0 = min + 1;
        self.sift_down(0);
    }

    /// The largest possible overestimate of any key's count, and the
    /// largest possible true count of an untracked key: the smallest
    /// tracked count once the summary is full, otherwise 0 (exact).
    pub fn error_bound(&self) -> u64 {
        if self.slots.len() < self.k {
            0
        } else {
            self.heap.first().map_or(0, |&(c, _)| c)
        }
    }

    /// Approximate heap bytes held (index, slots, heap), bounded by `k`.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.index.capacity() * (size_of::<K>() + size_of::<u32>() + 1)
            + self.slots.capacity() * size_of::<Slot<K>>()
            + self.heap.capacity() * size_of::<(u64, u32)>()
            + self.pos.capacity() * size_of::<u32>()
    }

    /// The estimate and error of one key, when tracked.
    pub fn get(&self, key: &K) -> Option<(u64, u64)> {
        self.index.get(key).map(|&s| {
            let c = self.heap[self.pos[s as usize] as usize].0;
            (c, self.slots[s as usize].error)
        })
    }

    /// The `n` keys with the largest estimates as `(key, estimate, error)`,
    /// largest first (ties: smaller error first).
    pub fn top(&self, n: usize) -> Vec<(K, u64, u64)> {
        let mut v: Vec<(u64, &Slot<K>)> = self
            .heap
            .iter()
            .map(|&(c, s)| (c, &self.slots[s as usize]))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.error.cmp(&b.1.error)));
        v.into_iter()
            .take(n)
            .map(|(c, s)| (s.key.clone(), c, s.error))
            .collect()
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.heap.swap(i, j);
        self.pos[self.heap[i].1 as usize] = i as u32;
        self.pos[self.heap[j].1 as usize] = j as u32;
    }

    #[inline]
    fn count_at(&self, i: usize) -> u64 {
        self.heap[i].0
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let p = (i - 1) / 2;
            if self.count_at(i) < self.count_at(p) {
                self.swap(i, p);
                i = p;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && self.count_at(r) < self.count_at(l) {
                r
            } else {
                l
            };
            if self.count_at(c) < self.count_at(i) {
                self.swap(i, c);
                i = c;
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn exact_while_not_full() {
        let mut s = SpaceSaving::new(10);
        for x in [1, 2, 2, 3, 3, 3] {
            s.add(x);
        }
        assert_eq!(s.error_bound(), 0);
        assert_eq!(s.top(10), vec![(3, 3, 0), (2, 2, 0), (1, 1, 0)]);
        assert_eq!(s.get(&2), Some((2, 0)));
        assert_eq!(s.get(&9), None);
    }

    #[test]
    fn zero_capacity_is_one() {
        let mut s = SpaceSaving::new(0);
        s.add('x');
        s.add('y');
        assert_eq!(s.top(5), vec![('y', 2, 1)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// The Space-Saving guarantees hold for any stream.
        #[test]
        fn error_bounds_hold(stream in prop::collection::vec(0u16..60, 0..2000), k in 1usize..40) {
            let mut s = SpaceSaving::new(k);
            let mut truth: HashMap<u16, u64> = HashMap::new();
            for &x in &stream {
                s.add(x);
                *truth.entry(x).or_default() += 1;
            }
            let bound = s.error_bound();
            let n = stream.len() as u64;
            prop_assert!(bound <= n / k as u64 || s.len() < k);
            let top = s.top(usize::MAX);
            if s.len() == k {
                prop_assert_eq!(top.iter().map(|t| t.1).sum::<u64>(), n);
            }
            for &(key, est, err) in &top {
                let t = truth[&key];
                prop_assert!(est >= t, "underestimate");
                prop_assert!(est - err <= t, "error not covering");
                prop_assert!(err <= bound);
            }
            for (&key, &t) in &truth {
                if s.get(&key).is_none() {
                    prop_assert!(t <= bound, "untracked key above the bound");
                }
            }
        }
    }
}
