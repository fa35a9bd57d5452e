//! `conntrack -S` and `conntrack -C` text (filled in by issue 2).
