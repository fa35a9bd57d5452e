//! `/proc/softirqs`: the `NET_RX` softirq count of each CPU.

use super::cpu_list::MAX_CPUS;
use super::error::{ParseError, ParseErrorKind as K};
use super::lex::{dec_u32, dec_u64, end_col, fields, lines, nonempty};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lex::err_at;

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
}
