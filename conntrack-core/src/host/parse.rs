//! Pure parsers for the `/proc` and `/sys` files behind a
//! [`HostSnapshot`](super::HostSnapshot).
//!
//! Every function takes the file's text (or bytes) and nothing else: no I/O,
//! no global state, no panics on any input. Errors carry a 1-based line and
//! a 1-based **byte** column pointing at the start of the offending token
//! (or at the end of the line for a truncated row).

use super::SlabCache;
use super::error::{ParseError, ParseErrorKind as K};
use crate::kernel::KernelVersion;
use std::collections::BTreeMap;

/// The largest CPU count the parsers accept. The kernel's `NR_CPUS` is at
/// most 8192 on x86_64 and 16384 elsewhere today; the limit keeps a hostile
/// `0-4294967295` from allocating gigabytes.
pub const MAX_CPUS: u32 = 65536;

/// The inode number of the initial network namespace's `ns/net` link,
/// fixed since Linux 6.18 (`NET_NS_INIT_INO` in
/// `include/uapi/linux/nsfs.h`, `PROC_NET_INIT_INO` in
/// `include/linux/proc_ns.h`; verified on a 6.18 kernel:
/// `net:[4026531833]`). Before 6.18 the number was allocated dynamically
/// (from `0xF0000000` up), so it can never equal this value by accident.
pub const NET_NS_INIT_INO: u64 = 0xEFFF_FFF9;

/// Conntrack helper modules (`nf_conntrack_<name>`): the helpers in
/// `net/netfilter/nf_conntrack_*.c`, plus `broadcast`, the library that
/// `netbios_ns` and `snmp` build on.
pub const CONNTRACK_HELPERS: &[&str] = &[
    "amanda",
    "broadcast",
    "ftp",
    "h323",
    "irc",
    "netbios_ns",
    "pptp",
    "sane",
    "sip",
    "snmp",
    "tftp",
];

/// NAT helper modules (`nf_nat_<name>`, `net/netfilter/nf_nat_*.c` and
/// `net/ipv4/netfilter/nf_nat_{h323,pptp,snmp_basic}.c`).
pub const NAT_HELPERS: &[&str] = &[
    "amanda",
    "ftp",
    "h323",
    "irc",
    "pptp",
    "sip",
    "snmp_basic",
    "tftp",
];

/// The protocols with entry-timeout sysctls
/// (`net/netfilter/nf_conntrack_proto_*.c`; `udplite` and `dccp` only on
/// some kernels and configurations).
pub const TIMEOUT_PROTOCOLS: &[&str] = &[
    "dccp", "generic", "gre", "icmp", "icmpv6", "sctp", "tcp", "udp", "udplite",
];

// ---------------------------------------------------------------------------
// Text helpers

/// Lines with their 1-based numbers; a final newline does not start a line.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_terminator('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// Whitespace-separated fields with their 1-based byte columns.
fn fields(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let base = line.as_ptr() as usize;
    line.split_ascii_whitespace()
        .map(move |f| (f.as_ptr() as usize - base + 1, f))
}

/// The 1-based column just after the line's last byte (where a truncated
/// row "ends").
fn end_col(line: &str) -> usize {
    line.len() + 1
}

fn dec_u64(s: &str, line: usize, col: usize) -> Result<u64, ParseError> {
    if s.is_empty() {
        return Err(ParseError::new(line, col, K::UnexpectedEnd("a number")));
    }
    let mut v: u64 = 0;
    for (i, b) in s.bytes().enumerate() {
        if !b.is_ascii_digit() {
            return Err(ParseError::new(line, col + i, K::InvalidNumber));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(ParseError::new(line, col, K::OutOfRange))?;
    }
    Ok(v)
}

fn dec_u32(s: &str, line: usize, col: usize) -> Result<u32, ParseError> {
    u32::try_from(dec_u64(s, line, col)?).map_err(|_| ParseError::new(line, col, K::OutOfRange))
}

/// Decodes a file's bytes as UTF-8, or says where the first invalid byte
/// is. Real `/proc` files are ASCII; this is the reader's first check.
///
/// ```
/// use conntrack_core::host::{decode_utf8, ParseErrorKind};
/// assert_eq!(decode_utf8(b"ok\n").unwrap(), "ok\n");
/// let err = decode_utf8(b"MemTotal: 1 kB\nMem\xff").unwrap_err();
/// assert_eq!((err.location.line, err.location.column), (2, 4));
/// assert_eq!(err.kind, ParseErrorKind::NotUtf8);
/// ```
pub fn decode_utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        ParseError::new(line, good.len() - start + 1, K::NotUtf8)
    })
}

