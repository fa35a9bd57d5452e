//! The text form of a [`Rule`] and of a [`FilterSet`]: one rule per line,
//! `key=value` terms separated by blanks, all of which must hold.
//!
//! | key | value | condition |
//! |---|---|---|
//! | `family` | `ipv4`, `ipv6` | the flow's family |
//! | `proto` | `tcp`, `udp`, `icmp`, ... or a number | layer 4 protocol |
//! | `zone` | `0`..`65535` | the flow's zone |
//! | `mark` | `V` or `V/M` (decimal or `0x` hex) | `mark & M == V & M` (`M` all ones by default) |
//! | `status` | `FLAGS` or `FLAGS/MASK` (`ASSURED,SEEN_REPLY`, a number, `0`) | `status & MASK == FLAGS & MASK` (`MASK` = `FLAGS` by default) |
//! | `orig-src`, `orig-dst` (`src`, `dst`) | address or network (`10.0.0.0/8`) | original tuple's addresses |
//! | `reply-src`, `reply-dst` | address or network | reply tuple's addresses |
//! | `orig-sport`, `orig-dport` (`sport`, `dport`, `orig-port-src`, `orig-port-dst`) | port | original tuple's ports |
//! | `reply-sport`, `reply-dport` (`reply-port-src`, `reply-port-dst`) | port | reply tuple's ports |
//! | `icmp-type`, `icmp-code`, `icmp-id` | number | original tuple's ICMP fields |
//! | `reply-icmp-type`, `reply-icmp-code`, `reply-icmp-id` | number | reply tuple's ICMP fields |
//!
//! The long names are the `conntrack` CLI's options without their dashes.
//! A rule matching every flow must be written `all`: an empty line is not
//! a rule. In a set, `#` starts a comment and blank lines are skipped.
//! Keys may not repeat, and a rule no flow can satisfy (an IPv6 network
//! with `family=ipv4`, ports with `proto=icmp`) is an error.
//!
//! ```
//! use conntrack_netlink::bulk::FilterSet;
//! let text = concat!(
//!     "# kube-proxy, Service 10.96.0.10:53/UDP\n",
//!     "proto=udp orig-dst=10.96.0.10 orig-dport=53 reply-src=10.244.1.7   # endpoint gone\n",
//!     "\n",
//!     "proto=udp orig-dport=30053 reply-src=10.244.1.7   # its NodePort\n",
//! );
//! let set = FilterSet::parse(text).unwrap();
//! assert_eq!(set.len(), 2);
//! let e = FilterSet::parse("proto=udp\nproto=udp dprot=53").unwrap_err();
//! assert_eq!(e.to_string(), "line 2: at byte 10: unknown key (see the table in conntrack_netlink::bulk::syntax)");
//! ```

use super::rule::{Cidr, Rule};
use super::set::FilterSet;
use conntrack_core::{L3Family, L4Proto, Status};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// What is wrong with a rule's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RuleErrorKind {
    /// The text has no term (an empty rule must be written `all`).
    Empty,
    /// A term is not `key=value`.
    NotKeyValue,
    /// The key is not one of the table's.
    UnknownKey,
    /// The key appeared before in this rule.
    Repeated,
    /// Not a number in range (decimal, or hex with `0x`).
    BadNumber,
    /// Not an address or network (`10.0.0.1`, `10.0.0.0/8`, `fd00::/64`).
    BadAddress,
    /// Not a protocol name or number.
    BadProto,
    /// Not `ipv4` or `ipv6`.
    BadFamily,
    /// Not status flag names (`ASSURED,SEEN_REPLY`) or a number.
    BadStatus,
    /// `all` together with conditions.
    AllWithConditions,
    /// The conditions contradict each other (families, ports and ICMP,
    /// ports with a protocol without ports).
    Unsatisfiable,
}

impl fmt::Display for RuleErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleErrorKind::Empty => "no condition (write `all` for a rule matching every flow)",
            RuleErrorKind::NotKeyValue => "not key=value",
            RuleErrorKind::UnknownKey => {
                "unknown key (see the table in conntrack_netlink::bulk::syntax)"
            }
            RuleErrorKind::Repeated => "key given twice",
            RuleErrorKind::BadNumber => "not a number in range",
            RuleErrorKind::BadAddress => "not an address or network",
            RuleErrorKind::BadProto => "not a protocol name or number",
            RuleErrorKind::BadFamily => "not ipv4 or ipv6",
            RuleErrorKind::BadStatus => "not status flags (e.g. ASSURED,SEEN_REPLY) or a number",
            RuleErrorKind::AllWithConditions => "`all` takes no other condition",
            RuleErrorKind::Unsatisfiable => "the conditions contradict each other",
        })
    }
}

