//! Raw IPv4 packets the lab sends itself: TCP segments and UDP datagrams
//! with any source address, sequence number and flags, and correct
//! checksums (`nf_conntrack_checksum`, on by default, makes conntrack
//! treat a bad TCP checksum as invalid in PREROUTING, which would hide
//! the reason a scenario wants to show).
//!
//! [`Ipv4Packet::emit`] writes the whole packet, IP header included, for a
//! raw socket with `IP_HDRINCL` (`IPPROTO_RAW`).

use std::net::Ipv4Addr;

/// TCP flag bits (RFC 9293 section 3.1).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The transport part of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment (20-byte header, no options).
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
        /// Flags ([`tcp_flags`]).
        flags: u8,
        /// Window.
        window: u16,
        /// Payload.
        payload: &'a [u8],
    },
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Payload.
        payload: &'a [u8],
    },
}

/// An IPv4 packet: 20-byte header (no options, DF clear, TTL 64) and a
/// TCP or UDP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<'a> {
    /// Source address (any: the lab spoofs sources).
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Identification field.
    pub id: u16,
    /// The segment or datagram.
    pub transport: Transport<'a>,
}

const IP_HEADER: usize = 20;
const TCP_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

/// The one's-complement sum of `data` as 16-bit big-endian words, added to
/// `sum` (RFC 1071); fold with [`fold`].
fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Ipv4Packet<'_> {
    /// The packet's length in bytes.
    pub fn len(&self) -> usize {
        IP_HEADER
            + match self.transport {
                Transport::Tcp { payload, .. } => TCP_HEADER + payload.len(),
                Transport::Udp { payload, .. } => UDP_HEADER + payload.len(),
            }
    }

    /// Always false: a packet has at least its headers.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the packet into `out` (cleared first), checksums included.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.clear();
        let total = self.len();
        let proto = match self.transport {
            Transport::Tcp { .. } => 6u8,
            Transport::Udp { .. } => 17u8,
        };
        out.extend_from_slice(&[0x45, 0]);
        out.extend_from_slice(&(total as u16).to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&[0, 0, 64, proto, 0, 0]);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
        let ip_sum = fold(sum16(0, &out[..IP_HEADER]));
        out[10..12].copy_from_slice(&ip_sum.to_be_bytes());

        let l4_start = out.len();
        match self.transport {
            Transport::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
                payload,
            } => {
                out.extend_from_slice(&src_port.to_be_bytes());
                out.extend_from_slice(&dst_port.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&ack.to_be_bytes());
                out.extend_from_slice(&[(TCP_HEADER as u8 / 4) << 4, flags]);
                out.extend_from_slice(&window.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
                out.extend_from_slice(payload);
            }
            Transport::Udp {
                src_port,
                dst_port,
                payload,
            } => {
                out.extend_from_slice(&src_port.to_be_bytes());
                out.extend_from_slice(&dst_port.to_be_bytes());
                out.extend_from_slice(&((UDP_HEADER + payload.len()) as u16).to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(payload);
            }
        }
        let l4_len = out.len() - l4_start;
        let mut pseudo = [0u8; 12];
        pseudo[..4].copy_from_slice(&self.src.octets());
        pseudo[4..8].copy_from_slice(&self.dst.octets());
        pseudo[9] = proto;
        pseudo[10..12].copy_from_slice(&(l4_len as u16).to_be_bytes());
        let mut sum = fold(sum16(sum16(0, &pseudo), &out[l4_start..]));
        let at = match self.transport {
            Transport::Tcp { .. } => l4_start + 16,
            Transport::Udp { .. } => {
                // 0 means "no checksum" in UDP; a computed 0 is sent as 0xffff.
                if sum == 0 {
                    sum = 0xffff;
                }
                l4_start + 6
            }
        };
        out[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verifies a packet's checksums the way a receiver does: the sum over
    /// the header (and over pseudo-header plus segment) folds to zero.
    fn verifies(p: &[u8]) -> bool {
        let ip_ok = fold(sum16(0, &p[..20])) == 0;
        let mut pseudo = [0u8; 12];
        pseudo[..8].copy_from_slice(&p[12..20]);
        pseudo[9] = p[9];
        pseudo[10..12].copy_from_slice(&((p.len() - 20) as u16).to_be_bytes());
        ip_ok && fold(sum16(sum16(0, &pseudo), &p[20..])) == 0
    }

    #[test]
    fn syn_matches_a_hand_checked_capture() {
        // 10.0.0.1:1024 -> 10.0.0.2:80 SYN seq 1, window 1024, id 1; the
        // checksums (0x66cd, 0x938f) were computed separately with the
        // RFC 1071 sum over the same bytes.
        let p = Ipv4Packet {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            id: 1,
            transport: Transport::Tcp {
                src_port: 1024,
                dst_port: 80,
                seq: 1,
                ack: 0,
                flags: tcp_flags::SYN,
                window: 1024,
                payload: &[],
            },
        };
        let mut out = Vec::new();
        p.emit(&mut out);
        assert_eq!(
            out,
            [
                0x45, 0x00, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06, 0x66, 0xcd, 0x0a, 0x00,
                0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, // IPv4
                0x04, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02,
                0x04, 0x00, 0x93, 0x8f, 0x00, 0x00, // TCP
            ]
        );
        assert!(verifies(&out));
        assert_eq!(out.len(), p.len());
    }

    #[test]
    fn udp_with_odd_payload_verifies() {
        let p = Ipv4Packet {
            src: Ipv4Addr::new(198, 18, 200, 7),
            dst: Ipv4Addr::new(198, 19, 0, 2),
            id: 0xbeef,
            transport: Transport::Udp {
                src_port: 40_000,
                dst_port: 9,
                payload: b"lab",
            },
        };
        let mut out = vec![1, 2, 3];
        p.emit(&mut out);
        assert_eq!(out.len(), 31);
        assert_eq!(&out[24..26], &11u16.to_be_bytes());
        assert!(verifies(&out));
    }
}
