//! Live collection for the examples: the library's
//! [`conntrack_kit::live::collect`] (host facts, statistics over a window,
//! owners, one streaming dump into bounded hotspots and a sampled bucket
//! simulation, the NAT rules) with the examples' target, a progress bar on
//! a terminal, and their failures and exit codes.

use super::analysis::Collected;
use super::duration::duration_in;
use super::exit::{Failure, PRIVILEGES_HINT, failure_of};
use super::target::Target;
use conntrack_kit::live::{self as lib, LiveError};
use std::io::IsTerminal;
use std::time::Duration;

/// `--window`: flatten into the parser of an example that collects live.
#[derive(Debug, Clone, clap::Args)]
pub struct WindowArgs {
    /// Time between the two statistics samples that give counter rates
    /// (live only; 0: one sample, counters since boot only). A duration:
    /// 3s, 500ms, 1m, or plain seconds.
    #[arg(long, value_name = "DURATION", default_value = "3s",
          value_parser = duration_in(Duration::ZERO, Duration::from_secs(3600)))]
    pub window: Duration,
}

/// Options of a live collection.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Time between the two statistics samples (0: one sample only).
    pub window: Duration,
    /// Show a progress bar during the dump when stderr is a terminal.
    pub progress: bool,
    /// Rows kept per hotspot key.
    pub top: usize,
}

/// Collects everything from a live table.
pub fn collect(target: &Target, opts: &LiveOptions) -> Result<Collected, Failure> {
    let lib_opts = lib::LiveOptions::default()
        .with_window(opts.window)
        .with_top(opts.top);
    let bar = (opts.progress && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "dumping {bar:24} {human_pos}/{human_len} flows, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let live = target
        .live()
        .ok_or_else(|| Failure::Error("not a live target".into()))?;
    let c = lib::collect_with_progress(&live, &lib_opts, |p| {
        if let Some(b) = &bar {
            b.set_length(p.expected.unwrap_or(0).max(p.flows));
            b.set_position(p.flows);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let c = c.map_err(|e| match e {
        LiveError::NothingReadable => Failure::Unavailable(format!("{e}\n{PRIVILEGES_HINT}")),
        LiveError::Netlink { what, source } => failure_of(what, &source),
        LiveError::NoConntrack => Failure::Unavailable(e.to_string()),
        e => Failure::Error(e.to_string()),
    })?;
    Ok(Collected {
        target: target.clone(),
        observation: c.observation,
        notes: c.notes,
        stats_source: c.stats_source,
        hostname: None,
        description: None,
    })
}