/// A rule's text could not be read: what and where (byte offset of the
/// term in the rule's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("at byte {offset}: {kind}")]
pub struct RuleError {
    /// Byte offset of the offending term.
    pub offset: usize,
    /// What is wrong.
    pub kind: RuleErrorKind,
}

/// A set's text could not be read: the line (1-based) and the rule error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct SetError {
    /// The line, counting from 1.
    pub line: usize,
    /// What is wrong in it.
    pub error: RuleError,
}

/// The keys, each with the field it sets (one bit per field to catch
/// repeats).
#[derive(Clone, Copy)]
enum Key {
    Family,
    Proto,
    Zone,
    Mark,
    Status,
    Addr { reply: bool, dst: bool },
    Port { reply: bool, dst: bool },
    IcmpType { reply: bool },
    IcmpCode { reply: bool },
    IcmpId { reply: bool },
}

impl Key {
    fn of(name: &str) -> Option<Key> {
        Some(match name {
            "family" => Key::Family,
            "proto" | "protonum" => Key::Proto,
            "zone" => Key::Zone,
            "mark" => Key::Mark,
            "status" => Key::Status,
            "src" | "orig-src" => Key::Addr {
                reply: false,
                dst: false,
            },
            "dst" | "orig-dst" => Key::Addr {
                reply: false,
                dst: true,
            },
            "reply-src" => Key::Addr {
                reply: true,
                dst: false,
            },
            "reply-dst" => Key::Addr {
                reply: true,
                dst: true,
            },
            "sport" | "orig-sport" | "orig-port-src" => Key::Port {
                reply: false,
                dst: false,
            },
            "dport" | "orig-dport" | "orig-port-dst" => Key::Port {
                reply: false,
                dst: true,
            },
            "reply-sport" | "reply-port-src" => Key::Port {
                reply: true,
                dst: false,
            },
            "reply-dport" | "reply-port-dst" => Key::Port {
                reply: true,
                dst: true,
            },
            "icmp-type" => Key::IcmpType { reply: false },
            "icmp-code" => Key::IcmpCode { reply: false },
            "icmp-id" => Key::IcmpId { reply: false },
            "reply-icmp-type" => Key::IcmpType { reply: true },
            "reply-icmp-code" => Key::IcmpCode { reply: true },
            "reply-icmp-id" => Key::IcmpId { reply: true },
            _ => return None,
        })
    }

    fn bit(self) -> u32 {
        let d = |reply: bool, dst: bool| u32::from(reply) * 2 + u32::from(dst);
        match self {
            Key::Family => 1,
            Key::Proto => 1 << 1,
            Key::Zone => 1 << 2,
            Key::Mark => 1 << 3,
            Key::Status => 1 << 4,
            Key::Addr { reply, dst } => 1 << (5 + d(reply, dst)),
            Key::Port { reply, dst } => 1 << (9 + d(reply, dst)),
            Key::IcmpType { reply } => 1 << (13 + u32::from(reply)),
            Key::IcmpCode { reply } => 1 << (15 + u32::from(reply)),
            Key::IcmpId { reply } => 1 << (17 + u32::from(reply)),
        }
    }
}

/// A number in decimal or `0x` hex.
fn number<T: TryFrom<u64>>(s: &str) -> Option<T> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if !h.is_empty() && h.len() <= 16 => u64::from_str_radix(h, 16).ok()?,
        Some(_) => return None,
        None if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()?
        }
        None => return None,
    };
    T::try_from(v).ok()
}

/// Status flags: names joined by `,` (ASCII case-insensitive), or a number.
fn status_flags(s: &str) -> Option<Status> {
    if let Some(n) = number::<u32>(s) {
        return Some(Status::from_bits_retain(n));
    }
    let mut st = Status::empty();
    for name in s.split(',') {
        let upper = name.to_ascii_uppercase();
        st |= Status::from_name(&upper)?;
    }
    Some(st)
}

