//! The drop record the BPF program writes (`struct ct_drop_event` in
//! `bpf/conntrack_drops.bpf.c`), decoded without the tracer: a pure
//! function of bytes, so it builds without the `trace` feature and is
//! fuzzed (`fuzz/fuzz_targets/trace_record.rs`).
//!
//! Layout (native byte order, as the kernel wrote it; 216 bytes):
//!
//! | bytes | field |
//! |---|---|
//! | 0 | version ([`RECORD_VERSION`]) |
//! | 1 | entry state ([`EntryState`]) |
//! | 2 | flags (`F_CT`, `F_MARK`, `F_PACKET`, `F_COUNTED`, `F_STACK`, `F_OUT_DEV`) |
//! | 3 | the counters that moved ([`Counted`]), with `F_COUNTED` |
//! | 4..8 | CPU |
//! | 8..16 | `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) |
//! | 16..24 | where the packet was freed (a kernel text address) |
//! | 24..28 | network namespace inode |
//! | 28..32 | mark (the entry's, else the packet's) |
//! | 32..36 | `ct->status` (low 32 bits) |
//! | 36..38 | zone id |
//! | 40..80 | original tuple, kernel layout (`struct nf_conntrack_tuple`) |
//! | 80..120 | reply tuple, kernel layout |
//! | 120..216 | with `F_STACK`: [`STACK_DEPTH`] kernel return addresses, innermost first |
//!
//! `struct nf_conntrack_tuple` (include/net/netfilter/nf_conntrack_tuple.h)
//! is 40 bytes: `src.u3` (16), `src.u` (2, big endian), `src.l3num` (2,
//! native), `dst.u3` (16), `dst.u` (2), `dst.protonum` (1), `dst.dir` (1).
//! For ICMP `src.u.icmp.id` is the identifier and `dst.u.icmp` holds type
//! and code.

use conntrack_core::{L4Proto, L4Tuple, Tuple};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The record version this decoder reads.
pub const RECORD_VERSION: u8 = 2;
/// Bytes in one record.
pub const RECORD_LEN: usize = 216;
/// Kernel return addresses a record carries (`F_STACK`).
pub const STACK_DEPTH: usize = 12;
/// Bytes in one kernel tuple.
pub const TUPLE_LEN: usize = 40;

mod field {
    use std::ops::Range;
    pub const VERSION: usize = 0;
    pub const STATE: usize = 1;
    pub const FLAGS: usize = 2;
    pub const MOVED: usize = 3;
    pub const CPU: Range<usize> = 4..8;
    pub const TS: Range<usize> = 8..16;
    pub const LOCATION: Range<usize> = 16..24;
    pub const NETNS: Range<usize> = 24..28;
    pub const MARK: Range<usize> = 28..32;
    pub const STATUS: Range<usize> = 32..36;
    pub const ZONE: Range<usize> = 36..38;
    pub const ORIG: Range<usize> = 40..80;
    pub const REPLY: Range<usize> = 80..120;
    pub const STACK: Range<usize> = 120..216;
}

const F_CT: u8 = 1 << 0;
const F_MARK: u8 = 1 << 1;
const F_PACKET: u8 = 1 << 2;
const F_COUNTED: u8 = 1 << 3;
const F_STACK: u8 = 1 << 4;
const F_OUT_DEV: u8 = 1 << 5;

const M_DROP: u8 = 1 << 0;
const M_INSERT_FAILED: u8 = 1 << 1;
const M_CHAINTOOLONG: u8 = 1 << 2;

/// Which conntrack counters of the packet's namespace rose on the
/// dropping CPU since the previous netfilter drop the program saw there
/// (read by the program at the moment of the free; see
/// `conntrack_netlink::trace` for why each failure counts there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Counted {
    /// `drop` rose: table full, or an unresolved clash.
    pub drop: bool,
    /// `insert_failed` rose: a loss at confirmation.
    pub insert_failed: bool,
    /// `chaintoolong` rose: the chain cap.
    pub chaintoolong: bool,
}

impl Counted {
    /// From the record's bit set.
    pub fn from_bits(b: u8) -> Counted {
        Counted {
            drop: b & M_DROP != 0,
            insert_failed: b & M_INSERT_FAILED != 0,
            chaintoolong: b & M_CHAINTOOLONG != 0,
        }
    }

