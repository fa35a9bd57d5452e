//! A tuning planner for conntrack: turns observations into an ordered,
//! explained, safe plan (sysctl, hashsize, timeouts, RPS, NOTRACK,
//! application advice) and renders it. Filled in by issue 6.
#![deny(unsafe_code)]
