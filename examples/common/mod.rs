//! Code shared by every example: what to look at, the exit codes and
//! failures, durations on the command line, the terminal, and for the
//! analysing examples collection and analysis.
//!
//! Use it from an example file in `examples/` with `mod common;` (the
//! module lives in `examples/common/`, which Cargo does not build as an
//! example of its own). Each example uses only part of it, hence the
//! `dead_code` allowance below; the parts that need the `analyze` or
//! `tune` feature are compiled only with it (every example needs
//! `netlink`).
//!
//! - [`target`]: `--netns NAME` / `--pid PID` (every example) and
//!   `--capture DIR` / `--sample` (the examples that read captures), and
//!   the one [`target::Target`] they select.
//! - [`exit`]: the one exit-code table, [`exit::Failure`], and the
//!   `--help` text listing an example's codes.
//! - [`duration`]: the one syntax of durations (`500ms`, `1s`, `2m`,
//!   plain seconds).
//! - [`term`]: redrawn frames that fit the terminal, colour that honours
//!   `NO_COLOR`, and `q` / Ctrl-C in raw mode (`watch`, `top`).
//! - [`live`]: the library's live collection (`conntrack_kit::live`) for
//!   an example's target, with a progress bar on a terminal and the
//!   examples' failures.
//! - [`capture`]: the same from a capture directory (layout documented in
//!   `examples/data/README.md` and in [`capture`]).
//! - [`sample`]: the bundled sample incident, compiled into the binary so
//!   that an installed example has it without the checkout.
//! - [`analysis`]: what was collected, and the library's report of it.
//! - [`table`]: comfy-table helpers.
#![allow(dead_code)]

#[cfg(feature = "tune")]
pub mod analysis;
#[cfg(feature = "tune")]
pub mod capture;
pub mod duration;
pub mod exit;
#[cfg(feature = "tune")]
pub mod live;
pub mod sample;
pub mod table;
pub mod target;
pub mod term;
#[cfg(all(feature = "tune", feature = "trace"))]
pub mod traced;

pub use exit::{Failure, parse_args};
