//! Reading `conntrack -L` lines into [`Flow`]s.

use super::ctime::parse_ctime;
use super::{LabelMap, ListError, ListErrorKind};
use crate::error::Location;
use crate::flow::{Counters, DccpInfo, Flow, Labels, ProtoInfo, SctpInfo, TcpInfo, Timestamp};
use crate::proto::L4Proto;
use crate::state::{DccpState, SctpState, TcpState};
use crate::status::Status;
use crate::tuple::{L4Tuple, Tuple};
use nom::Parser;
use nom::bytes::complete::{tag, take_till1, take_until};
use nom::character::complete::{char, digit1, hex_digit1, space0};
use nom::combinator::{all_consuming, rest};
use nom::sequence::{preceded, separated_pair};
use std::net::IpAddr;

type NomError<'a> = nom::error::Error<&'a str>;

/// Protocol names the CLI prints (libnetfilter_conntrack `proto2str`);
/// every other protocol is printed as `unknown`.
pub(super) fn cli_proto_name(proto: L4Proto) -> &'static str {
    match proto.0 {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        33 => "dccp",
        47 => "gre",
        58 => "icmpv6",
        132 => "sctp",
        136 => "udplite",
        _ => "unknown",
    }
}

/// Whether the CLI prints `sport=`/`dport=` for this protocol.
pub(super) fn cli_has_ports(proto: L4Proto) -> bool {
    matches!(proto.0, 6 | 17 | 33 | 132 | 136)
}

const CLI_PROTO_NAMES: [&str; 9] = [
    "icmp", "tcp", "udp", "dccp", "gre", "icmpv6", "sctp", "udplite", "unknown",
];

/// A problem at a byte column of the line (1-based).
struct Fail {
    column: usize,
    kind: ListErrorKind,
}

type Res<T> = Result<T, Fail>;

fn fail<T>(column: usize, kind: ListErrorKind) -> Res<T> {
    Err(Fail { column, kind })
}

/// Whitespace-separated tokens of one line, with their columns.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    line: &'a str,
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    /// Column of the next unread byte.
    fn col(&self) -> usize {
        self.line.len() - self.rest.len() + 1
    }

    fn skip_space(&mut self) {
        if let Ok((rest, _)) = space0::<_, NomError<'a>>(self.rest) {
            self.rest = rest;
        }
    }

    /// The next token and its column.
    fn next(&mut self) -> Option<(usize, &'a str)> {
        self.skip_space();
        let col = self.col();
        let (rest, token) = take_till1::<_, _, NomError<'a>>(|c| c == ' ' || c == '\t')
            .parse(self.rest)
            .ok()?;
        self.rest = rest;
        Some((col, token))
    }

    fn peek(&self) -> Option<&'a str> {
        let mut c = *self;
        c.next().map(|(_, t)| t)
    }

    /// Column just past the end of the line (for truncation errors).
    fn end(&self) -> usize {
        self.line.len() + 1
    }

    /// The value of the next token, which must be `key=value`, and the
    /// value's column.
    fn expect(&mut self, key: &'static str) -> Res<(usize, &'a str)> {
        let Some((col, token)) = self.next() else {
            return fail(self.end(), ListErrorKind::Truncated { expected: key });
        };
        match preceded((tag::<_, _, NomError<'a>>(key), char('=')), rest).parse(token) {
            Ok((_, value)) => Ok((col + key.len() + 1, value)),
            Err(_) => fail(col, ListErrorKind::Expected { expected: key }),
        }
    }

    /// Like [`Cursor::expect`], but only when the next token has that key.
    fn optional(&mut self, key: &'static str) -> Option<(usize, &'a str)> {
        let token = self.peek()?;
        if token.len() > key.len() && token.starts_with(key) && token.as_bytes()[key.len()] == b'='
        {
            self.expect(key).ok()
        } else {
            None
        }
    }
}

