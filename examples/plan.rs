//! `plan`: the conntrack tuning plan for this host, another network
//! namespace, or a capture, rendered in the format you apply it with.
//!
//! ```text
//! cargo run --release --example plan                                # text, this host (root)
//! cargo run --release --example plan -- --format sysctl             # /etc/sysctl.d file
//! cargo run --release --example plan -- --format shell > apply.sh   # idempotent script
//! cargo run --release --example plan -- --capture DIR --format json
//! ```
//!
//! The plan is computed exactly as `doctor` computes it (same collection,
//! same diagnosis). Nothing is applied: the renderers only print. Unlike
//! `doctor`, `plan` never falls back to the bundled sample on its own (a
//! sysctl file for the wrong host is worse than none); `--sample` asks for
//! it explicitly and the output is then labelled.
mod common;

use clap::{Parser, ValueEnum};
use common::analysis::analyse;
use common::exit::{EXIT_ERROR, exit_codes_help, exit_with};
use common::live::{LiveOptions, WindowArgs};
use common::target::{CaptureArgs, NetnsArgs, Target};
use common::{Failure, capture, live, parse_args};
use conntrack_kit::tune::plan::Scope;
use conntrack_kit::tune::render;
use std::io::Write as _;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Plain text, grouped by priority, with evidence, risk and rollback.
    Text,
    /// The same as Markdown.
    Markdown,
    /// The plan as JSON (every field).
    Json,
    /// The /etc/sysctl.d file that persists the proposed sysctls.
    Sysctl,
    /// The /etc/modprobe.d file with the hashsize option.
    Modprobe,
    /// A POSIX shell script that applies the plan (idempotent, set -eu,
    /// prints before/after values, verifies).
    Shell,
    /// nftables NOTRACK rules.
    Nft,
    /// iptables NOTRACK rules (raw table).
    Iptables,
}

const LONG_ABOUT: &str = "\
The conntrack tuning plan for this host, another network namespace (--netns NAME,
--pid PID) or files captured on another host (--capture DIR), rendered as text,
Markdown, JSON, a sysctl.d file, a modprobe.d file, a shell script, or nftables /
iptables NOTRACK rules (--format). The plan is the one `doctor` prints: ordered
actions (P0 stop the bleeding .. P3 hygiene), each with evidence, expected effect,
risk, rollback and verification. Nothing is applied.

Live runs need root (ctnetlink needs CAP_NET_ADMIN). plan does not fall back to
the bundled sample by itself; --sample shows the plan for the sample incident,
labelled as such.";

#[derive(Debug, Parser)]
#[command(
    name = "plan",
    about = "The conntrack tuning plan as text, Markdown, JSON, sysctl.d, modprobe.d, shell or firewall rules",
    long_about = LONG_ABOUT,
    after_help = exit_codes_help(&[
        (0, "the plan was printed (a format with nothing to write prints a comment)"),
        (3, ""),
        (4, ""),
        (5, ""),
        (6, "also a value that cannot be rendered safely"),
    ])
)]
struct Args {
    #[command(flatten)]
    ns: NetnsArgs,

    #[command(flatten)]
    capture: CaptureArgs,

    #[command(flatten)]
    window: WindowArgs,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Keep only actions applied in these scopes (comma-separated; default
    /// all). An agent inside a container, for example, may only change its
    /// own namespace: `--scope namespace,workload`.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SCOPE,...")]
    scope: Vec<ScopeArg>,

    /// Never show the dump progress bar (it is shown only when stderr is a
    /// terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

/// Where an action is applied (`conntrack_tune::plan::Scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScopeArg {
    /// The host's initial namespace (nf_conntrack_max, buckets).
    Host,
    /// The observed namespace (per-namespace sysctls such as timeouts).
    Namespace,
    /// Network interfaces (RPS).
    Interface,
    /// The firewall ruleset (NOTRACK rules).
    Firewall,
    /// The application or its deployment.
    Workload,
    /// Boot-time configuration (sysctl.d, modprobe.d, kernel command line).
    Boot,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Host => Scope::HostInitNamespace,
            ScopeArg::Namespace => Scope::ObservedNamespace,
            ScopeArg::Interface => Scope::Interface,
            ScopeArg::Firewall => Scope::Firewall,
            ScopeArg::Workload => Scope::Workload,
            ScopeArg::Boot => Scope::Boot,
        }
    }
}

fn main() {
    let args: Args = parse_args();
    exit_with("plan", run(&args));
}

fn run(args: &Args) -> Result<(), Failure> {
    let target = Target::resolve(&args.ns, Some(&args.capture))?;
    let collected = if target.is_live() {
        let opts = LiveOptions {
            window: args.window.window,
            progress: !args.no_progress,
            top: 10,
        };
        live::collect(&target, &opts).map_err(|e| match e {
            Failure::Unavailable(m) => Failure::Unavailable(format!(
                "{m}; `--sample` shows the plan for the bundled sample incident"
            )),
            e => e,
        })?
    } else {
        capture::collect(&target, 10)?
    };
    let mut plan = analyse(&collected).plan;
    if !args.scope.is_empty() {
        let scopes: Vec<Scope> = args.scope.iter().map(|&s| s.into()).collect();
        plan = plan.only(&scopes);
    }
    let rendered = |r: Result<String, render::RenderError>| {
        r.map_err(|e| Failure::Error(format!("cannot render the plan safely: {e}")))
    };
    let file = |r: Result<Option<render::RenderedFile>, render::RenderError>, what: &str| {
        rendered(r.map(|f| match f {
            Some(f) => format!("# {}\n{}", f.path, f.content),
            None => format!("# the plan proposes no {what} changes\n"),
        }))
    };
    let mut out = match args.format {
        Format::Text => render::text(&plan),
        Format::Markdown => render::markdown(&plan),
        Format::Json => render::json(&plan)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| Failure::Error(format!("JSON: {e}")))?,
        Format::Sysctl => file(render::sysctl_d(&plan), "sysctl")?,
        Format::Modprobe => file(render::modprobe_d(&plan), "module option")?,
        Format::Shell => rendered(render::shell_script(&plan))?,
        Format::Nft => rendered(render::nftables(&plan))?,
        Format::Iptables => rendered(render::iptables(&plan))?,
    };
    if target == Target::Sample {
        eprintln!("plan: this is the plan for the SAMPLE INCIDENT (synthetic), not this host");
        if args.format != Format::Json {
            let body = if args.format == Format::Shell {
                // Keep the shebang first.
                match out.split_once('\n') {
                    Some((first, rest)) if first.starts_with("#!") => {
                        format!("{first}\n# SAMPLE INCIDENT — not this host: do not apply\n{rest}")
                    }
                    _ => format!("# SAMPLE INCIDENT — not this host: do not apply\n{out}"),
                }
            } else if args.format == Format::Markdown {
                format!("> **SAMPLE INCIDENT — not this host**\n\n{out}")
            } else {
                format!("# SAMPLE INCIDENT — not this host: do not apply\n{out}")
            };
            out = body;
        }
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(EXIT_ERROR),
        Err(e) => Err(Failure::Error(format!("writing the plan: {e}"))),
    }
}
