//! Reading fixture files in tests.

use std::path::Path;

/// The text of fixture `name` in directory `dir`, typically
/// `concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/KIND")`.
///
/// # Panics
///
/// When the file cannot be read or is not UTF-8; the message names the
/// file and the reason.
///
/// ```
/// use conntrack_core::testkit::read_fixture;
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/host/linux-6.18/proc/sys/net/netfilter");
/// assert_eq!(read_fixture(dir, "nf_conntrack_max"), "262144\n");
/// ```
pub fn read_fixture(dir: &str, name: &str) -> String {
    let path = Path::new(dir).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