/// Writes status flags the way [`status_flags`] reads them: names, or a
/// number when a bit has no name (see [`status_is_names_or_number`]).
fn write_status(f: &mut fmt::Formatter<'_>, s: Status) -> fmt::Result {
    if s.is_empty() {
        return f.write_str("0");
    }
    if s.bits() & !Status::all().bits() != 0 {
        return write!(f, "{:#x}", s.bits());
    }
    for (i, (name, _)) in s.iter_names().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        f.write_str(name)?;
    }
    Ok(())
}

/// Whether [`write_status`] can write `s` as names only (or as a number
/// only).
fn status_is_names_or_number(s: Status) -> bool {
    let unnamed = s.bits() & !Status::all().bits();
    unnamed == 0 || unnamed == s.bits()
}

fn term_err(offset: usize, kind: RuleErrorKind) -> RuleError {
    RuleError { offset, kind }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Rule, RuleError> {
        let mut rule = Rule::new();
        let mut seen = 0u32;
        let mut all = None;
        let mut terms = 0;
        let base = s.as_ptr() as usize;
        for term in s.split_ascii_whitespace() {
            let at = term.as_ptr() as usize - base;
            let err = |kind| term_err(at, kind);
            terms += 1;
            if term == "all" {
                all = Some(at);
                continue;
            }
            let (k, v) = term
                .split_once('=')
                .ok_or(err(RuleErrorKind::NotKeyValue))?;
            let key = Key::of(k).ok_or(err(RuleErrorKind::UnknownKey))?;
            if seen & key.bit() != 0 {
                return Err(err(RuleErrorKind::Repeated));
            }
            seen |= key.bit();
            match key {
                Key::Family => {
                    rule.family = Some(match L3Family::from_name(v) {
                        Some(f @ (L3Family::INET | L3Family::INET6)) => f,
                        _ => return Err(err(RuleErrorKind::BadFamily)),
                    });
                }
                Key::Proto => {
                    let p = L4Proto::from_name(v).ok_or(err(RuleErrorKind::BadProto))?;
                    rule.proto = Some(p);
                }
                Key::Zone => rule.zone = Some(number(v).ok_or(err(RuleErrorKind::BadNumber))?),
                Key::Mark => {
                    let (val, mask) = match v.split_once('/') {
                        Some((a, b)) => (number(a), number(b)),
                        None => (number(v), Some(u32::MAX)),
                    };
                    let (val, mask) = val.zip(mask).ok_or(err(RuleErrorKind::BadNumber))?;
                    rule = rule.mark(val, mask);
                }
                Key::Status => {
                    let (val, mask) = match v.split_once('/') {
                        Some((a, b)) => (status_flags(a), status_flags(b)),
                        None => (status_flags(v), status_flags(v)),
                    };
                    let (val, mask) = val.zip(mask).ok_or(err(RuleErrorKind::BadStatus))?;
                    rule = rule.status(val, mask);
                }
                Key::Addr { reply, dst } => {
                    let net = parse_cidr(v).ok_or(err(RuleErrorKind::BadAddress))?;
                    let t = if reply {
                        &mut rule.reply
                    } else {
                        &mut rule.orig
                    };
                    if dst {
                        t.dst = Some(net);
                    } else {
                        t.src = Some(net);
                    }
                }
                Key::Port { reply, dst } => {
                    let p = number(v).ok_or(err(RuleErrorKind::BadNumber))?;
                    let t = if reply {
                        &mut rule.reply
                    } else {
                        &mut rule.orig
                    };
                    if dst {
                        t.dst_port = Some(p);
                    } else {
                        t.src_port = Some(p);
                    }
                }
                Key::IcmpType { reply } => {
                    let x = number(v).ok_or(err(RuleErrorKind::BadNumber))?;
                    if reply {
                        &mut rule.reply
                    } else {
                        &mut rule.orig
                    }
                    .icmp_type = Some(x);
                }
                Key::IcmpCode { reply } => {
                    let x = number(v).ok_or(err(RuleErrorKind::BadNumber))?;
                    if reply {
                        &mut rule.reply
                    } else {
                        &mut rule.orig
                    }
                    .icmp_code = Some(x);
                }
                Key::IcmpId { reply } => {
                    let x = number(v).ok_or(err(RuleErrorKind::BadNumber))?;
                    if reply {
                        &mut rule.reply
                    } else {
                        &mut rule.orig
                    }
                    .icmp_id = Some(x);
                }
            }
        }
        match all {
            Some(at) if terms > 1 => return Err(term_err(at, RuleErrorKind::AllWithConditions)),
            Some(_) => return Ok(rule),
            None if terms == 0 => return Err(term_err(0, RuleErrorKind::Empty)),
            None => {}
        }
        if !rule.is_satisfiable() {
            return Err(term_err(0, RuleErrorKind::Unsatisfiable));
        }
        Ok(rule)
    }
}

