//! The bulk rule syntax (`conntrack_netlink::bulk::syntax`): parsing a rule
//! or a set never panics, and every rule that parses reads back from its
//! own text form to the same rule. Self-contained (the invariant is here
//! rather than in `src/lib.rs`); the stable counterpart is the property
//! test `parser_never_panics` in `conntrack-netlink/tests/bulk_props.rs`.
#![no_main]

use conntrack_netlink::bulk::{FilterSet, Rule};

fn round_trip(r: &Rule) {
    let text = r.to_string();
    let again: Rule = text
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} (from {r:?}) does not parse: {e}"));
    assert_eq!(&again, r, "{text:?}");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = text.parse::<Rule>() {
        round_trip(&r);
    }
    if let Ok(set) = FilterSet::parse(&text) {
        for r in set.rules() {
            round_trip(r);
        }
    }
});
