//! Caller-supplied names for addresses and prefixes.

use super::key::mask;
use rustc_hash::FxHashMap;
use std::net::IpAddr;

/// A map from addresses or CIDR prefixes to names (e.g. Docker bridge
/// addresses to container names), longest prefix wins. A flow is named
/// after its original source, else the address its reply comes from (the
/// real destination behind DNAT), else its original destination.
///
/// ```
/// use conntrack_analyze::hotspots::NameMap;
/// let mut m = NameMap::new();
/// m.insert_str("172.17.0.0/16", "docker0").unwrap();
/// m.insert_str("172.17.0.2", "web-1").unwrap();
/// assert_eq!(m.lookup("172.17.0.2".parse().unwrap()), Some("web-1"));
/// assert_eq!(m.lookup("172.17.0.9".parse().unwrap()), Some("docker0"));
/// assert_eq!(m.lookup("10.0.0.1".parse().unwrap()), None);
/// assert!(m.insert_str("10.0.0.0/33", "bad").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct NameMap {
    pub(super) names: Vec<String>,
    /// Per (is_v6, prefix length), longest first.
    levels: Vec<(bool, u8, FxHashMap<IpAddr, u32>)>,
}

/// A CIDR or address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an address or CIDR prefix: {0:?}")]
pub struct BadCidr(pub String);

impl NameMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Maps `addr/prefix` to `name` (prefix clamped to the family's width).
    pub fn insert(&mut self, addr: IpAddr, prefix: u8, name: &str) {
        let v6 = addr.is_ipv6();
        let prefix = prefix.min(if v6 { 128 } else { 32 });
        let idx = match self.names.iter().position(|n| n == name) {
            Some(i) => i as u32,
            None => {
                self.names.push(name.to_owned());
                (self.names.len() - 1) as u32
            }
        };
        let lvl = match self
            .levels
            .iter()
            .position(|(f, p, _)| *f == v6 && *p == prefix)
        {
            Some(i) => i,
            None => {
                self.levels.push((v6, prefix, FxHashMap::default()));
                self.levels.sort_by_key(|l| std::cmp::Reverse(l.1));
                self.levels
                    .iter()
                    .position(|(f, p, _)| *f == v6 && *p == prefix)
                    .unwrap_or(0)
            }
        };
        self.levels[lvl].2.insert(mask(addr, prefix), idx);
    }

    /// Parses `"a.b.c.d"`, `"a.b.c.d/n"` or the IPv6 forms and inserts.
    pub fn insert_str(&mut self, cidr: &str, name: &str) -> Result<(), BadCidr> {
        let bad = || BadCidr(cidr.chars().take(80).collect());
        let (a, p) = match cidr.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (cidr.trim(), None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let width = if addr.is_ipv6() { 128 } else { 32 };
        let p = p.unwrap_or(width);
        if p > width {
            return Err(bad());
        }
        self.insert(addr, p, name);
        Ok(())
    }

    pub(super) fn lookup_idx(&self, addr: IpAddr) -> Option<u32> {
        let v6 = addr.is_ipv6();
        self.levels
            .iter()
            .filter(|(f, _, _)| *f == v6)
            .find_map(|(_, p, m)| m.get(&mask(addr, *p)).copied())
    }

    /// The name with this index.
    pub(super) fn name_of(&self, idx: u32) -> Option<&str> {
        self.names.get(idx as usize).map(String::as_str)
    }

    /// The name of an address.
    pub fn lookup(&self, addr: IpAddr) -> Option<&str> {
        self.lookup_idx(addr).and_then(|i| self.name_of(i))
    }
}