    /// The record's bit set.
    pub fn bits(self) -> u8 {
        (if self.drop { M_DROP } else { 0 })
            | (if self.insert_failed {
                M_INSERT_FAILED
            } else {
                0
            })
            | (if self.chaintoolong { M_CHAINTOOLONG } else { 0 })
    }

    /// None rose: no conntrack failure explains the drop.
    pub fn none(self) -> bool {
        self.bits() == 0
    }
}

/// What the BPF program saw of the dropped packet's conntrack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EntryState {
    /// No entry on the packet: conntrack could not create one (table
    /// full), refused the packet as invalid, or a hook before conntrack
    /// dropped it.
    NoEntry,
    /// The entry was not confirmed yet: a ruleset or NAT verdict on a
    /// flow's first packet, or `nf_ct_ext_valid_pre()` failed.
    Unconfirmed,
    /// Confirmed but never inserted and not dying: the entry lost at
    /// `__nf_conntrack_confirm` (unresolved clash or chain too long).
    InsertFailed,
    /// Dying: found dying at confirmation, or killed after insertion
    /// (`nf_ct_ext_valid_post()`).
    Dying,
    /// In the table: a ruleset verdict on a tracked flow.
    InTable,
    /// A state code this decoder does not know.
    Unknown(u8),
}

impl EntryState {
    /// From the record's code.
    pub fn from_code(c: u8) -> EntryState {
        match c {
            1 => EntryState::NoEntry,
            2 => EntryState::Unconfirmed,
            3 => EntryState::InsertFailed,
            4 => EntryState::Dying,
            5 => EntryState::InTable,
            c => EntryState::Unknown(c),
        }
    }

    /// The record's code.
    pub fn code(self) -> u8 {
        match self {
            EntryState::NoEntry => 1,
            EntryState::Unconfirmed => 2,
            EntryState::InsertFailed => 3,
            EntryState::Dying => 4,
            EntryState::InTable => 5,
            EntryState::Unknown(c) => c,
        }
    }
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Fewer bytes than a record.
    #[error("drop record truncated: {len} bytes, {RECORD_LEN} needed")]
    Truncated {
        /// Bytes given.
        len: usize,
    },
    /// A record of another version (the BPF object and this decoder come
    /// from different builds).
    #[error("drop record version {0}, this decoder reads {RECORD_VERSION}")]
    Version(u8),
}

/// A decoded drop record, before the tracer names the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawDrop {
    /// What the program saw of the entry.
    pub state: EntryState,
    /// CPU that dropped the packet.
    pub cpu: u32,
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub monotonic_ns: u64,
    /// Kernel text address that freed the packet.
    pub location: u64,
    /// Network namespace inode (as `stat -L /proc/PID/ns/net` shows).
    pub netns: u32,
    /// Original tuple: the entry's, or parsed from the packet headers
    /// when no entry was attached; `None` when neither was readable.
    pub orig: Option<Tuple>,
    /// Reply tuple of the entry (shows the NAT mapping), when there was an
    /// entry.
    pub reply: Option<Tuple>,
    /// The entry's zone, when there was an entry.
    pub zone: Option<u16>,
    /// The entry's mark, else the packet's (`None` on kernels without
    /// `CONFIG_NF_CONNTRACK_MARK`).
    pub mark: Option<u32>,
    /// The entry's status bits (low 32), when there was an entry.
    pub status: Option<u32>,
    /// The counters the drop moved, when the program had seen an earlier
    /// drop on this CPU in this namespace (its baseline); `None` for the
    /// first, which the tracer classifies from ctnetlink's counters.
    pub counted: Option<Counted>,
    /// The packet's device was its route's device: the output path
    /// (`ip_output()` sets `skb->dev` before the POSTROUTING hook).
    pub output_dev: bool,
    /// Kernel return addresses, innermost first (zero-padded), for the
    /// drops that may be NAT's: they name the hook.
    pub stack: Option<[u64; STACK_DEPTH]>,
}

fn u32_at(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    u32::from_ne_bytes(a)
}

fn u64_at(b: &[u8], r: std::ops::Range<usize>) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[r]);
    u64::from_ne_bytes(a)
}

