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
//! - the estimates sum to `n` once `k` keys are tracked (without a
//!   doorkeeper, below).
//!
//! Every operation is O(1): the paper's stream-summary structure (keys in
//! buckets of equal count, buckets in count order). Until the summary
//! fills nothing is evicted and every count is exact, so the structure
//! is built only when it fills: before, a key's count is a plain counter
//! in its node, and counting a tracked key is one index probe and one
//! increment. A key repeated by consecutive items (the zone or the mark
//! of most flows) is counted without a probe: the node the last item
//! went to is tried first.
//!
//! **Doorkeeper** ([`SpaceSaving::with_doorkeeper`]). On a flat stream
//! (every key new) a full summary evicts on every item, and every eviction
//! costs a removal and an insertion in the key index. A doorkeeper (a bit
//! set in front of the summary, as in TinyLFU: Einziger, Friedman, Manes,
//! "TinyLFU: A Highly Efficient Cache Admission Policy", ACM TOS 2017)
//! lets a key that is not tracked into a full summary only when its bit is
//! already set; the first time, it sets the bit and the item is not counted
//! in the summary ("absorbed"). Bits are never cleared, so each key is
//! absorbed at most once: the summary counts every other occurrence, and
//! the bounds widen by one, which [`SpaceSaving::top`], [`SpaceSaving::get`]
//! and [`SpaceSaving::error_bound`] include:
//!
//! - a key tracked since before the summary filled (error 0) was never
//!   absorbed: its count is exact;
//! - any other tracked key may have had one absorbed occurrence: its
//!   estimate and its error are one more than the summary's;
//! - an untracked key has at most the smallest tracked count plus one.
//!
//! Bit collisions (two keys on one bit) only let a key in sooner: that is
//! the summary without a doorkeeper for that key, whose bounds hold; so the
//! bounds hold whatever the keys, and crafted keys (the keys come from
//! network traffic) can only cost the time the doorkeeper saves, never
//! correctness. The bit index is therefore an unkeyed fast hash (Fx,
//! mixed), which also keeps the results deterministic.
//!
//! When the summary fills, the bits of the keys it tracks are set (more
//! set bits: keys let in sooner, as by a collision). Then every tracked
//! key's bit is set, so a clear bit proves a key untracked, and the item
//! is absorbed before the key index is probed: on a flat stream most
//! items cost one hash and one bit.
//!
//! **Proven first occurrences** (crate-private `add_known`). A caller
//! counting keys that contain another kind's key (the pair of a source
//! and a destination contains the source) knows an item is its key's
//! first occurrence whenever the contained key is new. A full summary
//! with a doorkeeper absorbs such an item without hashing the key or
//! touching its bit: on a big table the bit is a random word of a bit set
//! the kernel's dump has evicted from the core's caches, and on a flat
//! stream most items are such first occurrences. The key's bit stays
//! clear, so its next occurrence may be absorbed too (and sets it): in a
//! summary that absorbed a proven first occurrence a key is absorbed at
//! most twice, and a clear bit no longer proves an item a first
//! occurrence. The bounds still widen by one only: a key's absorbed
//! occurrences all come before it first enters the full summary (it
//! enters only through a set bit), and it enters inheriting the smallest
//! count, at least one, none of which was its own; from then on every
//! re-entry inherits at least the count it was evicted with, so its
//! estimate stays at least one above its occurrences the summary counted.
//! That one covers the second absorbed occurrence and the widening the
//! first, for tracked and untracked keys alike (proptest
//! `derived_keys_keep_their_bounds`, including keys absorbed twice).
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

use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};

const NIL: u32 = u32::MAX;

/// The doorkeeper's bit set: `2^bits_log2` bits, allocated when the summary
/// first fills (a summary that never fills needs none).
#[derive(Debug, Clone)]
struct Doorkeeper {
    bits_log2: u32,
    words: Vec<u64>,
}

