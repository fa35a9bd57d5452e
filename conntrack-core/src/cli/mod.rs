//! Parsers for captured `conntrack` CLI output: [`stats`] for `conntrack -S`
//! and `-C`, [`list`] for `conntrack -L` (default and `-o extended`).

pub mod list;
pub mod stats;
