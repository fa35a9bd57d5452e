//! Statistics replies: `IPCTNL_MSG_CT_GET_STATS_CPU` (one message per
//! CPU, the CPU id in `nfgenmsg.res_id`, counters as be32 `CTA_STATS_*`)
//! and `IPCTNL_MSG_CT_GET_STATS` (`CTA_STATS_GLOBAL_ENTRIES` and, on newer
//! kernels, `CTA_STATS_GLOBAL_MAX_ENTRIES`).

use super::attr::*;
use super::error::{DecodeError, ErrorKind};
use super::message::{NFGENMSG_LEN, NfGenMsg};
use super::nla::{Attrs, relabel};
use conntrack_core::{Counter, CpuStats};

/// The core counter a `CTA_STATS_*` attribute reports.
///
/// ```
/// use conntrack_core::Counter;
/// use conntrack_netlink::wire::{attr, stats::counter_of};
/// assert_eq!(counter_of(attr::CTA_STATS_CHAIN_TOOLONG), Some(Counter::ChainTooLong));
/// assert_eq!(counter_of(attr::CtaStatsAttr(99)), None);
/// ```
pub const fn counter_of(a: CtaStatsAttr) -> Option<Counter> {
    Some(match a {
        CTA_STATS_SEARCHED => Counter::Searched,
        CTA_STATS_FOUND => Counter::Found,
        CTA_STATS_NEW => Counter::New,
        CTA_STATS_INVALID => Counter::Invalid,
        CTA_STATS_IGNORE => Counter::Ignore,
        CTA_STATS_DELETE => Counter::Delete,
        CTA_STATS_DELETE_LIST => Counter::DeleteList,
        CTA_STATS_INSERT => Counter::Insert,
        CTA_STATS_INSERT_FAILED => Counter::InsertFailed,
        CTA_STATS_DROP => Counter::Drop,
        CTA_STATS_EARLY_DROP => Counter::EarlyDrop,
        CTA_STATS_ERROR => Counter::Error,
        CTA_STATS_SEARCH_RESTART => Counter::SearchRestart,
        CTA_STATS_CLASH_RESOLVE => Counter::ClashResolve,
        CTA_STATS_CHAIN_TOOLONG => Counter::ChainTooLong,
        _ => return None,
    })
}

/// The `CTA_STATS_*` attribute that reports a core counter (`None` for
/// counters ctnetlink does not carry, the expectation counters).
pub const fn attr_of(c: Counter) -> Option<CtaStatsAttr> {
    Some(match c {
        Counter::Searched => CTA_STATS_SEARCHED,
        Counter::Found => CTA_STATS_FOUND,
        Counter::New => CTA_STATS_NEW,
        Counter::Invalid => CTA_STATS_INVALID,
        Counter::Ignore => CTA_STATS_IGNORE,
        Counter::Delete => CTA_STATS_DELETE,
        Counter::DeleteList => CTA_STATS_DELETE_LIST,
        Counter::Insert => CTA_STATS_INSERT,
        Counter::InsertFailed => CTA_STATS_INSERT_FAILED,
        Counter::Drop => CTA_STATS_DROP,
        Counter::EarlyDrop => CTA_STATS_EARLY_DROP,
        Counter::Error => CTA_STATS_ERROR,
        Counter::SearchRestart => CTA_STATS_SEARCH_RESTART,
        Counter::ClashResolve => CTA_STATS_CLASH_RESOLVE,
        Counter::ChainTooLong => CTA_STATS_CHAIN_TOOLONG,
        _ => return None,
    })
}

fn header(payload: &[u8]) -> Result<NfGenMsg, DecodeError> {
    NfGenMsg::parse(payload).ok_or(DecodeError::new(
        0,
        ErrorKind::Truncated {
            needed: NFGENMSG_LEN as u16,
            available: payload.len(),
        },
    ))
}