impl Doorkeeper {
    /// Sets the bit of a key with hash `h` ([`hash_of`]); whether it was
    /// set before.
    #[inline]
    fn test_and_set(&mut self, h: u64) -> bool {
        if self.words.is_empty() {
            self.words = vec![0; 1 << (self.bits_log2 - 6)];
        }
        // The index's probe uses the hash's low bits and its tag the top
        // seven: the bit is taken from the top of another product, so
        // that keys sharing a bit do not also share a probe position.
        let i = (h.wrapping_mul(0xbf58_476d_1ce4_e5b9) >> (64 - self.bits_log2)) as usize;
        let (w, b) = (i >> 6, 1u64 << (i & 63));
        let was = self.words[w] & b != 0;
        self.words[w] |= b;
        was
    }
}

/// The one hash of a key, computed once per [`SpaceSaving::add`] and
/// shared by the key index (stored in the node, so that an evicted key is
/// found again without hashing it) and the doorkeeper. Fx, then a
/// multiply and shift to spread Fx's weak low bits, which the index's
/// probe position uses.
#[inline]
fn hash_of<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    let x = h.finish();
    let x = (x ^ (x >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// What a summary proves of an item it counted
/// ([`SpaceSaving::add_known`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Occurrence {
    /// The item is its key's first occurrence in the stream.
    First,
    /// Nothing is proven: the key may have been seen before.
    Unknown,
}

/// A tracked key. Its links into the list of its count's bucket, once the
/// summary is full, are apart ([`Link`]): a node holds only what counting
/// a key reads (32 bytes for an address key, where 48 with the links put
/// a quarter of the nodes across two cache lines), and in the exact phase
/// a count touches only the index and the node.
#[derive(Debug, Clone)]
struct Node<K> {
    key: K,
    /// [`hash_of`] the key.
    hash: u64,
    /// Before the summary fills: the key's count (every error is 0 then,
    /// and there are no buckets yet). Once it is full: the key's error,
    /// the count inherited when it took the node over (its count is its
    /// bucket's).
    tally: u64,
}

/// A full summary's node's place in the stream summary: its bucket and its
/// neighbours in the bucket's list.
#[derive(Debug, Clone, Copy)]
struct Link {
    bucket: u32,
    prev: u32,
    next: u32,
}

/// All keys with one count; buckets form a list in ascending count order.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    count: u64,
    head: u32,
    prev: u32,
    next: u32,
}

/// A Space-Saving summary holding at most `k` keys.
///
/// Counts are kept in the "stream summary" structure of the paper: keys
/// grouped in buckets of equal count, buckets in a list ordered by count,
/// so that counting a key and replacing the minimum are O(1) (one hash
/// lookup and a few links), whatever `k`.
#[derive(Debug, Clone)]
pub struct SpaceSaving<K> {
    k: usize,
    n: u64,
    /// The tracked keys' nodes, found by their stored hash: a probe
    /// compares the hash, then the key (collisions never merge keys).
    index: HashTable<u32>,
    nodes: Vec<Node<K>>,
    /// One per node once the summary is full (empty before).
    links: Vec<Link>,
    buckets: Vec<Bucket>,
    free: Vec<u32>,
    /// The bucket of the smallest count; `NIL` until the summary fills
    /// and the buckets are built ([`SpaceSaving::filled`]).
    min: u32,
    /// The node the last item was counted in (`NIL` when it was
    /// absorbed): a key repeated by the next item is counted there
    /// without probing the index.
    last: u32,
    door: Option<Doorkeeper>,
    absorbed: u64,
    /// Whether a proven first occurrence was absorbed with its bit left
    /// clear: a clear bit then no longer proves a first occurrence.
    bitless: bool,
}