impl RawDrop {
    /// The record of a packet dropped with no conntrack entry attached
    /// (table full, or a hook before conntrack), as the program writes it
    /// when it has no counter baseline: the tuple read from the packet's
    /// headers, nothing else known. For records a caller builds (replays,
    /// tests); set the other fields on the result.
    ///
    /// ```
    /// use conntrack_core::{L4Proto, L4Tuple, Tuple};
    /// use conntrack_netlink::trace::{EntryState, RawDrop};
    /// let t = Tuple::new(
    ///     "10.0.0.1".parse().unwrap(),
    ///     "10.0.0.2".parse().unwrap(),
    ///     L4Proto::UDP,
    ///     L4Tuple::Ports { src: 4000, dst: 53 },
    /// );
    /// let r = RawDrop::no_entry(4026531840, 1, t);
    /// assert_eq!((r.state, r.orig, r.reply), (EntryState::NoEntry, Some(t), None));
    /// assert_eq!(RawDrop::parse(&r.emit()), Ok(r));
    /// ```
    pub fn no_entry(netns: u32, cpu: u32, orig: Tuple) -> RawDrop {
        RawDrop {
            state: EntryState::NoEntry,
            cpu,
            monotonic_ns: 0,
            location: 0,
            netns,
            orig: Some(orig),
            reply: None,
            zone: None,
            mark: None,
            status: None,
            counted: None,
            output_dev: false,
            stack: None,
        }
    }

    /// Decodes one record. Never panics; longer input is accepted (the
    /// ring buffer rounds sizes up), shorter is [`RecordError::Truncated`].
    pub fn parse(b: &[u8]) -> Result<RawDrop, RecordError> {
        if b.len() < RECORD_LEN {
            return Err(RecordError::Truncated { len: b.len() });
        }
        if b[field::VERSION] != RECORD_VERSION {
            return Err(RecordError::Version(b[field::VERSION]));
        }
        let flags = b[field::FLAGS];
        let ct = flags & F_CT != 0;
        let orig = if ct || flags & F_PACKET != 0 {
            decode_tuple(&b[field::ORIG])
        } else {
            None
        };
        Ok(RawDrop {
            state: EntryState::from_code(b[field::STATE]),
            cpu: u32_at(b, field::CPU),
            monotonic_ns: u64_at(b, field::TS),
            location: u64_at(b, field::LOCATION),
            netns: u32_at(b, field::NETNS),
            orig,
            reply: if ct {
                decode_tuple(&b[field::REPLY])
            } else {
                None
            },
            zone: ct.then(|| u16::from_ne_bytes([b[field::ZONE.start], b[field::ZONE.start + 1]])),
            mark: (flags & F_MARK != 0).then(|| u32_at(b, field::MARK)),
            status: ct.then(|| u32_at(b, field::STATUS)),
            counted: (flags & F_COUNTED != 0).then(|| Counted::from_bits(b[field::MOVED])),
            output_dev: flags & F_OUT_DEV != 0,
            stack: (flags & F_STACK != 0).then(|| {
                let mut s = [0u64; STACK_DEPTH];
                for (i, v) in s.iter_mut().enumerate() {
                    let at = field::STACK.start + i * 8;
                    *v = u64_at(b, at..at + 8);
                }
                s
            }),
        })
    }

    /// Writes the record as the BPF program would (for tests and fuzz
    /// seeds).
    pub fn emit(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[field::VERSION] = RECORD_VERSION;
        b[field::STATE] = self.state.code();
        let ct = self.status.is_some();
        let mut flags = 0;
        if ct {
            flags |= F_CT;
        } else if self.orig.is_some() {
            flags |= F_PACKET;
        }
        if self.mark.is_some() {
            flags |= F_MARK;
        }
        if let Some(c) = self.counted {
            flags |= F_COUNTED;
            b[field::MOVED] = c.bits();
        }
        if self.output_dev {
            flags |= F_OUT_DEV;
        }
        if let Some(s) = self.stack {
            flags |= F_STACK;
            for (i, v) in s.iter().enumerate() {
                let at = field::STACK.start + i * 8;
                b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
            }
        }
        b[field::FLAGS] = flags;
        b[field::CPU].copy_from_slice(&self.cpu.to_ne_bytes());
        b[field::TS].copy_from_slice(&self.monotonic_ns.to_ne_bytes());
        b[field::LOCATION].copy_from_slice(&self.location.to_ne_bytes());
        b[field::NETNS].copy_from_slice(&self.netns.to_ne_bytes());
        b[field::MARK].copy_from_slice(&self.mark.unwrap_or(0).to_ne_bytes());
        b[field::STATUS].copy_from_slice(&self.status.unwrap_or(0).to_ne_bytes());
        b[field::ZONE].copy_from_slice(&self.zone.unwrap_or(0).to_ne_bytes());
        if let Some(t) = self.orig {
            b[field::ORIG].copy_from_slice(&emit_tuple(&t));
        }
        if let Some(t) = self.reply {
            b[field::REPLY].copy_from_slice(&emit_tuple(&t));
        }
        b
    }
}

