//! The source-NAT rules of a ruleset, from captured `iptables-save` or
//! `nft list ruleset` text, with the port-selection flags that decide how
//! often new connections race for the same mapping.
//!
//! Without a random flag, SNAT/MASQUERADE first tries to keep the
//! connection's own source port, and on a conflict searches for a free one
//! from a start shared by all CPUs (a per-protocol rover before 5.0 and
//! 4.19.228) or drawn at random (since 6ed5943f8735). The mapping is only
//! reserved when the entry is confirmed, so two new connections handled at
//! the same time on different CPUs can pick the same one and the second
//! fails to confirm (`insert_failed`, `drop`). `--random-fully`
//! (`NF_NAT_RANGE_PROTO_RANDOM_FULLY`, nft `fully-random`) skips the
//! keep-the-port step and draws the start at random per connection, which
//! makes that collision rare.
//!
//! Parsing is line based and total: lines it does not understand are
//! skipped, never an error, so a ruleset from any version can be read.
//!
//! ```
//! use conntrack_core::nat_rules::NatRules;
//! let r = NatRules::parse_iptables_save("*nat\n\
//!     -A POSTROUTING -s 172.18.0.0/16 ! -o br-1 -j MASQUERADE\n\
//!     -A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE --random-fully\n\
//!     -A DOCKER ! -i br-1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:80\n\
//!     COMMIT\n");
//! assert_eq!(r.source_nat.len(), 2);
//! assert!(!r.source_nat[0].fully_random);
//! assert_eq!(r.source_nat[0].source.as_deref(), Some("172.18.0.0/16"));
//! assert!(r.source_nat[1].fully_random);
//! assert_eq!(r.dnat_rules, 1);
//! assert_eq!(r.without_fully_random().count(), 1);
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest rule text kept (longer rules are cut).
const MAX_RULE_TEXT: usize = 240;

/// Which syntax the rules were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RulesFormat {
    /// `iptables-save` (legacy or nft backend).
    IptablesSave,
    /// `nft list ruleset`.
    Nft,
}

/// How a rule translates the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SourceNatKind {
    /// `MASQUERADE` / `masquerade`: the outgoing interface's address.
    Masquerade,
    /// `SNAT` / `snat to`: a configured address.
    Snat,
}

/// One source-NAT rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct SourceNatRule {
    /// MASQUERADE or SNAT.
    pub kind: SourceNatKind,
    /// `--random-fully` / `fully-random`.
    pub fully_random: bool,
    /// `--random` / `random` (randomised offset per tuple hash, older
    /// semantics; weaker than fully random).
    pub random: bool,
    /// `--persistent` / `persistent`.
    pub persistent: bool,
    /// The source match (`-s CIDR`, `ip saddr CIDR`), when the rule has one
    /// (control characters removed, cut to 240 characters).
    pub source: Option<String>,
    /// The 1-based line of the rule in the text.
    pub line: usize,
    /// The rule as written (control characters removed, cut to 240
    /// characters).
    pub text: String,
}

impl fmt::Display for SourceNatRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.text)
    }
}

/// The NAT rules found in a ruleset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NatRules {
    /// The syntax read.
    pub format: RulesFormat,
    /// Source-NAT rules in the order written.
    pub source_nat: Vec<SourceNatRule>,
    /// Destination-NAT rules (DNAT, REDIRECT, `dnat to`, `redirect`).
    pub dnat_rules: usize,
}

fn clean(line: &str) -> String {
    line.chars()
        .filter(|c| !c.is_control())
        .take(MAX_RULE_TEXT)
        .collect()
}

impl NatRules {
    /// Source-NAT rules without `fully-random`.
    pub fn without_fully_random(&self) -> impl Iterator<Item = &SourceNatRule> {
        self.source_nat.iter().filter(|r| !r.fully_random)
    }

