//! `compare`: two captures side by side (two hosts of one role, or one
//! host before and after a change), or a capture and a live table now:
//! configuration, counters, rates, what the tables hold, and what differs
//! that matters.
//!
//! ```text
//! cargo run --release --example compare -- CAPTURE_A CAPTURE_B
//! cargo run --release --example compare -- CAPTURE_A CAPTURE_B --json
//! cargo run --release --example compare -- BEFORE                 # against this host now (root)
//! cargo run --release --example compare -- BEFORE --netns blue    # against a namespace now
//! ```
//!
//! Each side is read by the library's capture loader (or collected live
//! exactly as `doctor` collects) and modelled with
//! `conntrack_analyze::Facts`; the table is `conntrack_analyze::compare`.
mod common;

use clap::Parser;
use common::analysis::Collected;
use common::exit::{EXIT_ERROR, exit_codes_help, exit_with};
use common::live::{LiveOptions, WindowArgs};
use common::target::{CaptureArgs, NetnsArgs, Target};
use common::{Failure, capture, live, parse_args};
use conntrack_kit::analyze::Facts;
use conntrack_kit::analyze::compare::compare;
use std::io::Write as _;
use std::path::PathBuf;

const LONG_ABOUT: &str = "\
Two conntrack tables side by side: configuration, counters and their rates,
what the tables hold, and what differs in a way that explains their drops.

Each side is a capture directory (examples/data/capture.sh makes one; layout
in examples/data/README.md). Without a second capture, the first is compared
with a live table now: this host, or --netns NAME / --pid PID (root; rates
over --window), so that a capture taken before a change can be compared with
the host after it.";

/// Compare two conntrack captures, or a capture and a live table.
#[derive(Debug, Parser)]
#[command(
    name = "compare",
    long_about = LONG_ABOUT,
    after_help = exit_codes_help(&[
        (0, "the comparison was printed"),
        (3, ""),
        (4, ""),
        (5, "only for a live side"),
        (6, ""),
    ])
)]
struct Args {
    /// The first capture directory.
    a: PathBuf,
    /// The second capture directory (default: a live table now, see
    /// --netns and --pid).
    #[arg(conflicts_with_all = ["netns", "pid"])]
    b: Option<PathBuf>,

    #[command(flatten)]
    ns: NetnsArgs,

    #[command(flatten)]
    window: WindowArgs,

    /// Print the comparison as JSON.
    #[arg(long)]
    json: bool,
}

fn main() {
    let args: Args = parse_args();
    exit_with("compare", run(&args));
}

/// Rows per hotspot table of each side.
const ROWS: usize = 5;

fn run(args: &Args) -> Result<(), Failure> {
    let load = |dir: &PathBuf| -> Result<(String, Collected), Failure> {
        let target = Target::resolve(
            &NetnsArgs::default(),
            Some(&CaptureArgs {
                capture: Some(dir.clone()),
                sample: false,
            }),
        )?;
        let c = capture::collect(&target, ROWS)?;
        let label = c
            .hostname
            .clone()
            .unwrap_or_else(|| dir.display().to_string());
        Ok((label, c))
    };
    let (la, a) = load(&args.a)?;
    let (lb, b) = match &args.b {
        Some(dir) => load(dir)?,
        None => {
            let target = Target::resolve(&args.ns, None)?;
            let opts = LiveOptions {
                window: args.window.window,
                progress: !args.json,
                top: ROWS,
            };
            (target.describe(), live::collect(&target, &opts)?)
        }
    };
    let (fa, fb) = (Facts::derive(&a.observation), Facts::derive(&b.observation));
    let c = compare((&la, &fa), (&lb, &fb));
    let out = if args.json {
        serde_json::to_string_pretty(&c)
            .map(|s| s + "\n")
            .map_err(|e| Failure::Error(format!("JSON: {e}")))?
    } else {
        conntrack_kit::analyze::capture::escape_controls_keep_lines(&c.to_string())
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        // The reader went away: the comparison was not all read.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(EXIT_ERROR),
        Err(e) => Err(Failure::Error(format!("writing the comparison: {e}"))),
    }
}
