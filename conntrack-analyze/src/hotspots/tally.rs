//! Counting one key kind, exactly or with a bounded top-K, and turning the
//! counts into a [`KeyTable`].

use super::aggregate::CountMode;
use super::key::{Key, KeyKind};
use super::summary::{KeyCount, KeyTable, share};
use crate::topk::SpaceSaving;
use rustc_hash::FxHashMap;
use std::hash::Hash;

/// An exactly counted key table: keys with a zero count dropped (counts
/// kept incrementally can return to zero), sorted by count then key, the
/// first `n` with their share of `flows`.
pub(super) fn exact_table(kind: KeyKind, mut v: Vec<(Key, u64)>, n: usize, flows: u64) -> KeyTable {
    v.retain(|x| x.1 > 0);
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    KeyTable {
        kind,
        counted: v.iter().map(|x| x.1).sum(),
        distinct: Some(v.len() as u64),
        exact: true,
        error_bound: 0,
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
            CountMode::TopK(k) => Tally::Bounded(SpaceSaving::new(k)),
        }
    }

    #[inline]
    pub(super) fn add(&mut self, k: K) {
        match self {
            Tally::Exact(m) => *m.entry(k).or_insert(0) += 1,
            Tally::Bounded(s) => s.add(k),
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
            Tally::Bounded(s) => {
                let bound = s.error_bound();
                KeyTable {
                    kind,
                    counted: s.items(),
                    distinct: if bound == 0 {
                        Some(s.len() as u64)
                    } else {
                        None
                    },
                    exact: bound == 0,
                    error_bound: bound,
                    top: s
                        .top(n)
                        .into_iter()
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
