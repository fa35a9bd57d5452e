//! Aligned text tables (comfy-table) and number formatting.

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

/// comfy-table's `ASCII_NO_BORDERS` without lines between rows: a `-`
/// rule under the header, `|` between columns.
const STYLE: &str = "     -- |          ";

/// A table with a header; columns whose header starts with `>` are
/// right-aligned (the `>` is not printed). Tables never wrap: a report
/// piped to a file keeps one row per line.
///
/// ```ignore
/// let mut t = table(&["key", ">flows"]);
/// t.add_row(vec!["10.0.0.1".to_string(), "42".to_string()]);
/// println!("{t}");
/// ```
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(STYLE)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(
            headers
                .iter()
                .map(|h| Cell::new(h.trim_start_matches('>')))
                .collect::<Vec<_>>(),
        );
    for (i, h) in headers.iter().enumerate() {
        if h.starts_with('>')
            && let Some(c) = t.column_mut(i)
        {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Indents every line of a rendered table.
pub fn indent(t: &Table, by: usize) -> String {
    let pad = " ".repeat(by);
    t.to_string()
        .lines()
        .map(|l| format!("{pad}{}", l.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An integer with thousands separators: `1,234,567`.
pub fn int(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// An optional integer, `-` when unknown.
pub fn opt_int<T: Into<u64>>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| int(v.into()))
}

/// A rate: two decimals below 100, none above.
pub fn rate(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Bytes in binary units: `1.5 MiB`.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A share 0..=1 as a percentage.
pub fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}