/// `NFPROTO_IPV4` / `AF_INET`.
const AF_INET: u16 = 2;
/// `NFPROTO_IPV6` / `AF_INET6`.
const AF_INET6: u16 = 10;

/// Protocols whose tuple carries two 16-bit ports (or GRE keys).
fn has_ports(p: L4Proto) -> bool {
    matches!(p.0, 6 | 17 | 33 | 47 | 132 | 136)
}

/// Decodes a kernel `struct nf_conntrack_tuple` (40 bytes); `None` for a
/// family other than IPv4/IPv6 or fewer than 40 bytes.
pub fn decode_tuple(b: &[u8]) -> Option<Tuple> {
    let b = b.get(..TUPLE_LEN)?;
    let l3 = u16::from_ne_bytes([b[18], b[19]]);
    let (src, dst) = match l3 {
        AF_INET => (
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
            IpAddr::V4(Ipv4Addr::new(b[20], b[21], b[22], b[23])),
        ),
        AF_INET6 => {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&b[0..16]);
            d.copy_from_slice(&b[20..36]);
            (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)))
        }
        _ => return None,
    };
    let proto = L4Proto(b[38]);
    let src_u = u16::from_be_bytes([b[16], b[17]]);
    let dst_u = u16::from_be_bytes([b[36], b[37]]);
    let l4 = if has_ports(proto) {
        L4Tuple::Ports {
            src: src_u,
            dst: dst_u,
        }
    } else if proto.0 == 1 || proto.0 == 58 {
        L4Tuple::Icmp {
            kind: b[36],
            code: b[37],
            id: src_u,
        }
    } else {
        L4Tuple::None
    };
    Some(Tuple::new(src, dst, proto, l4))
}

/// Encodes a tuple in the kernel layout (the inverse of [`decode_tuple`]).
pub fn emit_tuple(t: &Tuple) -> [u8; TUPLE_LEN] {
    let mut b = [0u8; TUPLE_LEN];
    let l3 = match (t.src, t.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            b[0..4].copy_from_slice(&s.octets());
            b[20..24].copy_from_slice(&d.octets());
            AF_INET
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            b[0..16].copy_from_slice(&v6(s));
            b[20..36].copy_from_slice(&v6(d));
            AF_INET6
        }
    };
    b[18..20].copy_from_slice(&l3.to_ne_bytes());
    b[38] = t.proto.0;
    match t.l4 {
        L4Tuple::Ports { src, dst } => {
            b[16..18].copy_from_slice(&src.to_be_bytes());
            b[36..38].copy_from_slice(&dst.to_be_bytes());
        }
        L4Tuple::Icmp { kind, code, id } => {
            b[16..18].copy_from_slice(&id.to_be_bytes());
            b[36] = kind;
            b[37] = code;
        }
        L4Tuple::None => {}
    }
    b
}

