//! Parser for `/proc/net/stat/nf_conntrack` (filled in by issue 2).