fn nonempty(text: &str) -> Result<(), ParseError> {
    if text.is_empty() {
        Err(ParseError::new(1, 1, K::Empty))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Single values: sysctls, module parameters, osrelease

/// The value of a single-value file (a sysctl, a module parameter,
/// `osrelease`): the text without its final newline. Fails on an empty
/// file, on a second line, and on control characters other than tab.
///
/// ```
/// use conntrack_core::host::parse_single_value;
/// assert_eq!(parse_single_value("262144\n").unwrap(), "262144");
/// assert!(parse_single_value("").is_err());
/// assert!(parse_single_value("1\n2\n").is_err());
/// ```
pub fn parse_single_value(text: &str) -> Result<&str, ParseError> {
    nonempty(text)?;
    let value = text.strip_suffix('\n').unwrap_or(text);
    if value.contains('\n') {
        return Err(ParseError::new(2, 1, K::Trailing));
    }
    if let Some((i, _)) = value
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != '\t')
    {
        return Err(ParseError::new(1, i + 1, K::Expected("printable text")));
    }
    Ok(value)
}

/// A numeric sysctl or module parameter as `u32`.
///
/// Negative numbers in `i32` range are accepted and reinterpreted: the
/// kernel stores `nf_conntrack_max` and the count as unsigned but older
/// kernels print them with `proc_dointvec` (signed), so a value above
/// `i32::MAX` reads back negative.
///
/// ```
/// use conntrack_core::host::parse_sysctl_u32;
/// assert_eq!(parse_sysctl_u32("262144\n").unwrap(), 262144);
/// assert_eq!(parse_sysctl_u32("-1294967296\n").unwrap(), 3_000_000_000);
/// assert!(parse_sysctl_u32("12a\n").is_err());
/// assert!(parse_sysctl_u32("4294967296\n").is_err());
/// ```
pub fn parse_sysctl_u32(text: &str) -> Result<u32, ParseError> {
    let v = parse_single_value(text)?;
    if let Some(neg) = v.strip_prefix('-') {
        let n = dec_u64(neg, 1, 2)?;
        if n == 0 || n > 1 << 31 {
            return Err(ParseError::new(1, 1, K::OutOfRange));
        }
        // Two's complement of a printed `int`.
        return Ok((1u64 << 32).wrapping_sub(n) as u32);
    }
    dec_u32(v, 1, 1)
}

/// A strictly unsigned decimal value (a module parameter printed with
/// `%u`, such as `hashsize`): no sign accepted.
///
/// ```
/// use conntrack_core::host::parse_u32_value;
/// assert_eq!(parse_u32_value("262144\n").unwrap(), 262144);
/// assert!(parse_u32_value("-5\n").is_err());
/// ```
pub fn parse_u32_value(text: &str) -> Result<u32, ParseError> {
    dec_u32(parse_single_value(text)?, 1, 1)
}

/// A boolean sysctl (`0`/`1`) or module parameter (`N`/`Y`).
///
/// ```
/// use conntrack_core::host::parse_sysctl_bool;
/// assert_eq!(parse_sysctl_bool("0\n").unwrap(), false);
/// assert_eq!(parse_sysctl_bool("Y\n").unwrap(), true);
/// assert!(parse_sysctl_bool("2\n").is_err());
/// ```
pub fn parse_sysctl_bool(text: &str) -> Result<bool, ParseError> {
    match parse_single_value(text)? {
        "0" | "N" | "n" => Ok(false),
        "1" | "Y" | "y" => Ok(true),
        _ => Err(ParseError::new(1, 1, K::Expected("0 or 1"))),
    }
}

/// `/proc/sys/kernel/osrelease`: the release string and its parsed
/// version.
///
/// ```
/// use conntrack_core::{host::parse_osrelease, KernelVersion};
/// let (rel, v) = parse_osrelease("6.18.44-fc-v657\n").unwrap();
/// assert_eq!(rel, "6.18.44-fc-v657");
/// assert_eq!(v, KernelVersion::new(6, 18, 44));
/// ```
pub fn parse_osrelease(text: &str) -> Result<(&str, KernelVersion), ParseError> {
    let v = parse_single_value(text)?;
    if let Some(i) = v.find(|c: char| c.is_whitespace()) {
        return Err(ParseError::new(1, i + 1, K::Trailing));
    }
    let version = v
        .parse::<KernelVersion>()
        .map_err(|_| ParseError::new(1, 1, K::Expected("a kernel release (N.N...)")))?;
    Ok((v, version))
}

// ---------------------------------------------------------------------------
// Timeouts by sysctl name

/// The (protocol, state) a timeout sysctl sets, or `None` for a sysctl
/// that is not a conntrack entry timeout.
///
/// `nf_conntrack_<proto>_timeout` is the protocol's `default`;
/// `nf_conntrack_<proto>_timeout_<state>` is that state, for the protocols
/// of [`TIMEOUT_PROTOCOLS`]; states are not listed, so a state added by a
/// newer kernel is kept. Not timeouts of entries, and excluded:
/// `nf_conntrack_frag6_timeout` (IPv6 reassembly),
/// `nf_conntrack_events_retry_timeout` (event redelivery, <= 3.x),
/// `nf_conntrack_tcp_max_retrans` (a count).
///
/// ```
/// use conntrack_core::host::timeout_key;
/// assert_eq!(timeout_key("nf_conntrack_tcp_timeout_time_wait"), Some(("tcp", "time_wait")));
/// assert_eq!(timeout_key("nf_conntrack_udp_timeout"), Some(("udp", "default")));
/// assert_eq!(timeout_key("nf_conntrack_udp_timeout_stream"), Some(("udp", "stream")));
/// assert_eq!(timeout_key("nf_conntrack_tcp_timeout_max_retrans"), Some(("tcp", "max_retrans")));
/// assert_eq!(timeout_key("nf_conntrack_tcp_max_retrans"), None);
/// assert_eq!(timeout_key("nf_conntrack_frag6_timeout"), None);
/// assert_eq!(timeout_key("nf_conntrack_events_retry_timeout"), None);
/// ```
pub fn timeout_key(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("nf_conntrack_")?;
    let at = rest.find("_timeout")?;
    let proto = &rest[..at];
    let after = &rest[at + "_timeout".len()..];
    let state = match after {
        "" => "default",
        s => s.strip_prefix('_').filter(|s| !s.is_empty())?,
    };
    let ident = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if !TIMEOUT_PROTOCOLS.contains(&proto) || !ident(state) {
        return None;
    }
    Some((proto, state))
}

/// Timeouts by protocol and state from a set of sysctls (name without the
/// `net.netfilter.` prefix -> value text). Returns the map and, for each
/// timeout sysctl whose value is not a number, its name and error.
///
/// ```
/// use std::collections::BTreeMap;
/// use conntrack_core::host::timeouts_from_sysctls;
/// let mut s = BTreeMap::new();
/// s.insert("nf_conntrack_tcp_timeout_time_wait".to_string(), "120".to_string());
/// s.insert("nf_conntrack_generic_timeout".to_string(), "600".to_string());
/// s.insert("nf_conntrack_max".to_string(), "262144".to_string());
/// let (t, bad) = timeouts_from_sysctls(&s);
/// assert_eq!(t["tcp"]["time_wait"], 120);
/// assert_eq!(t["generic"]["default"], 600);
/// assert_eq!(t.len(), 2);
/// assert!(bad.is_empty());
/// ```
#[allow(clippy::type_complexity)]
pub fn timeouts_from_sysctls(
    sysctls: &BTreeMap<String, String>,
) -> (
    BTreeMap<String, BTreeMap<String, u32>>,
    Vec<(String, ParseError)>,
) {
    let mut out: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    let mut bad = Vec::new();
    for (name, value) in sysctls {
        let Some((proto, state)) = timeout_key(name) else {
            continue;
        };
        match parse_sysctl_u32(value) {
            Ok(v) => {
                out.entry(proto.to_string())
                    .or_default()
                    .insert(state.to_string(), v);
            }
            Err(e) => bad.push((name.clone(), e)),
        }
    }
    (out, bad)
}

// ---------------------------------------------------------------------------
// /proc/meminfo

/// `/proc/meminfo`: every line's value, converted to bytes when the line
/// has the `kB` unit (counts such as `HugePages_Total` are kept as they
/// are).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemInfo {
    /// Key (e.g. `MemTotal`, `Active(anon)`) -> value.
    pub fields: BTreeMap<String, u64>,
}

impl MemInfo {
    /// `MemTotal` in bytes.
    pub fn mem_total_bytes(&self) -> Option<u64> {
        self.fields.get("MemTotal").copied()
    }
}

