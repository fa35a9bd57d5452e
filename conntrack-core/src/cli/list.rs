//! `conntrack -L` text (filled in by issue 2).
