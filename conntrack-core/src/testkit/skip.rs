//! The skip-or-fail policy of live tests: [`live`] checks a test's
//! [`Need`]s and skips it (printing why) or, with [`REQUIRE_LIVE_ENV`]`=1`,
//! fails it.

use std::path::{Path, PathBuf};

/// The environment variable that, set to `1`, makes a live test that
/// cannot run fail instead of skipping.
pub const REQUIRE_LIVE_ENV: &str = "CONNTRACK_KIT_REQUIRE_LIVE";

/// Whether live tests must run (`CONNTRACK_KIT_REQUIRE_LIVE=1`).
pub fn live_required() -> bool {
    std::env::var(REQUIRE_LIVE_ENV).is_ok_and(|v| v == "1")
}

/// Whether this process runs with effective uid 0 (read from
/// `/proc/self/status`; false when it cannot be read).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| euid_is_root(&s))
}

/// The effective uid (second field of `Uid:`) of a `/proc/PID/status` text
/// is 0.
fn euid_is_root(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("0")
}

/// The first file named `prog` in a directory of `PATH`.
///
/// ```
/// # use conntrack_core::testkit::find_in_path;
/// assert!(find_in_path("no-such-program-ckit").is_none());
/// ```
pub fn find_in_path(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|f| f.is_file())
}

/// One requirement of a live test, checked by [`live`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Effective uid 0 (network namespaces, ctnetlink, sysctls).
    Root,
    /// A program in `PATH`, e.g. `"ip"`, `"conntrack"`, `"nft"`.
    Tool(&'a str),
    /// A file or directory that must exist, e.g.
    /// `"/proc/sys/net/netfilter/nf_conntrack_max"` (nf_conntrack loaded).
    Path(&'a str),
}

impl Need<'_> {
    /// Why this requirement is not met here, or `None` when it is.
    pub fn unmet(&self) -> Option<String> {
        match *self {
            Need::Root => (!is_root()).then(|| "not running as root".to_string()),
            Need::Tool(t) => find_in_path(t)
                .is_none()
                .then(|| format!("`{t}` is not installed (not in PATH)")),
            Need::Path(p) => (!Path::new(p).exists()).then(|| format!("{p} does not exist")),
        }
    }
}

/// Whether the live test `test` may run: true when every need is met.
///
/// Otherwise prints `"{test}: skipped: {why}"` and returns false, or, when
/// [`live_required`], panics with the same reason.
///
/// ```
/// # use conntrack_core::testkit::{Need, live};
/// // Met needs: runs.
/// assert!(live("doc_example", &[Need::Path("/")]));
/// ```
pub fn live(test: &str, needs: &[Need<'_>]) -> bool {
    match needs.iter().find_map(Need::unmet) {
        None => true,
        Some(why) => skip_or_panic(test, &why, live_required()),
    }
}

fn skip_or_panic(test: &str, why: &str, required: bool) -> bool {
    if required {
        panic!("{test}: live test required ({REQUIRE_LIVE_ENV}=1) but {why}");
    }
    eprintln!("{test}: skipped: {why}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euid_is_the_second_uid_field() {
        assert!(euid_is_root("Name:\tx\nUid:\t1000\t0\t0\t0\n"));
        assert!(!euid_is_root("Uid:\t0\t1000\t0\t0\n"));
        assert!(!euid_is_root("Name:\tx\n"));
    }

    #[test]
    fn unmet_needs_skip_or_panic() {
        assert_eq!(Need::Path("/").unmet(), None);
        let why = Need::Path("/no/such/ckit").unmet().unwrap();
        assert!(why.contains("/no/such/ckit"), "{why}");
        assert!(Need::Tool("no-such-program-ckit").unmet().is_some());
        assert!(!skip_or_panic("t", &why, false));
        let panic = std::panic::catch_unwind(|| skip_or_panic("t", "why", true))
            .expect_err("required: panics");
        let msg = panic.downcast_ref::<String>().unwrap();
        assert_eq!(
            msg,
            "t: live test required (CONNTRACK_KIT_REQUIRE_LIVE=1) but why"
        );
    }
}