/// `10.0.0.1`, `10.0.0.0/8`, `fd00::/64`.
fn parse_cidr(s: &str) -> Option<Cidr> {
    match s.split_once('/') {
        None => s.parse::<IpAddr>().ok().map(Cidr::host),
        Some((a, p)) => {
            let a: IpAddr = a.parse().ok()?;
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Cidr::new(a, p.parse().ok()?)
        }
    }
}

impl FromStr for Cidr {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Cidr, RuleError> {
        parse_cidr(s).ok_or(term_err(0, RuleErrorKind::BadAddress))
    }
}

impl fmt::Display for Rule {
    /// The text form ([`FromStr`] reads it back; a predicate is not
    /// written). A rule without conditions is `all`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut term = |f: &mut fmt::Formatter<'_>, key: &str| -> fmt::Result {
            write!(f, "{sep}{key}=")?;
            sep = " ";
            Ok(())
        };
        if let Some(fam) = self.family {
            term(f, "family")?;
            write!(f, "{fam}")?;
        }
        if let Some(p) = self.proto {
            term(f, "proto")?;
            write!(f, "{p}")?;
        }
        if let Some(z) = self.zone {
            term(f, "zone")?;
            write!(f, "{z}")?;
        }
        if let Some((v, m)) = self.mark {
            term(f, "mark")?;
            if m == u32::MAX {
                write!(f, "{v:#x}")?;
            } else {
                write!(f, "{v:#x}/{m:#x}")?;
            }
        }
        if let Some((v, m)) = self.status {
            term(f, "status")?;
            if !(status_is_names_or_number(v) && status_is_names_or_number(m)) {
                write!(f, "{:#x}/{:#x}", v.bits(), m.bits())?;
            } else if v == m && !v.is_empty() {
                write_status(f, v)?;
            } else {
                write_status(f, v)?;
                f.write_str("/")?;
                write_status(f, m)?;
            }
        }
        for (t, p) in [(&self.orig, "orig-"), (&self.reply, "reply-")] {
            if let Some(n) = t.src {
                term(f, &format!("{p}src"))?;
                write!(f, "{n}")?;
            }
            if let Some(n) = t.dst {
                term(f, &format!("{p}dst"))?;
                write!(f, "{n}")?;
            }
            if let Some(x) = t.src_port {
                term(f, &format!("{p}sport"))?;
                write!(f, "{x}")?;
            }
            if let Some(x) = t.dst_port {
                term(f, &format!("{p}dport"))?;
                write!(f, "{x}")?;
            }
            let ip = if p == "orig-" { "" } else { "reply-" };
            if let Some(x) = t.icmp_type {
                term(f, &format!("{ip}icmp-type"))?;
                write!(f, "{x}")?;
            }
            if let Some(x) = t.icmp_code {
                term(f, &format!("{ip}icmp-code"))?;
                write!(f, "{x}")?;
            }
            if let Some(x) = t.icmp_id {
                term(f, &format!("{ip}icmp-id"))?;
                write!(f, "{x}")?;
            }
        }
        if sep.is_empty() {
            f.write_str("all")?;
        }
        Ok(())
    }
}

impl FilterSet {
    /// Reads a set: one [`Rule`] per line in the text form; `#` starts a
    /// comment, blank lines are skipped.
    pub fn parse(text: &str) -> Result<FilterSet, SetError> {
        let mut set = FilterSet::new();
        for (i, line) in text.lines().enumerate() {
            let body = line.split_once('#').map_or(line, |(b, _)| b);
            if body.trim().is_empty() {
                continue;
            }
            let rule = body
                .parse::<Rule>()
                .map_err(|error| SetError { line: i + 1, error })?;
            set.push(rule);
        }
        Ok(set)
    }
}
