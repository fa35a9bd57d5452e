//! `/proc/slabinfo`: the conntrack slab caches (object size and count).

use super::error::{ParseError, ParseErrorKind as K};
use super::lex::{dec_u64, end_col, fields, lines, nonempty};
use serde::{Deserialize, Serialize};

/// One slab cache line of `/proc/slabinfo` that holds conntrack entries:
/// `nf_conntrack`, or on 3.x kernels a per-namespace `nf_conntrack_<ptr>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlabCache {
    /// Cache name.
    pub name: String,
    /// Objects in use.
    pub active_objs: u64,
    /// Objects allocated.
    pub num_objs: u64,
    /// Object size in bytes.
    pub obj_size: u64,
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lex::err_at;

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
}