/// A decimal number: ASCII digits only (no sign, no spaces), in range.
fn decimal<T: core::str::FromStr>(text: &str) -> Option<T> {
    all_consuming(digit1::<_, NomError<'_>>).parse(text).ok()?;
    text.parse().ok()
}

fn number<T: core::str::FromStr>(col: usize, text: &str, field: &'static str) -> Res<T> {
    decimal(text).ok_or(Fail {
        column: col,
        kind: ListErrorKind::BadNumber { field },
    })
}

/// `0x` and hex digits, as the CLI prints GRE keys.
fn gre_key(col: usize, text: &str, field: &'static str) -> Res<u16> {
    all_consuming(preceded(tag("0x"), hex_digit1::<_, NomError<'_>>))
        .parse(text)
        .ok()
        .and_then(|(_, digits)| u16::from_str_radix(digits, 16).ok())
        .ok_or(Fail {
            column: col,
            kind: ListErrorKind::BadNumber { field },
        })
}

fn address(col: usize, text: &str, field: &'static str) -> Res<IpAddr> {
    text.parse().map_err(|_| Fail {
        column: col,
        kind: ListErrorKind::BadAddress { field },
    })
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Options for reading `conntrack -L` text: the label map and the capture
/// time. The free functions [`parse_line`] and [`parse_lines`] use the
/// defaults (no map, no capture time).
///
/// ```
/// use conntrack_core::cli::list::{LabelMap, ListParser};
/// let map = LabelMap::parse("3 web\n");
/// let parser = ListParser::new().with_labels(&map).with_capture_time(1_795_251_200);
/// let flow = parser.parse_line(
///     "udp 17 29 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=53 [UNREPLIED] \
///      src=10.0.0.2 dst=10.0.0.1 sport=53 dport=1 mark=0 delta-time=65 use=1 labels=web",
/// )?;
/// assert!(flow.labels.unwrap().contains(3));
/// assert_eq!(flow.timestamp.unwrap().start, 1_795_251_135 * 1_000_000_000);
/// # Ok::<(), conntrack_core::cli::list::ListError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ListParser<'m> {
    labels: Option<&'m LabelMap>,
    capture_time: Option<u64>,
}

impl<'m> ListParser<'m> {
    /// No label map, no capture time.
    pub const fn new() -> Self {
        ListParser {
            labels: None,
            capture_time: None,
        }
    }

    /// Reads `labels=` names with this map (bit numbers are accepted too).
    pub fn with_labels(self, map: &'m LabelMap) -> Self {
        ListParser {
            labels: Some(map),
            ..self
        }
    }

    /// When the capture was taken (seconds since the Unix epoch), so that
    /// `delta-time=` (the age at capture) gives the start time of flows
    /// that have no `[start=...]`.
    pub fn with_capture_time(self, unix_secs: u64) -> Self {
        ListParser {
            capture_time: Some(unix_secs),
            ..self
        }
    }

    /// Reads one line (a trailing `\n` or `\r\n` is ignored). Errors
    /// report line 1.
    pub fn parse_line(&self, line: &str) -> Result<Flow, ListError> {
        let line = line.trim_end_matches(['\n', '\r']);
        self.flow(line).map_err(|f| ListError {
            location: Location {
                line: 1,
                column: f.column,
            },
            kind: f.kind,
        })
    }

    /// Streams the flows of a whole capture. See [`parse_lines`].
    pub fn parse_lines<'a>(&self, text: &'a str) -> ListLines<'a, 'm> {
        ListLines {
            lines: text.lines(),
            line: 0,
            parser: *self,
        }
    }

    fn flow(&self, line: &str) -> Res<Flow> {
        let mut c = Cursor { line, rest: line };
        let (name_col, name) = c.next().ok_or(Fail {
            column: 1,
            kind: ListErrorKind::Truncated {
                expected: "protocol name",
            },
        })?;
        let (num_col, num) = c.next().ok_or(Fail {
            column: c.end(),
            kind: ListErrorKind::Truncated {
                expected: "protocol number",
            },
        })?;
        // `-o extended` puts the layer 3 name and number first; layer 4
        // names are lowercase, states uppercase, the timeout a number.
        let extended = c
            .peek()
            .is_some_and(|t| t.starts_with(|ch: char| ch.is_ascii_lowercase()) && !t.contains('='));
        let (family, name_col, name, num_col, num) = if extended {
            let family: u8 = number(num_col, num, "layer 3 protocol number")?;
            let expected_name = match family {
                2 => "ipv4",
                10 => "ipv6",
                _ => "unknown",
            };
            if name != expected_name && matches!(name, "ipv4" | "ipv6" | "unknown") {
                return fail(name_col, ListErrorKind::ProtoMismatch);
            }
            let (n_col, n) = c.next().ok_or(Fail {
                column: c.end(),
                kind: ListErrorKind::Truncated {
                    expected: "protocol name",
                },
            })?;
            let (p_col, p) = c.next().ok_or(Fail {
                column: c.end(),
                kind: ListErrorKind::Truncated {
                    expected: "protocol number",
                },
            })?;
            (Some((num_col, family)), n_col, n, p_col, p)
        } else {
            (None, name_col, name, num_col, num)
        };
        let proto = L4Proto(number(num_col, num, "protocol number")?);
        if name != cli_proto_name(proto) && CLI_PROTO_NAMES.contains(&name) {
            return fail(name_col, ListErrorKind::ProtoMismatch);
        }

        let timeout = match c.peek() {
            Some(t) if t.starts_with(|ch: char| ch.is_ascii_digit()) => {
                let (col, t) = c.next().unwrap_or((0, t));
                Some(number(col, t, "timeout")?)
            }
            _ => None,
        };
        let protoinfo = match c.peek() {
            Some(t) if !t.contains('=') && !t.starts_with('[') => {
                let (col, t) = c.next().unwrap_or((0, t));
                Some(state(col, t, proto)?)
            }
            _ => None,
        };

        let (orig, counters_orig) = tuple(&mut c, proto, "zone-orig")?;
        if let Some((fcol, fam)) = family {
            let fits = match orig.src {
                IpAddr::V4(_) => fam == 2,
                IpAddr::V6(_) => fam == 10,
            };
            if !fits {
                return fail(fcol, ListErrorKind::FamilyMismatch);
            }
        }
        let mut status = Status::CONFIRMED | Status::SEEN_REPLY;
        if c.peek() == Some("[UNREPLIED]") {
            c.next();
            status.remove(Status::SEEN_REPLY);
        }
        match c.peek() {
            Some(t) if t.starts_with("src=") => {}
            Some(_) => {
                c.skip_space();
                return fail(c.col(), ListErrorKind::MissingReplyTuple);
            }
            None => return fail(c.end(), ListErrorKind::MissingReplyTuple),
        }
        c.skip_space();
        let reply_col = c.col();
        let (reply, counters_reply) = tuple(&mut c, proto, "zone-reply")?;
        if !same_family(orig.src, reply.src) {
            return fail(reply_col + "src=".len(), ListErrorKind::FamilyMismatch);
        }

        let mut flow = Flow::new(orig, reply, status);
        flow.timeout = timeout;
        flow.protoinfo = protoinfo;
        flow.counters_orig = counters_orig;
        flow.counters_reply = counters_reply;
        self.trailing(&mut c, &mut flow)?;
        Ok(flow)
    }

    /// Everything after the reply tuple: the status flag, `key=value`
    /// fields and the bracketed timestamps, in any order, each at most once.
    fn trailing(&self, c: &mut Cursor<'_>, flow: &mut Flow) -> Res<()> {
        let mut flag: Option<Status> = None;
        let mut delta: Option<u64> = None;
        let mut start: Option<u64> = None;
        let mut stop: Option<u64> = None;
        loop {
            c.skip_space();
            let col = c.col();
            if let Some(which) = ["[start=", "[stop="]
                .into_iter()
                .find(|p| c.rest.starts_with(p))
            {
                let parsed = preceded(
                    tag::<_, _, NomError<'_>>(which),
                    nom::sequence::terminated(take_until("]"), char(']')),
                )
                .parse(c.rest);
                let Ok((after, text)) = parsed else {
                    return fail(c.end(), ListErrorKind::Truncated { expected: "]" });
                };
                let secs = parse_ctime(text)
                    .and_then(|s| s.checked_mul(1_000_000_000))
                    .ok_or(Fail {
                        column: col + which.len(),
                        kind: ListErrorKind::BadTimestamp,
                    })?;
                let (slot, field) = if which == "[start=" {
                    (&mut start, "start")
                } else {
                    (&mut stop, "stop")
                };
                set(slot, secs, col, field)?;
                c.rest = after;
                // The bracket must end the token.
                if !c.rest.is_empty() && !c.rest.starts_with([' ', '\t']) {
                    return fail(c.col(), ListErrorKind::UnexpectedToken);
                }
                continue;
            }
            let Some((col, token)) = c.next() else {
                break;
            };
            let new_flag = match token {
                "[ASSURED]" => Some(Status::ASSURED),
                "[OFFLOAD]" => Some(Status::OFFLOAD),
                "[HW_OFFLOAD]" => Some(Status::OFFLOAD | Status::HW_OFFLOAD),
                _ => None,
            };
            if let Some(f) = new_flag {
                set(&mut flag, f, col, "status flag")?;
                continue;
            }
            if token == "labels" {
                set(&mut flow.labels, Labels::default(), col, "labels")?;
                continue;
            }
            let Ok((_, (key, value))) = separated_pair(
                take_till1(|ch| ch == '='),
                char::<_, NomError<'_>>('='),
                rest,
            )
            .parse(token) else {
                return fail(col, ListErrorKind::UnexpectedToken);
            };
            let vcol = col + key.len() + 1;
            match key {
                "mark" => set(&mut flow.mark, number(vcol, value, "mark")?, col, "mark")?,
                "secmark" => set(
                    &mut flow.secmark,
                    number(vcol, value, "secmark")?,
                    col,
                    "secmark",
                )?,
                "secctx" => set(&mut flow.secctx, value.to_owned(), col, "secctx")?,
                "zone" => set(&mut flow.zone, number(vcol, value, "zone")?, col, "zone")?,
                "delta-time" => set(
                    &mut delta,
                    number(vcol, value, "delta-time")?,
                    col,
                    "delta-time",
                )?,
                "helper" => set(&mut flow.helper, value.to_owned(), col, "helper")?,
                "use" => set(&mut flow.use_count, number(vcol, value, "use")?, col, "use")?,
                "id" => set(&mut flow.id, number(vcol, value, "id")?, col, "id")?,
                "labels" => {
                    // Names may contain spaces; the CLI prints labels last.
                    let all = c.line[vcol - 1..].trim_end_matches([' ', '\t']);
                    c.rest = "";
                    let labels = self.labels(vcol, all)?;
                    set(&mut flow.labels, labels, col, "labels")?;
                }
                _ => return fail(col, ListErrorKind::UnknownKey),
            }
        }
        if let Some(f) = flag {
            flow.status |= f;
        }
        if start.is_some() || stop.is_some() {
            flow.timestamp = Some(Timestamp {
                start: start.unwrap_or(0),
                stop,
            });
        } else if let (Some(delta), Some(now)) = (delta, self.capture_time) {
            flow.timestamp = now
                .checked_sub(delta)
                .and_then(|s| s.checked_mul(1_000_000_000))
                .map(|start| Timestamp { start, stop: None });
        }
        Ok(())
    }

    fn labels(&self, col: usize, text: &str) -> Res<Labels> {
        let mut labels = Labels::default();
        let mut name_col = col;
        for name in text.split(',') {
            let bit = self
                .labels
                .and_then(|m| m.bit(name))
                .or_else(|| decimal::<u32>(name).filter(|&b| b < Labels::BITS))
                .ok_or(Fail {
                    column: name_col,
                    kind: ListErrorKind::UnknownLabel,
                })?;
            labels.insert(bit);
            name_col += name.len() + 1;
        }
        Ok(labels)
    }
}

/// Stores a field seen once; a second time is an error at `col`.
fn set<T>(slot: &mut Option<T>, value: T, col: usize, field: &'static str) -> Res<()> {
    if slot.is_some() {
        return fail(col, ListErrorKind::Duplicate { field });
    }
    *slot = Some(value);
    Ok(())
}

/// The state word after the timeout.
fn state(col: usize, word: &str, proto: L4Proto) -> Res<ProtoInfo> {
    let unknown = Fail {
        column: col,
        kind: ListErrorKind::UnknownState,
    };
    // Names only: a number here would have been read as the timeout.
    if !word.starts_with(|ch: char| ch.is_ascii_alphabetic()) {
        return Err(unknown);
    }
    match proto {
        L4Proto::TCP => TcpState::from_name(word)
            .map(|state| ProtoInfo::Tcp(TcpInfo::new(state)))
            .ok_or(unknown),
        L4Proto::SCTP => SctpState::from_name(word)
            .map(|state| ProtoInfo::Sctp(SctpInfo::new(state)))
            .ok_or(unknown),
        L4Proto::DCCP => DccpState::from_name(word)
            .map(|state| ProtoInfo::Dccp(DccpInfo::new(state)))
            .ok_or(unknown),
        _ => fail(col, ListErrorKind::UnexpectedState),
    }
}

/// `src= dst=`, the layer 4 fields, the direction's zone and counters.
fn tuple(
    c: &mut Cursor<'_>,
    proto: L4Proto,
    zone_key: &'static str,
) -> Res<(Tuple, Option<Counters>)> {
    let (col, v) = c.expect("src")?;
    let src = address(col, v, "src")?;
    let (col, v) = c.expect("dst")?;
    let dst = address(col, v, "dst")?;
    if !same_family(src, dst) {
        return fail(col, ListErrorKind::FamilyMismatch);
    }
    let l4 = if cli_has_ports(proto) {
        let (col, v) = c.expect("sport")?;
        let src = number(col, v, "sport")?;
        let (col, v) = c.expect("dport")?;
        L4Tuple::Ports {
            src,
            dst: number(col, v, "dport")?,
        }
    } else if proto == L4Proto::GRE {
        let (col, v) = c.expect("srckey")?;
        let src = gre_key(col, v, "srckey")?;
        let (col, v) = c.expect("dstkey")?;
        L4Tuple::Ports {
            src,
            dst: gre_key(col, v, "dstkey")?,
        }
    } else if proto.is_icmp() {
        let (col, v) = c.expect("type")?;
        let kind = number(col, v, "type")?;
        let (col, v) = c.expect("code")?;
        let code = number(col, v, "code")?;
        let (col, v) = c.expect("id")?;
        L4Tuple::Icmp {
            kind,
            code,
            id: number(col, v, "id")?,
        }
    } else {
        L4Tuple::None
    };
    let mut t = Tuple::new(src, dst, proto, l4);
    if let Some((col, v)) = c.optional(zone_key) {
        t.zone = Some(number(col, v, zone_key)?);
    }
    let counters = match c.optional("packets") {
        Some((col, v)) => {
            let packets = number(col, v, "packets")?;
            let (col, v) = c.expect("bytes")?;
            Some(Counters {
                packets,
                bytes: number(col, v, "bytes")?,
            })
        }
        None => None,
    };
    Ok((t, counters))
}

/// Reads one `conntrack -L` line (default or `-o extended`, with any of
/// `-o id,ktimestamp,labels`) into a [`Flow`]. Errors report line 1 and
/// the byte column of the offending token or value. See the
/// [module docs](super) for what is inferred.
///
/// ```
/// use conntrack_core::cli::list::{parse_line, ListErrorKind};
/// let flow = parse_line("ipv6     10 icmpv6   58 29 src=2001:db8::1 dst=2001:db8::2 \
///     type=128 code=0 id=5 [UNREPLIED] src=2001:db8::2 dst=2001:db8::1 type=129 code=0 \
///     id=5 mark=0 use=1 id=3867998142")?;
/// assert_eq!(flow.id, Some(3867998142));
/// assert!(!flow.is_replied());
///
/// let err = parse_line("tcp 6 10 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1").unwrap_err();
/// assert_eq!(err.kind, ListErrorKind::Truncated { expected: "dport" });
/// # Ok::<(), conntrack_core::cli::list::ListError>(())
/// ```
pub fn parse_line(line: &str) -> Result<Flow, ListError> {
    ListParser::new().parse_line(line)
}

/// Streams the flows of captured `conntrack -L` output, one item per
/// non-blank line. Blank lines and the CLI's summary lines
/// (`conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.`)
/// are skipped; a bad line yields one `Err` (with its 1-based line number)
/// and the following lines keep coming.
///
/// A summary in the *middle* of a line is what `conntrack -L >file 2>&1`
/// leaves when the output is larger than stdout's buffer (4 KiB): the
/// summary is cut out and the line joined with the next one, which holds
/// the rest of the flow (errors then give the first line's number and
/// columns in the joined line).
///
/// ```
/// use conntrack_core::cli::list::parse_lines;
/// let text = "\
/// udp      17 29 src=10.0.0.1 dst=10.0.0.2 sport=1000 dport=53 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=53 dport=1000 mark=0 use=1
/// udp      17 29 src=10.0.0.1 dst=10.0.0.2 sport=1000 dport=53 [UNREPLIED] src=10.0.0.2
///
/// gre      47 49 src=10.0.0.1 dst=10.0.0.2 srckey=0x10 dstkey=0x20 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 srckey=0x20 dstkey=0x10 mark=0 use=1
/// conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.
/// ";
/// let results: Vec<_> = parse_lines(text).collect();
/// assert_eq!(results.len(), 3);
/// assert!(results[0].is_ok() && results[2].is_ok());
/// assert_eq!(results[1].as_ref().unwrap_err().location.line, 2);
/// ```
pub fn parse_lines(text: &str) -> ListLines<'_, 'static> {
    ListParser::new().parse_lines(text)
}

/// The iterator of [`parse_lines`] and [`ListParser::parse_lines`].
#[derive(Debug, Clone)]
pub struct ListLines<'a, 'm> {
    lines: core::str::Lines<'a>,
    line: usize,
    parser: ListParser<'m>,
}

/// Whether a line is the CLI's summary (printed to stderr, often captured
/// with `2>&1`).
fn is_summary(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("conntrack v") && line.contains("(conntrack-tools): ")
}

/// Where a summary starts in the middle of a line: `conntrack -L >file
/// 2>&1` with more than one stdio buffer of output writes the (unbuffered)
/// summary where the first buffer of stdout ended, inside a flow line whose
/// rest follows on the next line.
fn summary_inside(line: &str) -> Option<usize> {
    let at = line.find("conntrack v")?;
    (at > 0 && is_summary(&line[at..])).then_some(at)
}

impl Iterator for ListLines<'_, '_> {
    type Item = Result<Flow, ListError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.lines.next()?;
            self.line += 1;
            let n = self.line;
            if line.trim().is_empty() || is_summary(line) {
                continue;
            }
            let at_line = |mut e: ListError| {
                e.location.line = n;
                e
            };
            if let Some(at) = summary_inside(line) {
                // Rare: join the two halves (the only allocation here).
                let rest = self.lines.next().unwrap_or("");
                self.line += 1;
                let joined = format!("{}{rest}", &line[..at]);
                return Some(self.parser.parse_line(&joined).map_err(at_line));
            }
            return Some(self.parser.parse_line(line).map_err(at_line));
        }
    }
}
