//! The wire layer: zero-copy decoding and encoding of ctnetlink messages (issue 3).
