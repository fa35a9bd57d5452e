//! Printing [`Flow`]s the way `conntrack -L` prints them.

use super::LabelMap;
use super::ctime::Ctime;
use super::parse::{cli_has_ports, cli_proto_name};
use crate::flow::{Counters, Flow, ProtoInfo};
use crate::proto::L4Proto;
use crate::status::Status;
use crate::tuple::{L4Tuple, Tuple};
use core::fmt::{self, Write};
use std::net::IpAddr;

/// Which `-o` options the output imitates.
///
/// ```
/// use conntrack_core::cli::list::ListFormat;
/// let f = ListFormat::EXTENDED.with_id();
/// assert!(f.extended && f.id && !f.ktimestamp);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFormat<'m> {
    /// `-o extended`: the layer 3 name and number first (`ipv4     2 `).
    pub extended: bool,
    /// `-o id`: `id=` after `use=`.
    pub id: bool,
    /// `-o ktimestamp`: `[start=...]` and `[stop=...]` after `delta-time=`
    /// (printed as UTC).
    pub ktimestamp: bool,
    /// `-o labels` with this `connlabel.conf` map: `labels=` with the names
    /// of the set bits the map names. `None`: no labels, as without
    /// `-o labels`.
    pub labels: Option<&'m LabelMap>,
    /// The time `delta-time=` of a running flow is measured to, in seconds
    /// since the Unix epoch. `None`: the current time, as the CLI does.
    pub now: Option<u64>,
}

impl<'m> ListFormat<'m> {
    /// `conntrack -L`.
    pub const DEFAULT: ListFormat<'static> = ListFormat {
        extended: false,
        id: false,
        ktimestamp: false,
        labels: None,
        now: None,
    };

    /// `conntrack -L -o extended`.
    pub const EXTENDED: ListFormat<'static> = ListFormat {
        extended: true,
        ..ListFormat::DEFAULT
    };

    /// Adds `-o id`.
    pub fn with_id(self) -> Self {
        ListFormat { id: true, ..self }
    }

    /// Adds `-o ktimestamp`.
    pub fn with_ktimestamp(self) -> Self {
        ListFormat {
            ktimestamp: true,
            ..self
        }
    }

    /// Adds `-o labels` with a label map.
    pub fn with_labels<'n>(self, map: &'n LabelMap) -> ListFormat<'n> {
        ListFormat {
            extended: self.extended,
            id: self.id,
            ktimestamp: self.ktimestamp,
            labels: Some(map),
            now: self.now,
        }
    }

    /// Measures `delta-time=` to this time (seconds since the Unix epoch).
    pub fn with_now(self, unix_secs: u64) -> Self {
        ListFormat {
            now: Some(unix_secs),
            ..self
        }
    }
}

/// An address as `inet_ntoa`/glibc `inet_ntop` print it: like Rust's
/// `Display`, except that glibc keeps the dotted form for IPv4-compatible
/// IPv6 addresses (`::1.2.3.4`).
struct CliAddr(IpAddr);

impl fmt::Display for CliAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V6(a) if a.segments()[..6] == [0; 6] && a.segments()[6] != 0 => {
                let o = a.octets();
                write!(f, "::{}.{}.{}.{}", o[12], o[13], o[14], o[15])
            }
            a => a.fmt(f),
        }
    }
}

/// One output line: fields separated by one blank (the CLI prints a blank
/// after every field and deletes the last one).
struct Line<'w, W: Write> {
    out: &'w mut W,
    started: bool,
}

impl<W: Write> Line<'_, W> {
    fn field(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        if self.started {
            self.out.write_char(' ')?;
        }
        self.started = true;
        self.out.write_fmt(args)
    }
}

fn write_tuple<W: Write>(l: &mut Line<'_, W>, t: &Tuple, proto: L4Proto) -> fmt::Result {
    l.field(format_args!(
        "src={} dst={}",
        CliAddr(t.src),
        CliAddr(t.dst)
    ))?;
    let (a, b) = match t.l4 {
        L4Tuple::Ports { src, dst } => (src, dst),
        _ => (0, 0),
    };
    if cli_has_ports(proto) {
        l.field(format_args!("sport={a} dport={b}"))
    } else if proto == L4Proto::GRE {
        l.field(format_args!("srckey=0x{a:x} dstkey=0x{b:x}"))
    } else if proto.is_icmp() {
        let (kind, code, id) = match t.l4 {
            L4Tuple::Icmp { kind, code, id } => (kind, code, id),
            _ => (0, 0, 0),
        };
        l.field(format_args!("type={kind} code={code} id={id}"))
    } else {
        Ok(())
    }
}

fn write_direction<W: Write>(
    l: &mut Line<'_, W>,
    t: &Tuple,
    proto: L4Proto,
    zone_key: &str,
    counters: Option<Counters>,
) -> fmt::Result {
    write_tuple(l, t, proto)?;
    if let Some(z) = t.zone {
        l.field(format_args!("{zone_key}={z}"))?;
    }
    if let Some(c) = counters {
        l.field(format_args!("packets={} bytes={}", c.packets, c.bytes))?;
    }
    Ok(())
}

