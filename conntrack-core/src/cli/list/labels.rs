//! Connection label names: the `connlabel.conf` map the CLI uses to print
//! `labels=` (it prints names only, never bit numbers).

/// A map between connection label bits and names, as read from
/// `/etc/xtables/connlabel.conf` ([`LabelMap::DEFAULT_PATH`]).
///
/// The `conntrack` CLI prints `labels=` only with `-o labels`, and then only
/// the *names* of set bits that this file names (unnamed bits are left
/// out). Parsing those names back into bits therefore needs the same map:
/// give it to [`ListParser::with_labels`](super::ListParser::with_labels).
/// [`LabelMap::numeric`] names every bit by its number, which is what the
/// parser falls back to without a map.
///
/// ```
/// use conntrack_core::cli::list::LabelMap;
/// let map = LabelMap::parse("# comment\n0 eth0-in\n1 eth0-out\n 5   bulk traffic \n");
/// assert_eq!(map.bit("eth0-out"), Some(1));
/// assert_eq!(map.name(5), Some("bulk traffic"));
/// assert_eq!(map.name(2), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMap {
    /// Index = bit (< 128).
    names: Vec<Option<String>>,
}

impl LabelMap {
    /// Where libnetfilter_conntrack reads the map from.
    pub const DEFAULT_PATH: &'static str = "/etc/xtables/connlabel.conf";

    /// An empty map.
    pub fn new() -> Self {
        LabelMap::default()
    }

    /// Every bit named by its decimal number (`"0"` ... `"127"`).
    ///
    /// ```
    /// use conntrack_core::cli::list::LabelMap;
    /// assert_eq!(LabelMap::numeric().bit("42"), Some(42));
    /// ```
    pub fn numeric() -> Self {
        LabelMap {
            names: (0..crate::Labels::BITS)
                .map(|b| Some(b.to_string()))
                .collect(),
        }
    }

    /// Reads `connlabel.conf` text the way libnetfilter_conntrack does:
    /// one `BIT NAME` per line, the bit in C `strtoul` base-0 notation
    /// (`12`, `0x0c`, `014`), the name being the rest of the line trimmed;
    /// lines starting with `#`, lines without a number, names with other
    /// characters than ASCII letters, digits, space and `-`, and bits or
    /// names already seen are skipped, as the library skips them. Bits
    /// above 127 are skipped too (the kernel has 128 label bits).
    pub fn parse(text: &str) -> Self {
        let mut map = LabelMap::new();
        for line in text.split('\n') {
            if line.starts_with('#') {
                continue;
            }
            let Some((bit, rest)) = strtoul(line) else {
                continue;
            };
            let name = rest.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c'));
            let sane = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-');
            if !name.is_empty() && sane {
                map.insert(bit, name);
            }
        }
        map
    }

    /// Names bit `bit`. Returns `false` (and changes nothing) when the bit
    /// is >= 128 or the bit or the name is already in the map.
    pub fn insert(&mut self, bit: u32, name: &str) -> bool {
        if bit >= crate::Labels::BITS || self.name(bit).is_some() || self.bit(name).is_some() {
            return false;
        }
        let i = bit as usize;
        if self.names.len() <= i {
            self.names.resize(i + 1, None);
        }
        self.names[i] = Some(name.to_owned());
        true
    }

    /// The bit a name stands for.
    pub fn bit(&self, name: &str) -> Option<u32> {
        self.names
            .iter()
            .position(|n| n.as_deref() == Some(name))
            .map(|i| i as u32)
    }

    /// The name of a bit.
    pub fn name(&self, bit: u32) -> Option<&str> {
        self.names.get(bit as usize)?.as_deref()
    }
}

/// C `strtoul(s, &end, 0)` limited to what a label bit can be: leading
/// whitespace, then hex (`0x`), octal (leading `0`) or decimal digits.
/// Returns the value (`None` when there are no digits or it is >= 1024,
/// the library's limit) and the text after the digits.
fn strtoul(s: &str) -> Option<(u32, &str)> {
    let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        if h.starts_with(|c: char| c.is_ascii_hexdigit()) {
            (16, h)
        } else {
            // "0x" without hex digits: strtoul reads the "0" only.
            (8, s)
        }
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let value = u32::from_str_radix(&digits[..end], radix).ok()?;
    (value < 1024).then_some((value, &digits[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_libnetfilter_conntrack() {
        let map = LabelMap::parse(
            "#0 commented\n0 zero\n0x0a ten\n014 twelve\n012 dup-bit\n  3\tthree  \n4 bad;name\n5 zero\n\
             6\n7 ok-name 2\r\n200 too-big-for-kernel\nxyz 9\n",
        );
        assert_eq!(map.name(0), Some("zero"));
        assert_eq!(map.name(10), Some("ten"));
        assert_eq!(map.name(12), Some("twelve"));
        assert_eq!(map.bit("dup-bit"), None, "octal 012 is bit 10, taken");
        assert_eq!(map.name(3), Some("three"));
        assert_eq!(map.name(4), None, "insane name skipped");
        assert_eq!(map.name(5), None, "duplicate name skipped");
        assert_eq!(map.name(6), None, "no name");
        assert_eq!(map.name(7), Some("ok-name 2"));
        assert_eq!(map.bit("too-big-for-kernel"), None);
        assert_eq!(map.bit("9"), None);
    }

    #[test]
    fn insert_refuses_duplicates() {
        let mut m = LabelMap::new();
        assert!(m.insert(1, "a"));
        assert!(!m.insert(1, "b"));
        assert!(!m.insert(2, "a"));
        assert!(!m.insert(128, "c"));
        assert_eq!(m.bit("a"), Some(1));
    }
}