impl fmt::Display for RawDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} netns {} cpu {}", self.state, self.netns, self.cpu)?;
        if let Some(o) = &self.orig {
            write!(f, " {o:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tcp(a: &str, sp: u16, b: &str, dp: u16) -> Tuple {
        Tuple::new(
            a.parse().unwrap(),
            b.parse().unwrap(),
            L4Proto::TCP,
            L4Tuple::Ports { src: sp, dst: dp },
        )
    }

    #[test]
    fn kernel_tuple_bytes_decode() {
        // 10.0.0.1:40000 -> 10.0.0.2:443 TCP, as the kernel lays it out
        // on a little-endian machine (l3num native, ports big endian).
        let mut b = [0u8; 40];
        b[0..4].copy_from_slice(&[10, 0, 0, 1]);
        b[16..18].copy_from_slice(&[0x9c, 0x40]);
        b[18..20].copy_from_slice(&2u16.to_ne_bytes());
        b[20..24].copy_from_slice(&[10, 0, 0, 2]);
        b[36..38].copy_from_slice(&[0x01, 0xbb]);
        b[38] = 6;
        assert_eq!(
            decode_tuple(&b),
            Some(tcp("10.0.0.1", 40000, "10.0.0.2", 443))
        );
        assert_eq!(emit_tuple(&tcp("10.0.0.1", 40000, "10.0.0.2", 443)), b);
    }

    #[test]
    fn icmp_and_unknown_family() {
        let t = Tuple::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            L4Proto(58),
            L4Tuple::Icmp {
                kind: 128,
                code: 0,
                id: 7,
            },
        );
        assert_eq!(decode_tuple(&emit_tuple(&t)), Some(t));
        let mut b = emit_tuple(&t);
        b[18..20].copy_from_slice(&7u16.to_ne_bytes());
        assert_eq!(decode_tuple(&b), None);
        assert_eq!(decode_tuple(&b[..39]), None);
    }

    #[test]
    fn record_round_trip_and_errors() {
        let r = RawDrop {
            state: EntryState::InsertFailed,
            cpu: 1,
            monotonic_ns: 123_456_789,
            location: 0xffff_ffff_81f8_0000,
            netns: 4026532000,
            orig: Some(tcp("10.0.0.1", 40000, "10.0.0.2", 443)),
            reply: Some(tcp("10.0.0.2", 443, "10.0.0.1", 40000)),
            zone: Some(0),
            mark: Some(0x10),
            status: Some(8),
            counted: Some(Counted {
                drop: true,
                insert_failed: true,
                chaintoolong: false,
            }),
            output_dev: true,
            stack: Some([0xffff_ffff_8100_0000, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0]),
        };
        let b = r.emit();
        assert_eq!(RawDrop::parse(&b), Ok(r));
        assert_eq!(
            RawDrop::parse(&b[..120]),
            Err(RecordError::Truncated { len: 120 })
        );
        let mut v = b;
        v[0] = 9;
        assert_eq!(RawDrop::parse(&v), Err(RecordError::Version(9)));
        // Ring buffer samples may be padded.
        let mut long = b.to_vec();
        long.extend_from_slice(&[0; 8]);
        assert_eq!(RawDrop::parse(&long), Ok(r));
    }

    #[test]
    fn no_entry_record_has_packet_tuple_only() {
        let mut r = RawDrop::no_entry(3, 0, tcp("10.0.0.1", 1, "10.0.0.2", 2));
        (r.monotonic_ns, r.location, r.mark) = (1, 2, Some(0));
        assert_eq!(RawDrop::parse(&r.emit()), Ok(r));
    }

    fn arb_tuple() -> impl Strategy<Value = Tuple> {
        (
            any::<bool>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            prop::sample::select(vec![1u8, 6, 17, 47, 58, 132, 2]),
            any::<(u16, u16, u8, u8)>(),
        )
            .prop_map(|(v4, s, d, p, (a, b, k, c))| {
                let (src, dst) = if v4 {
                    (
                        IpAddr::V4(Ipv4Addr::new(s[0], s[1], s[2], s[3])),
                        IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])),
                    )
                } else {
                    (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)))
                };
                let proto = L4Proto(p);
                let l4 = if has_ports(proto) {
                    L4Tuple::Ports { src: a, dst: b }
                } else if p == 1 || p == 58 {
                    L4Tuple::Icmp {
                        kind: k,
                        code: c,
                        id: a,
                    }
                } else {
                    L4Tuple::None
                };
                Tuple::new(src, dst, proto, l4)
            })
    }

    proptest! {
        #[test]
        fn tuples_round_trip(t in arb_tuple()) {
            prop_assert_eq!(decode_tuple(&emit_tuple(&t)), Some(t));
        }

        #[test]
        fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RawDrop::parse(&b);
        }

        #[test]
        fn records_round_trip(
            o in arb_tuple(), r in arb_tuple(), cpu: u32, ns: u32, st in 1u8..6,
            moved in proptest::option::of(0u8..8), out: bool,
            stack in proptest::option::of(any::<[u64; STACK_DEPTH]>()),
        ) {
            let d = RawDrop {
                state: EntryState::from_code(st), cpu, monotonic_ns: 5, location: 6, netns: ns,
                orig: Some(o), reply: Some(r), zone: Some(3), mark: Some(4), status: Some(8),
                counted: moved.map(Counted::from_bits), output_dev: out, stack,
            };
            prop_assert_eq!(RawDrop::parse(&d.emit()), Ok(d));
        }
    }
}