impl<K: Hash + Eq + Clone> SpaceSaving<K> {
    /// A summary keeping at most `k` keys (`k` of 0 is treated as 1).
    pub fn new(k: usize) -> Self {
        let k = k.clamp(1, (u32::MAX - 1) as usize);
        SpaceSaving {
            k,
            n: 0,
            index: HashTable::new(),
            nodes: Vec::new(),
            links: Vec::new(),
            buckets: Vec::new(),
            free: Vec::new(),
            min: NIL,
            last: NIL,
            door: None,
            absorbed: 0,
            bitless: false,
        }
    }

    /// A summary keeping at most `k` keys with a doorkeeper of
    /// `2^bits_log2` bits (clamped to 6..=32; `2^bits_log2 / 8` bytes,
    /// allocated when the summary first fills) in front of it: see the
    /// module's documentation. The bounds are those of the plain summary
    /// widened by one for keys that may have been absorbed.
    ///
    /// ```
    /// use conntrack_analyze::topk::SpaceSaving;
    /// let mut s = SpaceSaving::with_doorkeeper(2, 16);
    /// for k in ["a", "a", "b", "c", "c", "a"] { s.add(k); }
    /// // Full after "b": "c" is absorbed the first time, enters the second.
    /// let top = s.top(2);
    /// assert_eq!(top[0], ("a", 3, 0));          // tracked from the start: exact
    /// assert_eq!(top[1], ("c", 3, 2));          // 1 inherited + 1 maybe absorbed
    /// assert_eq!(s.absorbed(), 1);
    /// assert_eq!(s.error_bound(), 3);           // "b" untracked: at most 2 + 1
    /// ```
    pub fn with_doorkeeper(k: usize, bits_log2: u32) -> Self {
        SpaceSaving {
            door: Some(Doorkeeper {
                bits_log2: bits_log2.clamp(6, 32),
                words: Vec::new(),
            }),
            ..Self::new(k)
        }
    }

    /// Items the doorkeeper kept out of the summary (first occurrences of
    /// untracked keys once the summary was full); 0 without a doorkeeper.
    pub fn absorbed(&self) -> u64 {
        self.absorbed
    }

    /// What the doorkeeper may have kept out of a tracked key with this
    /// summary error: nothing for a key tracked since before the summary
    /// filled (error 0), at most one occurrence for any other (see the
    /// module's documentation for a key absorbed twice).
    fn slack(&self, error: u64) -> u64 {
        u64::from(self.absorbed > 0 && error > 0)
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
        self.nodes.len()
    }

    /// Whether no item was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether the summary has filled: the stream summary's buckets hold
    /// the counts (built once, when the `k`-th key arrives).
    #[inline]
    fn filled(&self) -> bool {
        self.min != NIL
    }

    /// The count of node `x`, and what the summary says of its error
    /// (before the doorkeeper's slack).
    #[inline]
    fn count_error(&self, x: usize) -> (u64, u64) {
        let tally = self.nodes[x].tally;
        if self.filled() {
            (self.buckets[self.links[x].bucket as usize].count, tally)
        } else {
            (tally, 0)
        }
    }

    /// Counts one more occurrence of the key of node `x`.
    #[inline]
    fn count_in(&mut self, x: u32) {
        self.last = x;
        if self.filled() {
            self.increment(x);
        } else {
            self.nodes[x as usize].tally += 1;
        }
    }

    /// The node of a tracked key with hash `h`.
    #[inline]
    fn find(&self, h: u64, key: &K) -> Option<u32> {
        let nodes = &self.nodes;
        self.index
            .find(h, |&x| {
                let n = &nodes[x as usize];
                n.hash == h && n.key == *key
            })
            .copied()
    }

    /// Counts one occurrence of `key`.
    #[inline]
    pub fn add(&mut self, key: K) {
        self.count(key, false);
    }

