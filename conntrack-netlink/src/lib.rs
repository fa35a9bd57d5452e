//! ctnetlink for Linux connection tracking: sockets in any network
//! namespace, a zero-copy streaming dump decoder, statistics,
//! get/create/update/delete/flush, and events with loss recovery.
//!
//! Filled in by issues 3 (sockets, requests, decoder) and 4 (events, mirror).
#![deny(unsafe_code)]

pub mod wire;
