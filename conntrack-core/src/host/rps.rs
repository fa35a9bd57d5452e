//! RPS CPU masks: `/sys/class/net/IFACE/queues/rx-N/rps_cpus`.

use super::cpu_list::MAX_CPUS;
use super::error::{ParseError, ParseErrorKind as K};
use super::lex::nonempty;
use serde::{Deserialize, Serialize};

/// The RPS setting of one receive queue
/// (`/sys/class/net/IFACE/queues/rx-N/rps_cpus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RxQueue {
    /// Interface name.
    pub iface: String,
    /// Queue index (`rx-N`).
    pub queue: u32,
    /// CPUs RPS steers to, as CPU ids (empty: RPS off).
    pub rps_cpus: Vec<u32>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lex::err_at;

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
}