/// Writes one line as [`render_line`] does, without a newline, into any
/// `fmt::Write` (reuse one `String` for many flows: no other allocation).
///
/// ```
/// use conntrack_core::cli::list::{parse_line, write_line, ListFormat};
/// let flow = parse_line("unknown  253 49 src=10.0.0.1 dst=10.0.0.2 [UNREPLIED] \
///                        src=10.0.0.2 dst=10.0.0.1 mark=0 use=1")?;
/// let mut out = String::new();
/// write_line(&mut out, &flow, ListFormat::EXTENDED).unwrap();
/// assert_eq!(out, "ipv4     2 unknown  253 49 src=10.0.0.1 dst=10.0.0.2 [UNREPLIED] \
///                  src=10.0.0.2 dst=10.0.0.1 mark=0 use=1");
/// # Ok::<(), conntrack_core::cli::list::ListError>(())
/// ```
pub fn write_line<W: Write>(out: &mut W, flow: &Flow, format: ListFormat<'_>) -> fmt::Result {
    let l = &mut Line {
        out,
        started: false,
    };
    let proto = flow.proto();
    if format.extended {
        let (name, num) = match flow.orig.src {
            IpAddr::V4(_) => ("ipv4", 2),
            IpAddr::V6(_) => ("ipv6", 10),
        };
        l.field(format_args!("{name:<8} {num}"))?;
    }
    l.field(format_args!("{:<8} {}", cli_proto_name(proto), proto.0))?;
    if let Some(t) = flow.timeout {
        l.field(format_args!("{t}"))?;
    }
    let state = match flow.protoinfo {
        Some(ProtoInfo::Tcp(t)) => Some(t.state.name()),
        Some(ProtoInfo::Sctp(s)) => Some(s.state.name()),
        Some(ProtoInfo::Dccp(d)) => Some(d.state.name()),
        None => None,
    };
    if let Some(name) = state {
        // libnetfilter_conntrack prints NONE for states it has no name for.
        l.field(format_args!("{}", name.unwrap_or("NONE")))?;
    }
    write_direction(l, &flow.orig, proto, "zone-orig", flow.counters_orig)?;
    if !flow.status.contains(Status::SEEN_REPLY) {
        l.field(format_args!("[UNREPLIED]"))?;
    }
    write_direction(l, &flow.reply, proto, "zone-reply", flow.counters_reply)?;
    if flow.status.contains(Status::HW_OFFLOAD) {
        l.field(format_args!("[HW_OFFLOAD]"))?;
    } else if flow.status.contains(Status::OFFLOAD) {
        l.field(format_args!("[OFFLOAD]"))?;
    } else if flow.status.contains(Status::ASSURED) {
        l.field(format_args!("[ASSURED]"))?;
    }
    if let Some(m) = flow.mark {
        l.field(format_args!("mark={m}"))?;
    }
    if let Some(s) = flow.secmark {
        l.field(format_args!("secmark={s}"))?;
    }
    if let Some(s) = &flow.secctx {
        l.field(format_args!("secctx={s}"))?;
    }
    if let Some(z) = flow.zone {
        l.field(format_args!("zone={z}"))?;
    }
    if let Some(ts) = flow.timestamp {
        let start = ts.start / 1_000_000_000;
        let stop = match ts.stop {
            Some(s) if s != 0 => s / 1_000_000_000,
            _ => format.now.unwrap_or_else(unix_now),
        };
        // The CLI subtracts time_t values and prints the result unsigned.
        l.field(format_args!("delta-time={}", stop.wrapping_sub(start)))?;
        if format.ktimestamp {
            l.field(format_args!("[start={}]", Ctime(start)))?;
            if let Some(s) = ts.stop {
                l.field(format_args!("[stop={}]", Ctime(s / 1_000_000_000)))?;
            }
        }
    }
    if let Some(h) = &flow.helper {
        l.field(format_args!("helper={h}"))?;
    }
    if let Some(u) = flow.use_count {
        l.field(format_args!("use={u}"))?;
    }
    if let (true, Some(id)) = (format.id, flow.id) {
        l.field(format_args!("id={id}"))?;
    }
    if let (Some(map), Some(labels)) = (format.labels, flow.labels) {
        // Only named bits are printed; with none, the CLI prints `labels`.
        l.field(format_args!("labels"))?;
        let mut sep = '=';
        for name in labels.iter().filter_map(|b| map.name(b)) {
            l.out.write_char(sep)?;
            l.out.write_str(name)?;
            sep = ',';
        }
    }
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Prints a flow as `conntrack -L` with the given `-o` options prints it
/// (libnetfilter_conntrack 1.0.9 `snprintf_default.c`), without a newline.
///
/// Only what the CLI prints is printed: status bits other than
/// `SEEN_REPLY` (as `[UNREPLIED]`), `ASSURED`, `OFFLOAD` and `HW_OFFLOAD`,
/// TCP window scales and flags, the master tuple, sequence adjustment and
/// SYN proxy data are not. Timestamps are printed in UTC.
///
/// ```
/// use conntrack_core::cli::list::{parse_line, render_line, ListFormat};
/// let line = "ipv4     2 gre      47 49 src=10.0.0.1 dst=10.0.0.2 srckey=0x10 dstkey=0x20 \
///             packets=0 bytes=0 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 srckey=0x20 \
///             dstkey=0x10 packets=0 bytes=0 mark=0 use=1 id=4272916050";
/// let flow = parse_line(line)?;
/// assert_eq!(render_line(&flow, ListFormat::EXTENDED.with_id()), line);
/// # Ok::<(), conntrack_core::cli::list::ListError>(())
/// ```
pub fn render_line(flow: &Flow, format: ListFormat<'_>) -> String {
    let mut line = String::with_capacity(256);
    // Writing into a String cannot fail.
    let _ = write_line(&mut line, flow, format);
    line
}