    /// Counts one occurrence of `key`, as [`SpaceSaving::add`]. `first`
    /// says that the caller has proven this item to be its key's first
    /// occurrence in the stream (see [`Occurrence`]); the key is then
    /// not looked up, and with a doorkeeper a full summary absorbs it
    /// without hashing it or touching its bit ("proven first
    /// occurrences" in the module's documentation). Returns what this
    /// summary proves of the item: a caller counting keys derived from
    /// this one (a pair of addresses from a source address) passes it on,
    /// since a key seen for the first time makes every key that contains
    /// it new too.
    ///
    /// A `first` that is not true may track a key twice or absorb it more
    /// than twice (bounds lost, no panic): hence crate-private.
    #[inline]
    pub(crate) fn add_known(&mut self, key: K, first: Occurrence) -> Occurrence {
        self.count(key, first == Occurrence::First)
    }

    #[inline]
    fn count(&mut self, key: K, first: bool) -> Occurrence {
        self.n += 1;
        // The last item's key again: its node still holds it (nothing
        // was evicted since), and a tracked key's doorkeeper bit is set.
        if !first
            && let Some(n) = self.nodes.get(self.last as usize)
            && n.key == key
        {
            let x = self.last;
            self.count_in(x);
            return Occurrence::Unknown;
        }
        let full = self.nodes.len() >= self.k;
        // Full, with a doorkeeper: a proven first occurrence is absorbed
        // as it is, its bit left clear (so it is not tracked, and every
        // tracked key's bit is still set).
        if first && full && self.door.is_some() {
            self.bitless = true;
            self.absorbed += 1;
            self.last = NIL;
            return Occurrence::First;
        }
        let h = hash_of(&key);
        // Full: a key whose bit is clear is not tracked (every tracked
        // key's bit is set, see `fill_doorkeeper`), so this occurrence
        // stops here without probing the index. Until a proven first
        // occurrence was absorbed bitless, a clear bit also proves the
        // item a first occurrence: a key seen before the summary filled
        // was tracked when it did (nothing is evicted before), so its bit
        // was set then, and any later occurrence set it.
        if full
            && let Some(d) = &mut self.door
            && !d.test_and_set(h)
        {
            self.absorbed += 1;
            self.last = NIL;
            return if self.bitless {
                Occurrence::Unknown
            } else {
                Occurrence::First
            };
        }
        if !first && let Some(x) = self.find(h, &key) {
            self.count_in(x);
            return Occurrence::Unknown;
        }
        if !full {
            let x = self.nodes.len() as u32;
            self.nodes.push(Node {
                key,
                hash: h,
                tally: 1,
            });
            let nodes = &self.nodes;
            self.index.insert_unique(h, x, |&y| nodes[y as usize].hash);
            self.last = x;
            if self.nodes.len() == self.k {
                self.build_buckets();
                self.fill_doorkeeper();
            }
            // Not tracked before a first eviction: never seen.
            return Occurrence::First;
        }
        // The key takes over a node of the smallest count, in place: the
        // node's index entry is found by its stored hash and node number
        // (no key hashed or compared), removed, and the node re-entered
        // under the new key's hash.
        let m = self.min as usize;
        let x = self.buckets[m].head;
        let min_count = self.buckets[m].count;
        if let Ok(e) = self
            .index
            .find_entry(self.nodes[x as usize].hash, |&y| y == x)
        {
            e.remove();
        }
        let node = &mut self.nodes[x as usize];
        node.key = key;
        node.hash = h;
        node.tally = min_count;
        let nodes = &self.nodes;
        self.index.insert_unique(h, x, |&y| nodes[y as usize].hash);
        self.count_in(x);
        // The key may have been tracked and evicted before.
        if first {
            Occurrence::First
        } else {
            Occurrence::Unknown
        }
    }

    /// When the summary fills: the stream summary built from the exact
    /// counts (nodes in buckets of equal count, buckets in ascending
    /// order), every error 0.
    fn build_buckets(&mut self) {
        let unlinked = Link {
            bucket: NIL,
            prev: NIL,
            next: NIL,
        };
        self.links = vec![unlinked; self.nodes.len()];
        let mut order: Vec<u32> = (0..self.nodes.len() as u32).collect();
        order.sort_unstable_by_key(|&x| std::cmp::Reverse(self.nodes[x as usize].tally));
        // Largest count first, each bucket put before the one built last,
        // so that `min` ends at the smallest.
        for x in order {
            let count = std::mem::take(&mut self.nodes[x as usize].tally);
            let b = if self.min != NIL && self.buckets[self.min as usize].count == count {
                self.min
            } else {
                let nb = self.new_bucket(count, NIL, self.min);
                self.min = nb;
                nb
            };
            self.attach(x, b);
        }
    }

