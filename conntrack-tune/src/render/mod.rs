//! Renderers: sysctl.d and modprobe.d files, a POSIX shell script,
//! iptables and nftables NOTRACK rules, JSON, text and Markdown.
//!
//! Renderers never apply anything. Values that would break out of the
//! format they are written into (a newline in a sysctl value, a `/` in an
//! interface name used in a path) are refused with [`RenderError`], never
//! written.

mod files;
mod firewall;
mod report;
mod shell;
mod text;

pub use files::{modprobe_d, sysctl_d};
pub use firewall::{iptables, nftables};
pub use report::report_text;
pub use shell::{sh_quote, shell_script};
pub use text::{markdown, text};

use crate::plan::Plan;

/// A value that cannot be rendered safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A value contains a character the output format cannot hold (NUL,
    /// newline in a config file, `/` in an interface name).
    #[error("{what} cannot be rendered safely: {value:?}")]
    Unsafe {
        /// Which field.
        what: &'static str,
        /// The value (truncated to 64 characters).
        value: String,
    },
}

pub(crate) fn unsafe_value(what: &'static str, value: &str) -> RenderError {
    RenderError::Unsafe {
        what,
        value: value.chars().take(64).collect(),
    }
}

/// A file to install: host path and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Absolute path on the host.
    pub path: String,
    /// Content.
    pub content: String,
}

/// The plan as a pretty JSON document: `schema` ([`PLAN_SCHEMA`]) and
/// `version` ([`PLAN_SCHEMA_VERSION`]), then the plan's fields. It reads
/// back as a [`Plan`] (the two header fields are ignored).
///
/// ```
/// let p = conntrack_tune::Plan::default();
/// let j = conntrack_tune::render::json(&p).unwrap();
/// assert!(j.starts_with("{\n  \"schema\": \"conntrack-kit/plan\",\n  \"version\": 1,"));
/// let back: conntrack_tune::Plan = serde_json::from_str(&j).unwrap();
/// assert_eq!(back, p);
/// ```
///
/// [`PLAN_SCHEMA`]: crate::plan::PLAN_SCHEMA
/// [`PLAN_SCHEMA_VERSION`]: crate::plan::PLAN_SCHEMA_VERSION
pub fn json(plan: &Plan) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&crate::plan::PlanDocument::of(plan))
}

/// The width text output wraps at.
pub(crate) const WIDTH: usize = 100;

/// Appends `text` wrapped at [`WIDTH`]: the first line starts with
/// `first`, the following ones with `indent` (a hanging indent).
pub(crate) fn wrap(out: &mut String, first: &str, indent: &str, text: &str) {
    let mut line = String::from(first);
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    if !empty {
        out.push_str(&line);
        out.push('\n');
    }
}

/// Replaces control characters (newlines included) by spaces, for
/// comments and single-line text.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Whether a sysctl key is plain (`[A-Za-z0-9_.-]`, dotted form).
pub(crate) fn plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !k.starts_with('.')
        && !k.contains("..")
}

/// Whether a value fits on one config line.
pub(crate) fn plain_value(v: &str) -> bool {
    !v.is_empty() && !v.chars().any(|c| c.is_control()) && v.trim() == v
}