/// Parses `/proc/meminfo` (`Key:   value kB` per line). Every line is
/// checked; keys must be printable ASCII.
///
/// ```
/// use conntrack_core::host::parse_meminfo;
/// let m = parse_meminfo("MemTotal:       24684092 kB\nHugePages_Total:       0\n").unwrap();
/// assert_eq!(m.mem_total_bytes(), Some(24684092 * 1024));
/// let err = parse_meminfo("MemTotal: 12x kB\n").unwrap_err();
/// assert_eq!((err.location.line, err.location.column), (1, 13));
/// ```
pub fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    nonempty(text)?;
    let mut out = MemInfo::default();
    for (ln, line) in lines(text) {
        let Some(colon) = line.find(':') else {
            return Err(ParseError::new(ln, end_col(line), K::Expected("':'")));
        };
        let key = &line[..colon];
        if key.is_empty() {
            return Err(ParseError::new(ln, 1, K::Expected("a key")));
        }
        if let Some(i) = key.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(ParseError::new(ln, i + 1, K::Expected("a printable key")));
        }
        let rest = &line[colon + 1..];
        let mut fs = fields(rest).map(|(c, f)| (c + colon + 1, f));
        let Some((vcol, value)) = fs.next() else {
            return Err(ParseError::new(
                ln,
                end_col(line),
                K::UnexpectedEnd("a value"),
            ));
        };
        let mut v = dec_u64(value, ln, vcol)?;
        match fs.next() {
            None => {}
            Some((_, "kB")) => {
                v = v
                    .checked_mul(1024)
                    .ok_or(ParseError::new(ln, vcol, K::OutOfRange))?;
            }
            Some((c, _)) => return Err(ParseError::new(ln, c, K::Expected("kB"))),
        }
        if let Some((c, _)) = fs.next() {
            return Err(ParseError::new(ln, c, K::Trailing));
        }
        if out.fields.insert(key.to_string(), v).is_some() {
            return Err(ParseError::new(ln, 1, K::Duplicate("key")));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// /proc/slabinfo

/// Whether a slab cache holds conntrack entries: `nf_conntrack`, or the
/// per-namespace `nf_conntrack_<pointer>` caches of kernels up to 4.x
/// (`net->ct.slabname = "nf_conntrack_%p"`, `include/net/netns/conntrack.h`
/// in 2.6.32..3.x). `nf_conntrack_expect` is the expectation cache and is
/// not matched.
///
/// ```
/// use conntrack_core::host::is_conntrack_slab;
/// assert!(is_conntrack_slab("nf_conntrack"));
/// assert!(is_conntrack_slab("nf_conntrack_ffff880037a5c000"));
/// assert!(!is_conntrack_slab("nf_conntrack_expect"));
/// ```
pub fn is_conntrack_slab(name: &str) -> bool {
    match name.strip_prefix("nf_conntrack") {
        Some("") => true,
        Some(rest) => rest.strip_prefix('_').is_some_and(|p| {
            (8..=16).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit())
        }),
        None => false,
    }
}