    /// When the summary fills: sets the doorkeeper's bit of every
    /// tracked key. From then on every tracked key's bit is set (a key
    /// enters a full summary only through a set bit, and bits are never
    /// cleared), so a clear bit proves a key untracked. Setting these bits
    /// only lets other keys in sooner, as a bit collision does.
    fn fill_doorkeeper(&mut self) {
        if let Some(d) = &mut self.door {
            for n in &self.nodes {
                d.test_and_set(n.hash);
            }
        }
    }

    fn new_bucket(&mut self, count: u64, prev: u32, next: u32) -> u32 {
        let b = Bucket {
            count,
            head: NIL,
            prev,
            next,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.buckets[id as usize] = b;
                id
            }
            None => {
                self.buckets.push(b);
                (self.buckets.len() - 1) as u32
            }
        };
        if prev != NIL {
            self.buckets[prev as usize].next = id;
        }
        if next != NIL {
            self.buckets[next as usize].prev = id;
        }
        id
    }

    fn attach(&mut self, x: u32, b: u32) {
        let head = self.buckets[b as usize].head;
        self.links[x as usize] = Link {
            bucket: b,
            prev: NIL,
            next: head,
        };
        if head != NIL {
            self.links[head as usize].prev = x;
        }
        self.buckets[b as usize].head = x;
    }

    /// Unlinks a node from its bucket; removes the bucket when it empties.
    fn detach(&mut self, x: u32) {
        let Link {
            bucket: b,
            prev,
            next,
        } = self.links[x as usize];
        if prev != NIL {
            self.links[prev as usize].next = next;
        } else {
            self.buckets[b as usize].head = next;
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        }
        if self.buckets[b as usize].head == NIL {
            let Bucket { prev, next, .. } = self.buckets[b as usize];
            if prev != NIL {
                self.buckets[prev as usize].next = next;
            } else {
                self.min = next;
            }
            if next != NIL {
                self.buckets[next as usize].prev = prev;
            }
            self.free.push(b);
        }
    }

    fn increment(&mut self, x: u32) {
        let b = self.links[x as usize].bucket;
        let Bucket {
            count, head, next, ..
        } = self.buckets[b as usize];
        let alone = head == x && self.links[x as usize].next == NIL;
        let next_fits = next != NIL && self.buckets[next as usize].count == count + 1;
        if alone && !next_fits {
            self.buckets[b as usize].count = count + 1;
            return;
        }
        if next_fits {
            self.detach(x);
            self.attach(x, next);
        } else {
            // Not alone: b stays, a bucket for count + 1 goes after it.
            self.detach(x);
            let nb = self.new_bucket(count + 1, b, next);
            self.attach(x, nb);
        }
    }

    /// The largest possible overestimate of any key's count, and the
    /// largest possible true count of an untracked key: the smallest
    /// tracked count once the summary is full (plus one once the
    /// doorkeeper absorbed an item), otherwise 0 (exact).
    pub fn error_bound(&self) -> u64 {
        if !self.filled() {
            0
        } else {
            self.buckets[self.min as usize].count + u64::from(self.absorbed > 0)
        }
    }

    /// Approximate heap bytes held (index, nodes, links, buckets, the
    /// doorkeeper), bounded by `k`.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.index.capacity() * (size_of::<u32>() + 1)
            + self.nodes.capacity() * size_of::<Node<K>>()
            + self.links.capacity() * size_of::<Link>()
            + self.buckets.capacity() * size_of::<Bucket>()
            + self.free.capacity() * size_of::<u32>()
            + self.door.as_ref().map_or(0, |d| d.words.capacity() * 8)
    }

    /// The estimate and error of one key, when tracked.
    pub fn get(&self, key: &K) -> Option<(u64, u64)> {
        self.find(hash_of(key), key).map(|x| {
            let (count, error) = self.count_error(x as usize);
            let s = self.slack(error);
            (count + s, error + s)
        })
    }

    /// The `n` keys with the largest estimates as `(key, estimate, error)`,
    /// largest first (ties: smaller error first).
    pub fn top(&self, n: usize) -> Vec<(K, u64, u64)> {
        let mut v: Vec<(u64, u64, &Node<K>)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let (count, error) = self.count_error(i);
                let s = self.slack(error);
                (count + s, error + s, x)
            })
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v.into_iter()
            .take(n)
            .map(|(c, e, x)| (x.key.clone(), c, e))
            .collect()
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

    /// A proven first occurrence is absorbed with its bit left clear, so
    /// the key's second occurrence is absorbed too, and a clear bit then
    /// proves nothing; the bounds, widened by one, still hold.
    #[test]
    fn a_key_absorbed_twice_keeps_its_bounds() {
        let mut s = SpaceSaving::with_doorkeeper(2, 16);
        s.add("a");
        s.add("b"); // full: both exact
        assert_eq!(s.add_known("y", Occurrence::First), Occurrence::First);
        assert_eq!(s.add_known("y", Occurrence::Unknown), Occurrence::Unknown);
        assert_eq!(s.absorbed(), 2);
        assert_eq!(s.get(&"y"), None);
        // Third occurrence: its bit is set now, it takes over a count of 1.
        s.add("y");
        let (est, err) = s.get(&"y").unwrap();
        assert!(est >= 3 && est - err <= 3, "{est} {err}");
        assert!(s.error_bound() >= 1, "the evicted key had 1");
        // A new key's clear bit no longer proves a first occurrence.
        assert_eq!(s.add_known("z", Occurrence::Unknown), Occurrence::Unknown);
    }

    #[test]
    fn zero_capacity_is_one() {
        let mut s = SpaceSaving::new(0);
        s.add('x');
        s.add('y');
        assert_eq!(s.top(5), vec![('y', 2, 1)]);
    }

    /// Buckets ascend strictly from `min`, every node sits in the list of
    /// the bucket it names, and every node is in exactly one list.
    /// Before the summary fills there are no buckets.
    fn check_structure<K: Hash + Eq + Clone>(s: &SpaceSaving<K>) {
        assert_eq!(s.index.len(), s.nodes.len());
        if !s.filled() {
            assert!(s.nodes.len() < s.k);
            assert!(s.buckets.is_empty());
            assert!(s.links.is_empty());
            assert!(s.nodes.iter().all(|n| n.tally > 0));
            return;
        }
        let mut seen = 0usize;
        let mut b = s.min;
        let mut prev_b = NIL;
        let mut last = 0u64;
        while b != NIL {
            let bk = s.buckets[b as usize];
            assert_eq!(bk.prev, prev_b);
            assert!(bk.count > last, "bucket counts ascend");
            assert_ne!(bk.head, NIL, "no empty bucket in the list");
            last = bk.count;
            let mut x = bk.head;
            let mut px = NIL;
            while x != NIL {
                let n = &s.links[x as usize];
                assert_eq!(n.bucket, b);
                assert_eq!(n.prev, px);
                seen += 1;
                px = x;
                x = n.next;
            }
            prev_b = b;
            b = bk.next;
        }
        assert_eq!(seen, s.nodes.len());
        assert_eq!(s.links.len(), s.nodes.len());
        assert_eq!(s.index.len(), s.nodes.len());
    }

    #[test]
    fn a_doorkeeper_keeps_first_occurrences_out_of_a_full_summary() {
        // A flat stream: without a doorkeeper every item past the first k
        // evicts; with one, only keys whose bit another key set get in.
        let mut plain = SpaceSaving::new(64);
        let mut door = SpaceSaving::with_doorkeeper(64, 20);
        for x in 0..20_000u32 {
            plain.add(x);
            door.add(x);
        }
        assert_eq!(plain.absorbed(), 0);
        assert!(door.absorbed() > 19_000, "{}", door.absorbed());
        assert_eq!(door.items(), 20_000);
        // Fewer evictions: a smaller bound, one wider for the doorkeeper.
        assert!(
            door.error_bound() < plain.error_bound(),
            "{} {}",
            door.error_bound(),
            plain.error_bound()
        );
        // A key seen twice past the doorkeeper is tracked, its bounds
        // holding its two occurrences.
        door.add(1_000_000);
        door.add(1_000_000);
        let (c, e) = door.get(&1_000_000).unwrap();
        assert!(c - e <= 2 && 2 <= c, "{c} {e}");
        check_structure(&door);
    }

    #[test]
    fn keys_tracked_before_the_summary_filled_stay_exact() {
        let mut s = SpaceSaving::with_doorkeeper(3, 8);
        for x in [7u8, 7, 8, 9] {
            s.add(x);
        }
        for x in 10..200u8 {
            s.add(x);
            s.add(7);
        }
        let (c, e) = s.get(&7).unwrap();
        assert_eq!((c, e), (192, 0));
        assert_eq!(s.top(1), vec![(7, 192, 0)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// With a doorkeeper (small enough that keys share bits): every
        /// tracked key's bounds hold its true count, and no untracked key
        /// has more than the bound.
        #[test]
        fn doorkeeper_bounds_hold(
            runs in prop::collection::vec((0u16..300, 1usize..4), 0..1500),
            k in 1usize..40,
            bits in 6u32..10,
        ) {
            // Keys repeated by consecutive items too (the last node's
            // shortcut), across the fill and evictions.
            let stream: Vec<u16> = runs.iter().flat_map(|&(x, r)| std::iter::repeat_n(x, r)).collect();
            let mut s = SpaceSaving::with_doorkeeper(k, bits);
            let mut truth: HashMap<u16, u64> = HashMap::new();
            for &x in &stream {
                s.add(x);
                *truth.entry(x).or_default() += 1;
            }
            check_structure(&s);
            let bound = s.error_bound();
            let n = stream.len() as u64;
            prop_assert!(s.len() < k || bound <= (n - s.absorbed()) / k as u64 + 1);
            for &(key, est, err) in &s.top(usize::MAX) {
                let t = truth[&key];
                prop_assert!(est >= t, "underestimate {} < {}", est, t);
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// A kind whose keys contain another kind's key, counted with what
        /// the other kind's count proved (as the hotspot tables count the
        /// source, the source and destination pair, and the pair's
        /// closing flows): the derived kinds' bounds hold, with and
        /// without doorkeepers, every proven first occurrence is one
        /// (also those a derived kind passes on), and no key is absorbed
        /// more than twice.
        #[test]
        fn derived_keys_keep_their_bounds(
            stream in prop::collection::vec((0u16..150, 0u8..4, any::<bool>()), 0..3000),
            k in 1usize..40,
            door in any::<bool>(),
            bits in 6u32..14,
        ) {
            fn make<K: Hash + Eq + Clone>(k: usize, door: bool, bits: u32) -> SpaceSaving<K> {
                if door {
                    SpaceSaving::with_doorkeeper(k, bits)
                } else {
                    SpaceSaving::new(k)
                }
            }
            let mut parent: SpaceSaving<u16> = make(k, door, bits);
            let mut child: SpaceSaving<(u16, u8)> = make(k, door, bits);
            let mut grandchild: SpaceSaving<(u16, u8)> = make(k, door, bits);
            let mut truth: HashMap<(u16, u8), u64> = HashMap::new();
            let mut sub_truth: HashMap<(u16, u8), u64> = HashMap::new();
            let mut absorbed: HashMap<(u16, u8), u64> = HashMap::new();
            let mut seen = std::collections::HashSet::new();
            for &(a, b, closing) in &stream {
                let first = parent.add_known(a, Occurrence::Unknown);
                prop_assert!(first == Occurrence::Unknown || seen.insert(a), "{} proven new twice", a);
                seen.insert(a);
                let before = child.absorbed();
                let child_first = child.add_known((a, b), first);
                prop_assert!(
                    child_first == Occurrence::Unknown || !truth.contains_key(&(a, b)),
                    "{:?} proven new again", (a, b)
                );
                let n = absorbed.entry((a, b)).or_default();
                *n += child.absorbed() - before;
                prop_assert!(*n <= 2, "{:?} absorbed {} times", (a, b), n);
                *truth.entry((a, b)).or_default() += 1;
                if closing {
                    grandchild.add_known((a, b), child_first);
                    *sub_truth.entry((a, b)).or_default() += 1;
                }
            }
            for (s, truth) in [(&child, &truth), (&grandchild, &sub_truth)] {
                check_structure(s);
                let bound = s.error_bound();
                for &(key, est, err) in &s.top(usize::MAX) {
                    let t = truth[&key];
                    prop_assert!(est >= t && est - err <= t, "{:?}: {} {} {}", key, est, err, t);
                    prop_assert!(err <= bound);
                }
                for (key, &t) in truth {
                    if s.get(key).is_none() {
                        prop_assert!(t <= bound, "untracked key above the bound");
                    }
                }
            }
        }
    }

    /// A key whose hash is shared by many keys (only `x % 3` is
    /// hashed): the index must tell keys apart by comparing them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Colliding(u16);
    impl Hash for Colliding {
        fn hash<H: Hasher>(&self, h: &mut H) {
            (self.0 % 3).hash(h);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Keys whose hashes collide (in the index and the doorkeeper)
        /// are never merged: with and without a doorkeeper, every tracked
        /// key's bounds hold its own true count, and `get` finds each.
        #[test]
        fn colliding_hashes_keep_keys_apart(
            stream in prop::collection::vec(0u16..120, 0..2000),
            k in 1usize..40,
            door in any::<bool>(),
        ) {
            let mut s = if door {
                SpaceSaving::with_doorkeeper(k, 6)
            } else {
                SpaceSaving::new(k)
            };
            let mut truth: HashMap<u16, u64> = HashMap::new();
            for &x in &stream {
                s.add(Colliding(x));
                *truth.entry(x).or_default() += 1;
            }
            check_structure(&s);
            let bound = s.error_bound();
            let top = s.top(usize::MAX);
            let mut keys: Vec<u16> = top.iter().map(|t| t.0.0).collect();
            keys.sort_unstable();
            keys.dedup();
            prop_assert_eq!(keys.len(), top.len(), "a key tracked twice");
            for &(key, est, err) in &top {
                let t = truth[&key.0];
                prop_assert!(est >= t && est - err <= t, "{:?}: {} {} {}", key, est, err, t);
                prop_assert_eq!(s.get(&key), Some((est, err)));
            }
            for (&key, &t) in &truth {
                if s.get(&Colliding(key)).is_none() {
                    prop_assert!(t <= bound, "untracked key above the bound");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// The Space-Saving guarantees hold for any stream.
        #[test]
        fn error_bounds_hold(
            runs in prop::collection::vec((0u16..60, 1usize..4), 0..1000),
            k in 1usize..40,
        ) {
            let stream: Vec<u16> = runs.iter().flat_map(|&(x, r)| std::iter::repeat_n(x, r)).collect();
            let mut s = SpaceSaving::new(k);
            let mut truth: HashMap<u16, u64> = HashMap::new();
            for &x in &stream {
                s.add(x);
                *truth.entry(x).or_default() += 1;
            }
            check_structure(&s);
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