    /// Reads `iptables-save` output (only the `*nat` table's rules count).
    pub fn parse_iptables_save(text: &str) -> NatRules {
        let mut out = NatRules {
            format: RulesFormat::IptablesSave,
            source_nat: Vec::new(),
            dnat_rules: 0,
        };
        let mut in_nat = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if let Some(table) = line.strip_prefix('*') {
                in_nat = table.trim() == "nat";
                continue;
            }
            if !in_nat || !line.starts_with("-A ") {
                continue;
            }
            let toks: Vec<&str> = line.split_whitespace().collect();
            let target = toks
                .windows(2)
                .find(|w| w[0] == "-j" || w[0] == "--jump")
                .map(|w| w[1]);
            let kind = match target {
                Some("MASQUERADE") => SourceNatKind::Masquerade,
                Some("SNAT") => SourceNatKind::Snat,
                Some("DNAT") | Some("REDIRECT") => {
                    out.dnat_rules += 1;
                    continue;
                }
                _ => continue,
            };
            let has = |flag: &str| toks.contains(&flag);
            let source = toks
                .windows(3)
                .find(|w| (w[0] == "-s" || w[0] == "--source") && w[1] != "!")
                .map(|w| w[1])
                .or_else(|| {
                    // `-s X` at the very end of the rule.
                    toks.windows(2)
                        .find(|w| w[0] == "-s" || w[0] == "--source")
                        .map(|w| w[1])
                })
                .filter(|&s| s != "!")
                .map(clean);
            out.source_nat.push(SourceNatRule {
                kind,
                fully_random: has("--random-fully"),
                random: has("--random"),
                persistent: has("--persistent"),
                source,
                line: i + 1,
                text: clean(line),
            });
        }
        out
    }

    /// Reads `nft list ruleset` output (rules of any table whose statement
    /// is `masquerade`, `snat`, `dnat` or `redirect`).
    pub fn parse_nft(text: &str) -> NatRules {
        let mut out = NatRules {
            format: RulesFormat::Nft,
            source_nat: Vec::new(),
            dnat_rules: 0,
        };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let toks: Vec<&str> = line
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|t| !t.is_empty())
                .collect();
            let kind = if toks.contains(&"masquerade") {
                SourceNatKind::Masquerade
            } else if toks.contains(&"snat") {
                SourceNatKind::Snat
            } else {
                if toks.contains(&"dnat") || toks.contains(&"redirect") {
                    out.dnat_rules += 1;
                }
                continue;
            };
            // `type nat hook postrouting ...` chain headers carry neither word.
            let source = toks
                .windows(3)
                .find(|w| w[0] == "saddr" && w[1] != "!=")
                .map(|w| clean(w[1]));
            out.source_nat.push(SourceNatRule {
                kind,
                fully_random: toks.contains(&"fully-random"),
                random: toks.contains(&"random"),
                persistent: toks.contains(&"persistent"),
                source,
                line: i + 1,
                text: clean(line),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nat_table_counts() {
        let r = NatRules::parse_iptables_save(
            "*filter\n-A FORWARD -j MASQUERADE\nCOMMIT\n*nat\n-A POSTROUTING -o eth0 -j SNAT \
             --to-source 192.0.2.1 --random --persistent\nCOMMIT\n",
        );
        assert_eq!(r.source_nat.len(), 1);
        let s = &r.source_nat[0];
        assert_eq!(s.kind, SourceNatKind::Snat);
        assert!(s.random && s.persistent && !s.fully_random);
        assert_eq!(s.line, 5);
        assert_eq!(s.source, None);
    }

    #[test]
    fn nft_masquerade_flags() {
        let r = NatRules::parse_nft(
            "table ip nat {\n\tchain POSTROUTING {\n\t\ttype nat hook postrouting priority \
             srcnat; policy accept;\n\t\tip saddr 172.18.0.0/16 oifname != \"br-1\" masquerade\n\
             \t\toifname \"eth0\" masquerade fully-random\n\t\tip saddr 10.0.0.0/8 snat to \
             192.0.2.1 random,persistent\n\t\ttcp dport 8080 dnat to 172.18.0.2:80\n\t}\n}\n",
        );
        assert_eq!(r.source_nat.len(), 3);
        assert_eq!(r.source_nat[0].source.as_deref(), Some("172.18.0.0/16"));
        assert!(!r.source_nat[0].fully_random);
        assert!(r.source_nat[1].fully_random);
        assert!(r.source_nat[2].random && r.source_nat[2].persistent);
        assert_eq!(r.dnat_rules, 1);
    }

    #[test]
    fn garbage_is_skipped() {
        let r = NatRules::parse_iptables_save("*nat\n-A\n-A X -j\n\u{1b}[31m\n");
        assert!(r.source_nat.is_empty());
        let r = NatRules::parse_nft("masquerade \u{1b}]0;x\u{7}");
        assert_eq!(r.source_nat.len(), 1);
        assert!(!r.source_nat[0].text.contains('\u{1b}'));
    }

    /// Found by the `nat_rules` fuzz target: the source match kept the
    /// control characters (and the length) the rule text loses.
    #[test]
    fn source_match_is_cleaned_and_cut() {
        let long = "1".repeat(1000);
        let r = NatRules::parse_nft(&format!(
            "ip saddr 10\u{1f}.0.0.0/8 snat to 192.0.2.1\nip saddr {long} masquerade\n"
        ));
        assert_eq!(r.source_nat[0].source.as_deref(), Some("10.0.0.0/8"));
        assert_eq!(r.source_nat[1].source.as_ref().map(String::len), Some(240));
        let r = NatRules::parse_iptables_save("*nat\n-A P -j MASQUERADE -s \u{1b}[31m10.0.0.0/8\n");
        assert_eq!(r.source_nat[0].source.as_deref(), Some("[31m10.0.0.0/8"));
    }
}