/// Decodes one `IPCTNL_MSG_CT_GET_STATS_CPU` reply payload (after the
/// netlink header, starting with `nfgenmsg`). The CPU id is `res_id`;
/// counters this crate does not know are kept in
/// [`CpuStats::other`] as `("CTA_STATS_<n>", value)`. Error offsets are
/// positions in `payload`.
///
/// ```
/// use conntrack_netlink::wire::decode_stats_cpu;
/// // nfgenmsg (AF_UNSPEC, cpu 1), CTA_STATS_DROP = 5, unknown 99 = 1.
/// let p = [0, 0, 0, 1, 8, 0, 10, 0, 0, 0, 0, 5, 8, 0, 99, 0, 0, 0, 0, 1];
/// let s = decode_stats_cpu(&p).unwrap();
/// assert_eq!((s.cpu, s.drop(), s.found()), (Some(1), Some(5), None));
/// assert_eq!(s.get_other("CTA_STATS_99"), Some(1));
/// ```
pub fn decode_stats_cpu(payload: &[u8]) -> Result<CpuStats, DecodeError> {
    const S: Space = Space::StatsCpu;
    let h = header(payload)?;
    let mut stats = CpuStats::for_cpu(u32::from(h.res_id));
    for a in Attrs::new(&payload[NFGENMSG_LEN..], NFGENMSG_LEN) {
        let a = a.map_err(|e| relabel(e, S))?;
        let v = a.be32(S)?;
        match counter_of(CtaStatsAttr(a.ty())) {
            Some(c) => stats.set(c, v),
            None => stats.other.push((format!("CTA_STATS_{}", a.ty()), v)),
        }
    }
    Ok(stats)
}

/// Decodes an `IPCTNL_MSG_CT_GET_STATS` reply payload (starting with
/// `nfgenmsg`): `(entries, max_entries)`, each `None` when absent
/// (`CTA_STATS_GLOBAL_MAX_ENTRIES` is missing on old kernels).
///
/// ```
/// use conntrack_netlink::wire::decode_stats_global;
/// let p = [0, 0, 0, 0, 8, 0, 1, 0, 0, 0, 0, 42, 8, 0, 2, 0, 0, 0, 1, 0];
/// assert_eq!(decode_stats_global(&p), Ok((Some(42), Some(256))));
/// ```
pub fn decode_stats_global(payload: &[u8]) -> Result<(Option<u32>, Option<u32>), DecodeError> {
    const S: Space = Space::StatsGlobal;
    header(payload)?;
    let (mut entries, mut max) = (None, None);
    for a in Attrs::new(&payload[NFGENMSG_LEN..], NFGENMSG_LEN) {
        let a = a.map_err(|e| relabel(e, S))?;
        match CtaStatsGlobalAttr(a.ty()) {
            CTA_STATS_GLOBAL_ENTRIES => entries = Some(a.be32(S)?),
            CTA_STATS_GLOBAL_MAX_ENTRIES => max = Some(a.be32(S)?),
            _ => {}
        }
    }
    Ok((entries, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::error::Expected;

    #[test]
    fn every_counter_maps_back() {
        for c in Counter::ALL {
            if let Some(a) = attr_of(c) {
                assert_eq!(counter_of(a), Some(c));
            }
        }
        assert_eq!(attr_of(Counter::ExpectNew), None);
    }

    #[test]
    fn errors() {
        let e = decode_stats_cpu(&[0, 0]).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Truncated {
                needed: 4,
                available: 2
            }
        );
        let p = [0, 0, 0, 0, 6, 0, 10, 0, 0, 1, 0, 0];
        let e = decode_stats_cpu(&p).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::BadLength {
                len: 2,
                expected: Expected::Exactly(4)
            }
        );
        assert_eq!(
            e.to_string(),
            "CTA_STATS_DROP at byte 4: length 2, expected 4"
        );
        let p = [0, 0, 0, 0, 9, 0, 1, 0, 0, 0, 0, 0];
        let e = decode_stats_global(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "CTA_STATS_GLOBAL_ENTRIES at byte 4: nla_len 9 runs past the 8 bytes left"
        );
    }
}