/// Parses `/proc/slabinfo` (format 2.1, also `2.1 (statistics)`) and
/// returns the conntrack caches ([`is_conntrack_slab`]) in file order.
///
/// Every row is checked: its field count must equal the column header's
/// (so a truncated last row is an error) and its numeric columns must be
/// numbers. An unknown version or a missing header is an error.
///
/// ```
/// use conntrack_core::host::parse_slabinfo;
/// let text = "slabinfo - version: 2.1\n\
/// ## name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n\
/// nf_conntrack_expect      0      0    208   19    1 : tunables    0    0    0 : slabdata      0      0      0\n\
/// nf_conntrack         112    128    256   16    1 : tunables    0    0    0 : slabdata      8      8      0\n";
/// let caches = parse_slabinfo(text).unwrap();
/// assert_eq!(caches.len(), 1);
/// assert_eq!((caches[0].active_objs, caches[0].num_objs, caches[0].obj_size), (112, 128, 256));
/// ```
pub fn parse_slabinfo(text: &str) -> Result<Vec<SlabCache>, ParseError> {
    nonempty(text)?;
    let mut it = lines(text);
    let Some((_, first)) = it.next() else {
        return Err(ParseError::new(1, 1, K::Empty));
    };
    const PREFIX: &str = "slabinfo - version: ";
    let Some(version) = first.strip_prefix(PREFIX) else {
        return Err(ParseError::new(1, 1, K::UnknownHeader));
    };
    // 2.1 since 2.6.x (mm/slab_common.c `print_slabinfo_header`); SLAB with
    // CONFIG_DEBUG_SLAB printed "2.1 (statistics)" and extra columns, which
    // the header-width check below accommodates.
    if version != "2.1" && version != "2.1 (statistics)" {
        return Err(ParseError::new(1, PREFIX.len() + 1, K::UnsupportedVersion));
    }
    let Some((_, header)) = it.next() else {
        return Err(ParseError::new(2, 1, K::UnexpectedEnd("the column header")));
    };
    let hfields: Vec<(usize, &str)> = fields(header).collect();
    let expect_names = [
        "#",
        "name",
        "<active_objs>",
        "<num_objs>",
        "<objsize>",
        "<objperslab>",
        "<pagesperslab>",
    ];
    for (i, want) in expect_names.iter().enumerate() {
        match hfields.get(i) {
            Some((_, f)) if f == want => {}
            Some((c, _)) => return Err(ParseError::new(2, *c, K::UnknownHeader)),
            None => {
                return Err(ParseError::new(
                    2,
                    end_col(header),
                    K::UnexpectedEnd("the column header"),
                ));
            }
        }
    }
    let width = hfields.len() - 1; // without '#'
    let mut out = Vec::new();
    for (ln, line) in it {
        let row: Vec<(usize, &str)> = fields(line).collect();
        if row.len() != width {
            let col = row.get(width).map_or(end_col(line), |(c, _)| *c);
            return Err(ParseError::new(
                ln,
                col,
                K::FieldCount {
                    expected: width,
                    found: row.len(),
                },
            ));
        }
        // Every field after the name is a number or a ':'/label separator.
        for (i, &(c, f)) in row.iter().enumerate().skip(1) {
            let hname = hfields[i + 1].1;
            if hname.starts_with('<') {
                dec_u64(f, ln, c)?;
            } else if f != hname {
                return Err(ParseError::new(ln, c, K::Expected("a column separator")));
            }
        }
        let name = row[0].1;
        if is_conntrack_slab(name) {
            let num = |i: usize| dec_u64(row[i].1, ln, row[i].0);
            out.push(SlabCache {
                name: name.to_string(),
                active_objs: num(1)?,
                num_objs: num(2)?,
                obj_size: num(3)?,
            });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// /proc/softirqs

/// The `NET_RX` softirq counts of `/proc/softirqs`, by CPU.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetRxSoftirqs {
    /// CPU ids from the header (`CPU0 CPU1 ...`), in column order.
    pub cpus: Vec<u32>,
    /// `NET_RX` count of each column.
    pub counts: Vec<u64>,
}

/// Parses `/proc/softirqs` and returns the `NET_RX` row. The header names
/// the CPU of each column (`CPU<n>`; the kernel prints possible CPUs);
/// every row must have one value per column.
///
/// ```
/// use conntrack_core::host::parse_softirqs;
/// let text = "                    CPU0       CPU1\n\
///           HI:          0          0\n\
///       NET_RX:       1594       2345\n";
/// let s = parse_softirqs(text).unwrap();
/// assert_eq!(s.cpus, vec![0, 1]);
/// assert_eq!(s.counts, vec![1594, 2345]);
/// ```
pub fn parse_softirqs(text: &str) -> Result<NetRxSoftirqs, ParseError> {
    nonempty(text)?;
    let mut it = lines(text);
    let Some((_, header)) = it.next() else {
        return Err(ParseError::new(1, 1, K::Empty));
    };
    let mut cpus = Vec::new();
    for (c, f) in fields(header) {
        let Some(n) = f.strip_prefix("CPU") else {
            return Err(ParseError::new(1, c, K::UnknownHeader));
        };
        let id = dec_u32(n, 1, c + 3)?;
        if id >= MAX_CPUS {
            return Err(ParseError::new(1, c + 3, K::TooManyCpus));
        }
        cpus.push(id);
    }
    if cpus.is_empty() {
        return Err(ParseError::new(
            1,
            end_col(header),
            K::UnexpectedEnd("CPU columns"),
        ));
    }
    let mut net_rx = None;
    for (ln, line) in it {
        let mut fs = fields(line);
        let Some((c0, label)) = fs.next() else {
            return Err(ParseError::new(ln, 1, K::UnexpectedEnd("a softirq name")));
        };
        if !label.ends_with(':') || label.len() < 2 {
            return Err(ParseError::new(ln, c0, K::Expected("NAME:")));
        }
        let values: Vec<(usize, &str)> = fs.collect();
        if values.len() != cpus.len() {
            let col = values.get(cpus.len()).map_or(end_col(line), |(c, _)| *c);
            return Err(ParseError::new(
                ln,
                col,
                K::FieldCount {
                    expected: cpus.len() + 1,
                    found: values.len() + 1,
                },
            ));
        }
        let mut counts = Vec::with_capacity(values.len());
        for (c, v) in values {
            counts.push(dec_u64(v, ln, c)?);
        }
        if label == "NET_RX:" {
            if net_rx.is_some() {
                return Err(ParseError::new(ln, c0, K::Duplicate("NET_RX row")));
            }
            net_rx = Some(counts);
        }
    }
    let counts = net_rx.ok_or_else(|| {
        let last = text.split_terminator('\n').count();
        ParseError::new(last + 1, 1, K::Missing("NET_RX"))
    })?;
    Ok(NetRxSoftirqs { cpus, counts })
}

// ---------------------------------------------------------------------------
// CPU lists and masks

/// Parses a CPU list (`0-3,5,7-8`, as in
/// `/sys/devices/system/cpu/{possible,online}`) into sorted, de-duplicated
/// CPU ids. An empty list (`""` or `"\n"`) is valid and empty.
///
/// ```
/// use conntrack_core::host::parse_cpu_list;
/// assert_eq!(parse_cpu_list("0-3,5,7-8\n").unwrap(), vec![0, 1, 2, 3, 5, 7, 8]);
/// assert_eq!(parse_cpu_list("\n").unwrap(), Vec::<u32>::new());
/// assert!(parse_cpu_list("3-1").is_err());
/// ```
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, ParseError> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.contains('\n') {
        return Err(ParseError::new(2, 1, K::Trailing));
    }
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut col = 1;
    for item in body.split(',') {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (item, None),
        };
        let start = dec_u32(a, 1, col)?;
        let end = match b {
            Some(b) => dec_u32(b, 1, col + a.len() + 1)?,
            None => start,
        };
        if start > end {
            return Err(ParseError::new(1, col, K::InvalidRange));
        }
        if end >= MAX_CPUS || out.len() as u64 + u64::from(end - start) >= u64::from(MAX_CPUS) {
            return Err(ParseError::new(1, col, K::TooManyCpus));
        }
        out.extend(start..=end);
        col += item.len() + 1;
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Renders CPU ids in the kernel's list form (`%*pbl`): sorted ranges,
/// `0-3,5,7-8`, no trailing newline. Duplicates are ignored.
///
/// ```
/// use conntrack_core::host::render_cpu_list;
/// assert_eq!(render_cpu_list(&[8, 0, 1, 2, 3, 5, 7]), "0-3,5,7-8");
/// assert_eq!(render_cpu_list(&[]), "");
/// ```
pub fn render_cpu_list(cpus: &[u32]) -> String {
    let mut v = cpus.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

/// Parses a CPU mask as the kernel prints it (`%*pb`, e.g. `rps_cpus`):
/// comma-separated 32-bit hex groups, most significant first. The first
/// group may be shorter (the kernel prints only as many digits as there
/// are CPUs: `0` on a 2-CPU machine); the others have 8 digits.
///
/// ```
/// use conntrack_core::host::parse_rps_mask;
/// assert_eq!(parse_rps_mask("00000000,0000000f\n").unwrap(), vec![0, 1, 2, 3]);
/// assert_eq!(parse_rps_mask("1,00000002\n").unwrap(), vec![1, 32]);
/// assert_eq!(parse_rps_mask("0\n").unwrap(), Vec::<u32>::new());
/// assert!(parse_rps_mask("0000000g\n").is_err());
/// ```
pub fn parse_rps_mask(text: &str) -> Result<Vec<u32>, ParseError> {
    nonempty(text)?;
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.contains('\n') {
        return Err(ParseError::new(2, 1, K::Trailing));
    }
    let groups: Vec<&str> = body.split(',').collect();
    if groups.len() as u64 * 32 > u64::from(MAX_CPUS) {
        return Err(ParseError::new(1, 1, K::TooManyCpus));
    }
    let mut words = Vec::with_capacity(groups.len());
    let mut col = 1;
    for (i, g) in groups.iter().enumerate() {
        if g.is_empty() {
            return Err(ParseError::new(1, col, K::UnexpectedEnd("hex digits")));
        }
        if let Some(p) = g.bytes().position(|b| !b.is_ascii_hexdigit()) {
            return Err(ParseError::new(1, col + p, K::InvalidHex));
        }
        if g.len() > 8 || (i > 0 && g.len() != 8) {
            return Err(ParseError::new(1, col, K::Expected("8 hex digits")));
        }
        let w = u32::from_str_radix(g, 16).map_err(|_| ParseError::new(1, col, K::InvalidHex))?;
        words.push(w);
        col += g.len() + 1;
    }
    let mut out = Vec::new();
    for (k, w) in words.iter().rev().enumerate() {
        for bit in 0..32u32 {
            if w & (1 << bit) != 0 {
                out.push(k as u32 * 32 + bit);
            }
        }
    }
    Ok(out)
}

/// Renders CPU ids as the kernel prints a mask of `nr_cpu_ids` bits
/// (`%*pb`): 32-bit groups, most significant first, the first group with
/// `ceil((nr_cpu_ids % 32 or 32) / 4)` digits. CPUs at or above
/// `nr_cpu_ids` are ignored; `nr_cpu_ids` 0 is treated as 1.
///
/// ```
/// use conntrack_core::host::render_rps_mask;
/// assert_eq!(render_rps_mask(&[0, 1, 2, 3], 64), "00000000,0000000f");
/// assert_eq!(render_rps_mask(&[], 2), "0");
/// assert_eq!(render_rps_mask(&[1, 32], 33), "1,00000002");
/// ```
pub fn render_rps_mask(cpus: &[u32], nr_cpu_ids: u32) -> String {
    let nbits = nr_cpu_ids.clamp(1, MAX_CPUS);
    let ngroups = nbits.div_ceil(32) as usize;
    let mut words = vec![0u32; ngroups];
    for &c in cpus {
        if c < nbits {
            words[(c / 32) as usize] |= 1 << (c % 32);
        }
    }
    let first_bits = match nbits % 32 {
        0 => 32,
        n => n,
    };
    let mut out = String::new();
    for (i, w) in words.iter().rev().enumerate() {
        if i == 0 {
            let width = first_bits.div_ceil(4) as usize;
            out.push_str(&format!("{w:0width$x}"));
        } else {
            out.push_str(&format!(",{w:08x}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// /proc/modules

/// Parses `/proc/modules` and returns the module names in file order.
/// Each line is `name size refcount deps state address [taints]`; all
/// fields are checked.
///
/// ```
/// use conntrack_core::host::parse_modules;
/// let text = "nf_nat_ftp 20480 0 - Live 0xffffffffc0a1b000\n\
/// nf_conntrack_ftp 24576 1 nf_nat_ftp, Live 0x0000000000000000 (E)\n";
/// assert_eq!(parse_modules(text).unwrap(), vec!["nf_nat_ftp", "nf_conntrack_ftp"]);
/// assert!(parse_modules("nf_nat_ftp 20480\n").is_err());
/// ```
pub fn parse_modules(text: &str) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    for (ln, line) in lines(text) {
        let f: Vec<(usize, &str)> = fields(line).collect();
        if f.len() < 6 {
            return Err(ParseError::new(
                ln,
                end_col(line),
                K::UnexpectedEnd("6 fields"),
            ));
        }
        if f.len() > 7 {
            return Err(ParseError::new(ln, f[7].0, K::Trailing));
        }
        let (nc, name) = f[0];
        if let Some(p) = name
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err(ParseError::new(ln, nc + p, K::Expected("a module name")));
        }
        dec_u64(f[1].1, ln, f[1].0)?;
        if f[2].1 != "-" {
            dec_u64(f[2].1, ln, f[2].0)?;
        }
        if f[3].1 != "-" && !f[3].1.ends_with(',') {
            return Err(ParseError::new(ln, f[3].0, K::Expected("'-' or 'a,b,'")));
        }
        if !matches!(f[4].1, "Live" | "Loading" | "Unloading") {
            return Err(ParseError::new(ln, f[4].0, K::Expected("a module state")));
        }
        let addr = f[5].1.strip_prefix("0x").ok_or(ParseError::new(
            ln,
            f[5].0,
            K::Expected("0x address"),
        ))?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseError::new(ln, f[5].0 + 2, K::InvalidHex));
        }
        if let Some(&(c, t)) = f.get(6)
            && !(t.starts_with('(') && t.ends_with(')'))
        {
            return Err(ParseError::new(ln, c, K::Expected("(taints)")));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// Whether a module name is a conntrack or NAT helper
/// ([`CONNTRACK_HELPERS`], [`NAT_HELPERS`]).
///
/// ```
/// use conntrack_core::host::is_helper_module;
/// assert!(is_helper_module("nf_conntrack_ftp"));
/// assert!(is_helper_module("nf_nat_sip"));
/// assert!(!is_helper_module("nf_conntrack_netlink"));
/// assert!(!is_helper_module("nf_conntrack"));
/// ```
pub fn is_helper_module(name: &str) -> bool {
    if let Some(h) = name.strip_prefix("nf_conntrack_") {
        CONNTRACK_HELPERS.contains(&h)
    } else if let Some(h) = name.strip_prefix("nf_nat_") {
        NAT_HELPERS.contains(&h)
    } else {
        false
    }
}

// ---------------------------------------------------------------------------
// Page size, namespaces

/// The page size from a `/proc/PID/smaps` file (or a prefix of one made of
/// whole lines), in bytes: the smallest `KernelPageSize:` value, since
/// hugetlb mappings report their huge page size. Only the
/// `KernelPageSize:` lines are checked.
///
/// ```
/// use conntrack_core::host::parse_smaps_page_size;
/// let text = "55e1b923b000-55e1b923d000 r--p 00000000 fe:00 247282   /usr/bin/head\n\
/// Size:                  8 kB\nKernelPageSize:        4 kB\n\
/// 7f0000000000-7f0000200000 rw-s 00000000 00:10 1   /hugetlb\nKernelPageSize:     2048 kB\n";
/// assert_eq!(parse_smaps_page_size(text).unwrap(), 4096);
/// ```
pub fn parse_smaps_page_size(text: &str) -> Result<u64, ParseError> {
    nonempty(text)?;
    let mut best: Option<u64> = None;
    for (ln, line) in lines(text) {
        const KEY: &str = "KernelPageSize:";
        let Some(rest) = line.strip_prefix(KEY) else {
            continue;
        };
        let mut fs = fields(rest).map(|(c, f)| (c + KEY.len(), f));
        let Some((c, v)) = fs.next() else {
            return Err(ParseError::new(
                ln,
                end_col(line),
                K::UnexpectedEnd("a size"),
            ));
        };
        let kb = dec_u64(v, ln, c)?;
        match fs.next() {
            Some((_, "kB")) => {}
            Some((uc, _)) => return Err(ParseError::new(ln, uc, K::Expected("kB"))),
            None => return Err(ParseError::new(ln, end_col(line), K::UnexpectedEnd("kB"))),
        }
        let bytes = match kb.checked_mul(1024) {
            Some(b) if b.is_power_of_two() => b,
            _ => return Err(ParseError::new(ln, c, K::OutOfRange)),
        };
        best = Some(best.map_or(bytes, |b| b.min(bytes)));
    }
    best.ok_or_else(|| {
        let last = text.split_terminator('\n').count();
        ParseError::new(last + 1, 1, K::Missing("KernelPageSize"))
    })
}

/// `AT_PAGESZ` from `/proc/self/auxv` (pairs of native-endian machine
/// words, type then value, ending with `AT_NULL`). Only meaningful for the
/// reading process's own auxv, as the word size and byte order are this
/// build's. Errors use line 1 and the 1-based byte offset as column.
///
/// ```
/// use conntrack_core::host::parse_auxv_page_size;
/// let word = |v: usize| v.to_ne_bytes().to_vec();
/// let auxv = [word(6), word(4096), word(0), word(0)].concat();
/// assert_eq!(parse_auxv_page_size(&auxv).unwrap(), 4096);
/// assert!(parse_auxv_page_size(&auxv[..3]).is_err());
/// ```
pub fn parse_auxv_page_size(bytes: &[u8]) -> Result<u64, ParseError> {
    const AT_NULL: u64 = 0;
    const AT_PAGESZ: u64 = 6;
    const W: usize = std::mem::size_of::<usize>();
    if bytes.is_empty() {
        return Err(ParseError::new(1, 1, K::Empty));
    }
    let word = |chunk: &[u8]| -> u64 {
        let mut buf = [0u8; W];
        buf.copy_from_slice(chunk);
        usize::from_ne_bytes(buf) as u64
    };
    let mut off = 0;
    while off < bytes.len() {
        if bytes.len() - off < 2 * W {
            return Err(ParseError::new(
                1,
                off + 1,
                K::UnexpectedEnd("an auxv entry"),
            ));
        }
        let ty = word(&bytes[off..off + W]);
        let val = word(&bytes[off + W..off + 2 * W]);
        match ty {
            AT_NULL => break,
            AT_PAGESZ if val.is_power_of_two() => return Ok(val),
            AT_PAGESZ => return Err(ParseError::new(1, off + W + 1, K::OutOfRange)),
            _ => {}
        }
        off += 2 * W;
    }
    Err(ParseError::new(1, off + 1, K::Missing("AT_PAGESZ")))
}

/// The inode number in a namespace link's target (`net:[4026531833]`, as
/// `readlink /proc/PID/ns/net` prints it). Fixture trees may store the
/// target as a file's text; a final newline is accepted.
///
/// ```
/// use conntrack_core::host::parse_ns_link;
/// assert_eq!(parse_ns_link("net:[4026531833]").unwrap(), 0xEFFF_FFF9);
/// assert!(parse_ns_link("net:[x]").is_err());
/// ```
pub fn parse_ns_link(text: &str) -> Result<u64, ParseError> {
    let v = parse_single_value(text)?;
    let Some(open) = v.find(":[") else {
        return Err(ParseError::new(1, 1, K::Expected("TYPE:[INODE]")));
    };
    let inner = &v[open + 2..];
    let Some(num) = inner.strip_suffix(']') else {
        return Err(ParseError::new(1, v.len() + 1, K::Expected("']'")));
    };
    dec_u64(num, 1, open + 3)
}

/// Decides whether a namespace is the initial network namespace.
///
/// The clues, in order:
/// 1. `ns_ino == NET_NS_INIT_INO` ([`NET_NS_INIT_INO`]): initial (exact).
/// 2. On 6.18+ kernels, any other inode: not initial (exact).
/// 3. On 5.13+ kernels, `max_read_only == Some(true)` (the
///    `nf_conntrack_max` sysctl file has no write bit): not initial. Since
///    commit 2671fa4 ("netfilter: conntrack: Make global sysctls readonly
///    in non-init netns", 5.13) the kernel registers `nf_conntrack_max`,
///    `_expect_max` and `_buckets` as 0444 outside the initial namespace.
///    A writable file says nothing (a fixture tree's modes are git's).
/// 4. When `pid1_ino` (the inode of `/proc/1/ns/net`, which needs root) is
///    known: initial iff equal. This assumes `/proc` shows the host's
///    PID 1; in a container with its own PID namespace it compares with
///    the container's init and wrongly says "initial" for the container's
///    namespace.
/// 5. Otherwise unknown.
///
/// ```
/// use conntrack_core::{host::{init_netns_from, NET_NS_INIT_INO}, KernelVersion};
/// assert_eq!(init_netns_from(NET_NS_INIT_INO, None, None, None), Some(true));
/// let v618 = Some(KernelVersion::new(6, 18, 0));
/// assert_eq!(init_netns_from(4026532300, None, v618, None), Some(false));
/// let v515 = Some(KernelVersion::new(5, 15, 0));
/// assert_eq!(init_netns_from(4026532300, Some(4026532300), v515, Some(true)), Some(false));
/// let v510 = Some(KernelVersion::new(5, 10, 0));
/// assert_eq!(init_netns_from(4026531992, Some(4026531992), v510, Some(true)), Some(true));
/// assert_eq!(init_netns_from(4026532300, None, v510, None), None);
/// ```
pub fn init_netns_from(
    ns_ino: u64,
    pid1_ino: Option<u64>,
    kernel: Option<KernelVersion>,
    max_read_only: Option<bool>,
) -> Option<bool> {
    if ns_ino == NET_NS_INIT_INO {
        return Some(true);
    }
    if kernel.is_some_and(|k| k.at_least(6, 18)) {
        return Some(false);
    }
    if kernel.is_some_and(|k| k.at_least(5, 13)) && max_read_only == Some(true) {
        return Some(false);
    }
    pid1_ino.map(|p| p == ns_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_at(r: Result<impl std::fmt::Debug, ParseError>) -> (usize, usize, K) {
        let e = r.expect_err("expected an error");
        (e.location.line, e.location.column, e.kind)
    }

    #[test]
    fn utf8_location() {
        assert_eq!(err_at(decode_utf8(b"\xff")), (1, 1, K::NotUtf8));
        assert_eq!(err_at(decode_utf8(b"ab\ncd\xc3")), (2, 3, K::NotUtf8));
    }

    #[test]
    fn single_values() {
        assert_eq!(parse_single_value("abc").unwrap(), "abc");
        assert_eq!(err_at(parse_single_value("")), (1, 1, K::Empty));
        assert_eq!(err_at(parse_single_value("1\n2")), (2, 1, K::Trailing));
        assert_eq!(
            err_at(parse_single_value("a\0b\n")),
            (1, 2, K::Expected("printable text"))
        );
        assert_eq!(parse_sysctl_u32("0\n").unwrap(), 0);
        assert_eq!(parse_sysctl_u32("4294967295\n").unwrap(), u32::MAX);
        assert_eq!(parse_sysctl_u32("-1\n").unwrap(), u32::MAX);
        assert_eq!(parse_sysctl_u32("-2147483648\n").unwrap(), 1 << 31);
        assert_eq!(
            err_at(parse_sysctl_u32("-2147483649")),
            (1, 1, K::OutOfRange)
        );
        assert_eq!(err_at(parse_sysctl_u32("-0")), (1, 1, K::OutOfRange));
        assert_eq!(
            err_at(parse_sysctl_u32("4294967296")),
            (1, 1, K::OutOfRange)
        );
        assert_eq!(err_at(parse_sysctl_u32("12 3")), (1, 3, K::InvalidNumber));
        assert_eq!(
            err_at(parse_sysctl_u32("\n")),
            (1, 1, K::UnexpectedEnd("a number"))
        );
        assert_eq!(
            err_at(parse_sysctl_u32("-")),
            (1, 2, K::UnexpectedEnd("a number"))
        );
        assert!(!parse_sysctl_bool("N\n").unwrap());
        assert!(parse_sysctl_bool("1").unwrap());
        assert_eq!(
            err_at(parse_sysctl_bool("yes")),
            (1, 1, K::Expected("0 or 1"))
        );
        assert_eq!(err_at(parse_osrelease("6.1 x\n")), (1, 4, K::Trailing));
        assert_eq!(
            err_at(parse_osrelease("linux\n")),
            (1, 1, K::Expected("a kernel release (N.N...)"))
        );
        let (r, v) = parse_osrelease("3.10.0-1160.el7.x86_64\n").unwrap();
        assert_eq!(r, "3.10.0-1160.el7.x86_64");
        assert_eq!(v, KernelVersion::new(3, 10, 0));
    }

    #[test]
    fn timeout_keys() {
        let cases = [
            ("nf_conntrack_generic_timeout", Some(("generic", "default"))),
            ("nf_conntrack_icmp_timeout", Some(("icmp", "default"))),
            ("nf_conntrack_icmpv6_timeout", Some(("icmpv6", "default"))),
            ("nf_conntrack_gre_timeout", Some(("gre", "default"))),
            ("nf_conntrack_gre_timeout_stream", Some(("gre", "stream"))),
            (
                "nf_conntrack_sctp_timeout_cookie_echoed",
                Some(("sctp", "cookie_echoed")),
            ),
            (
                "nf_conntrack_dccp_timeout_partopen",
                Some(("dccp", "partopen")),
            ),
            (
                "nf_conntrack_tcp_timeout_unacknowledged",
                Some(("tcp", "unacknowledged")),
            ),
            (
                "nf_conntrack_udplite_timeout_stream",
                Some(("udplite", "stream")),
            ),
            ("nf_conntrack_max", None),
            ("nf_conntrack_tcp_timeout_", None),
            ("nf_conntrack__timeout", None),
            ("nf_conntrack_udp_timeoutx", None),
            ("nf_conntrack_dccp_loose", None),
            ("nf_log_all_netns", None),
            ("nf_conntrack_TCP_timeout", None),
            ("nf_conntrack_events_retry_timeout", None),
            ("nf_conntrack_frag6_timeout", None),
            ("nf_conntrack_tcp_timeout_Close", None),
        ];
        for (name, want) in cases {
            assert_eq!(timeout_key(name), want, "{name}");
        }
        let mut s = BTreeMap::new();
        s.insert("nf_conntrack_udp_timeout".into(), "3x\n".into());
        s.insert("nf_conntrack_udp_timeout_stream".into(), "120\n".into());
        let (t, bad) = timeouts_from_sysctls(&s);
        assert_eq!(t["udp"].len(), 1);
        assert_eq!(t["udp"]["stream"], 120);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "nf_conntrack_udp_timeout");
        assert_eq!(bad[0].1, ParseError::new(1, 2, K::InvalidNumber));
    }

    #[test]
    fn meminfo() {
        let m =
            parse_meminfo("MemTotal: 10 kB\nHugePages_Total:   7\nActive(anon):  1 kB\n").unwrap();
        assert_eq!(m.mem_total_bytes(), Some(10240));
        assert_eq!(m.fields["HugePages_Total"], 7);
        assert_eq!(m.fields["Active(anon)"], 1024);
        assert_eq!(err_at(parse_meminfo("")), (1, 1, K::Empty));
        assert_eq!(
            err_at(parse_meminfo("MemTotal 1 kB\n")),
            (1, 14, K::Expected("':'"))
        );
        assert_eq!(
            err_at(parse_meminfo(": 1 kB\n")),
            (1, 1, K::Expected("a key"))
        );
        assert_eq!(
            err_at(parse_meminfo("Mem\x01: 1 kB\n")),
            (1, 4, K::Expected("a printable key"))
        );
        assert_eq!(
            err_at(parse_meminfo("A: 1\nB:\n")),
            (2, 3, K::UnexpectedEnd("a value"))
        );
        assert_eq!(
            err_at(parse_meminfo("A: 1 MB\n")),
            (1, 6, K::Expected("kB"))
        );
        assert_eq!(err_at(parse_meminfo("A: 1 kB x\n")), (1, 9, K::Trailing));
        assert_eq!(
            err_at(parse_meminfo("A: 1\nA: 2\n")),
            (2, 1, K::Duplicate("key"))
        );
        assert_eq!(
            err_at(parse_meminfo("A: 18446744073709551615 kB\n")),
            (1, 4, K::OutOfRange)
        );
    }

    const SLAB_HDR: &str = "slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n";

    #[test]
    fn slabinfo() {
        let row = |n: &str| format!("{n} 1 2 256 16 1 : tunables 0 0 0 : slabdata 1 1 0\n");
        let text = format!(
            "{SLAB_HDR}{}{}{}{}",
            row("nf_conntrack_expect"),
            row("nf_conntrack_ffff880037a5c000"),
            row("nf_conntrack"),
            row("kmalloc-256")
        );
        let c = parse_slabinfo(&text).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "nf_conntrack_ffff880037a5c000");
        assert_eq!(c[1].obj_size, 256);
        // Truncated last row.
        let t = format!("{SLAB_HDR}nf_conntrack 1 2 256 16 1 : tunables 0");
        assert_eq!(
            err_at(parse_slabinfo(&t)),
            (
                3,
                39,
                K::FieldCount {
                    expected: 16,
                    found: 9
                }
            )
        );
        // Too wide.
        let t =
            format!("{SLAB_HDR}nf_conntrack 1 2 256 16 1 : tunables 0 0 0 : slabdata 1 1 0 9\n");
        assert_eq!(
            err_at(parse_slabinfo(&t)),
            (
                3,
                61,
                K::FieldCount {
                    expected: 16,
                    found: 17
                }
            )
        );
        // Bad number, bad separator.
        let t = format!("{SLAB_HDR}nf_conntrack 1 2 2x6 16 1 : tunables 0 0 0 : slabdata 1 1 0\n");
        assert_eq!(err_at(parse_slabinfo(&t)), (3, 19, K::InvalidNumber));
        let t = format!("{SLAB_HDR}nf_conntrack 1 2 256 16 1 ; tunables 0 0 0 : slabdata 1 1 0\n");
        assert_eq!(
            err_at(parse_slabinfo(&t)),
            (3, 27, K::Expected("a column separator"))
        );
        // Versions and headers.
        assert_eq!(
            err_at(parse_slabinfo("slabinfo - version: 3.0\n")),
            (1, 21, K::UnsupportedVersion)
        );
        assert_eq!(err_at(parse_slabinfo("junk\n")), (1, 1, K::UnknownHeader));
        assert_eq!(
            err_at(parse_slabinfo("slabinfo - version: 2.1\n")),
            (2, 1, K::UnexpectedEnd("the column header"))
        );
        assert_eq!(
            err_at(parse_slabinfo(
                "slabinfo - version: 2.1\n# name <active_objs> <x>\n"
            )),
            (2, 22, K::UnknownHeader)
        );
        assert_eq!(err_at(parse_slabinfo("")), (1, 1, K::Empty));
        // Header only: valid, nothing found.
        assert!(parse_slabinfo(SLAB_HDR).unwrap().is_empty());
    }

    #[test]
    fn slab_names() {
        assert!(!is_conntrack_slab("nf_conntrack_"));
        assert!(!is_conntrack_slab("nf_conntrack_dead"));
        assert!(is_conntrack_slab("nf_conntrack_c0a1b2c3"));
        assert!(!is_conntrack_slab("nf_conntrack_ffff880037a5c000aa"));
        assert!(!is_conntrack_slab("nf_conntrackx"));
        assert!(!is_conntrack_slab("kmalloc-256"));
    }

    #[test]
    fn softirqs() {
        let ok = "   CPU0 CPU2\nHI: 0 0\nNET_RX: 5 6\n";
        let s = parse_softirqs(ok).unwrap();
        assert_eq!((s.cpus, s.counts), (vec![0, 2], vec![5, 6]));
        assert_eq!(err_at(parse_softirqs("")), (1, 1, K::Empty));
        assert_eq!(
            err_at(parse_softirqs("   CPU0 GPU1\n")),
            (1, 9, K::UnknownHeader)
        );
        assert_eq!(
            err_at(parse_softirqs("   CPUx\n")),
            (1, 7, K::InvalidNumber)
        );
        assert_eq!(
            err_at(parse_softirqs("  \nNET_RX: 1\n")),
            (1, 3, K::UnexpectedEnd("CPU columns"))
        );
        assert_eq!(
            err_at(parse_softirqs("CPU0 CPU1\nNET_RX: 1\n")),
            (
                2,
                10,
                K::FieldCount {
                    expected: 3,
                    found: 2
                }
            )
        );
        assert_eq!(
            err_at(parse_softirqs("CPU0\nNET_RX: 1 2\n")),
            (
                2,
                11,
                K::FieldCount {
                    expected: 2,
                    found: 3
                }
            )
        );
        assert_eq!(
            err_at(parse_softirqs("CPU0\nNET_RX 1\n")),
            (2, 1, K::Expected("NAME:"))
        );
        assert_eq!(
            err_at(parse_softirqs("CPU0\nHI: 1\n")),
            (3, 1, K::Missing("NET_RX"))
        );
        assert_eq!(
            err_at(parse_softirqs("CPU0\nNET_RX: 1\nNET_RX: 2\n")),
            (3, 1, K::Duplicate("NET_RX row"))
        );
        assert_eq!(
            err_at(parse_softirqs("CPU0\n\n")),
            (2, 1, K::UnexpectedEnd("a softirq name"))
        );
        assert_eq!(err_at(parse_softirqs("CPU99999\n")), (1, 4, K::TooManyCpus));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list("1,0,0-1").unwrap(), vec![0, 1]);
        assert_eq!(
            err_at(parse_cpu_list("0-")),
            (1, 3, K::UnexpectedEnd("a number"))
        );
        assert_eq!(
            err_at(parse_cpu_list("0,,1")),
            (1, 3, K::UnexpectedEnd("a number"))
        );
        assert_eq!(err_at(parse_cpu_list("2,5-3")), (1, 3, K::InvalidRange));
        assert_eq!(
            err_at(parse_cpu_list("0-4294967295")),
            (1, 1, K::TooManyCpus)
        );
        assert_eq!(
            err_at(parse_cpu_list("0-9999999999")),
            (1, 3, K::OutOfRange)
        );
        assert_eq!(err_at(parse_cpu_list("0\n1\n")), (2, 1, K::Trailing));
        assert_eq!(err_at(parse_cpu_list("0-1-2")), (1, 4, K::InvalidNumber));
    }

    #[test]
    fn rps_masks() {
        assert_eq!(parse_rps_mask("f").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_rps_mask("80000000,00000000\n").unwrap(), vec![63]);
        assert_eq!(err_at(parse_rps_mask("")), (1, 1, K::Empty));
        assert_eq!(
            err_at(parse_rps_mask("\n")),
            (1, 1, K::UnexpectedEnd("hex digits"))
        );
        assert_eq!(
            err_at(parse_rps_mask("00000000,0000zz00\n")),
            (1, 14, K::InvalidHex)
        );
        assert_eq!(
            err_at(parse_rps_mask("0,f\n")),
            (1, 3, K::Expected("8 hex digits"))
        );
        assert_eq!(
            err_at(parse_rps_mask("123456789")),
            (1, 1, K::Expected("8 hex digits"))
        );
        assert_eq!(
            err_at(parse_rps_mask("0,")),
            (1, 3, K::UnexpectedEnd("hex digits"))
        );
        assert_eq!(err_at(parse_rps_mask("f\nf")), (2, 1, K::Trailing));
        let huge = vec!["00000000"; 3000].join(",");
        assert_eq!(err_at(parse_rps_mask(&huge)), (1, 1, K::TooManyCpus));
        assert_eq!(render_rps_mask(&[0], 8), "01");
        assert_eq!(render_rps_mask(&[31], 32), "80000000");
        assert_eq!(render_rps_mask(&[5], 4), "0");
    }

    #[test]
    fn modules() {
        assert!(parse_modules("").unwrap().is_empty());
        let l = |s: &str| err_at(parse_modules(s));
        assert_eq!(l("a 1 0 - Live\n"), (1, 13, K::UnexpectedEnd("6 fields")));
        assert_eq!(l("a 1 0 - Live 0x0 (E) x\n"), (1, 22, K::Trailing));
        assert_eq!(
            l("a/b 1 0 - Live 0x0\n"),
            (1, 2, K::Expected("a module name"))
        );
        assert_eq!(l("a x 0 - Live 0x0\n"), (1, 3, K::InvalidNumber));
        assert_eq!(l("a 1 y - Live 0x0\n"), (1, 5, K::InvalidNumber));
        assert_eq!(
            l("a 1 0 b Live 0x0\n"),
            (1, 7, K::Expected("'-' or 'a,b,'"))
        );
        assert_eq!(
            l("a 1 0 - Dead 0x0\n"),
            (1, 9, K::Expected("a module state"))
        );
        assert_eq!(l("a 1 0 - Live 00\n"), (1, 14, K::Expected("0x address")));
        assert_eq!(l("a 1 0 - Live 0xg\n"), (1, 16, K::InvalidHex));
        assert_eq!(l("a 1 0 - Live 0x1 E\n"), (1, 18, K::Expected("(taints)")));
        assert_eq!(
            parse_modules("a 1 - b,c, Unloading 0x1\n").unwrap(),
            vec!["a"]
        );
        for h in CONNTRACK_HELPERS {
            assert!(is_helper_module(&format!("nf_conntrack_{h}")));
        }
        assert!(is_helper_module("nf_nat_snmp_basic"));
        assert!(!is_helper_module("nf_nat"));
        assert!(!is_helper_module("nf_conntrack_ipv4"));
    }

    #[test]
    fn page_size_and_ns() {
        assert_eq!(
            parse_smaps_page_size("KernelPageSize: 64 kB\n").unwrap(),
            65536
        );
        assert_eq!(
            err_at(parse_smaps_page_size("a\nb\n")),
            (3, 1, K::Missing("KernelPageSize"))
        );
        assert_eq!(
            err_at(parse_smaps_page_size("KernelPageSize: 3 kB\n")),
            (1, 17, K::OutOfRange)
        );
        assert_eq!(
            err_at(parse_smaps_page_size("KernelPageSize: 4\n")),
            (1, 18, K::UnexpectedEnd("kB"))
        );
        assert_eq!(
            err_at(parse_smaps_page_size("KernelPageSize:\n")),
            (1, 16, K::UnexpectedEnd("a size"))
        );
        let w = |v: usize| v.to_ne_bytes().to_vec();
        let n = std::mem::size_of::<usize>();
        assert_eq!(
            parse_auxv_page_size(&[w(33), w(1), w(6), w(16384), w(0), w(0)].concat()).unwrap(),
            16384
        );
        assert_eq!(
            err_at(parse_auxv_page_size(&[w(33), w(1), w(0), w(0)].concat())),
            (1, 2 * n + 1, K::Missing("AT_PAGESZ"))
        );
        assert_eq!(
            err_at(parse_auxv_page_size(&[w(6), w(3)].concat())),
            (1, n + 1, K::OutOfRange)
        );
        assert_eq!(err_at(parse_auxv_page_size(&[])), (1, 1, K::Empty));
        assert_eq!(parse_ns_link("net:[12]\n").unwrap(), 12);
        assert_eq!(
            err_at(parse_ns_link("net")),
            (1, 1, K::Expected("TYPE:[INODE]"))
        );
        assert_eq!(err_at(parse_ns_link("net:[12")), (1, 8, K::Expected("']'")));
        assert_eq!(err_at(parse_ns_link("net:[1x]")), (1, 7, K::InvalidNumber));
    }
}
