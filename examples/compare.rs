//! `compare`: two captures side by side (two hosts of one role, or one
//! host before and after a change): configuration, counters, rates, what
//! the tables hold, and what differs that matters.
//!
//! ```text
//! cargo run --release --example compare -- CAPTURE_A CAPTURE_B
//! cargo run --release --example compare -- CAPTURE_A CAPTURE_B --json
//! ```
//!
//! Each side is read by the library's capture loader and modelled with
//! `conntrack_analyze::Facts`; the table is `conntrack_analyze::compare`.
mod common;

use clap::Parser;
use common::source::Target;
use common::{Failure, capture, parse_args};
use conntrack_kit::analyze::Facts;
use conntrack_kit::analyze::compare::compare;
use std::path::PathBuf;

const EXIT_HELP: &str = "\
Exit codes:
  0  the comparison was printed
  3  bad command line
  4  a capture directory does not exist
  6  other errors";

/// Compare two conntrack captures side by side.
#[derive(Debug, Parser)]
#[command(name = "compare", after_help = EXIT_HELP)]
struct Args {
    /// The first capture directory.
    a: PathBuf,
    /// The second capture directory.
    b: PathBuf,
    /// Print the comparison as JSON.
    #[arg(long)]
    json: bool,
}

fn main() {
    let args: Args = parse_args();
    std::process::exit(match run(&args) {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("compare: error: {e}");
            e.code()
        }
    });
}

fn run(args: &Args) -> Result<String, Failure> {
    let load = |dir: &PathBuf| {
        if !dir.is_dir() {
            return Err(Failure::NoTarget(format!(
                "capture directory {} does not exist or is not a directory",
                dir.display()
            )));
        }
        capture::collect(&Target::Capture(dir.clone()), 5)
    };
    let (a, b) = (load(&args.a)?, load(&args.b)?);
    let label = |c: &common::analysis::Collected, dir: &PathBuf| {
        c.hostname
            .clone()
            .unwrap_or_else(|| dir.display().to_string())
    };
    let (la, lb) = (label(&a, &args.a), label(&b, &args.b));
    let (fa, fb) = (Facts::derive(&a.observation), Facts::derive(&b.observation));
    let c = compare((&la, &fa), (&lb, &fb));
    if args.json {
        serde_json::to_string_pretty(&c)
            .map(|s| s + "\n")
            .map_err(|e| Failure::Error(format!("JSON: {e}")))
    } else {
        Ok(conntrack_kit::analyze::capture::escape_controls_keep_lines(
            &c.to_string(),
        ))
    }
}
