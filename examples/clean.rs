//! Deletes (or changes) every conntrack entry that matches any of many
//! rules, in one streaming pass (`conntrack_netlink::bulk`): what
//! kube-proxy does to stale UDP entries after an endpoint change, a CNI
//! plugin after a pod is deleted, a NAT gateway draining a backend.
//!
//! The kube-proxy case: Service `10.96.0.10:53/UDP` (NodePort 30053)
//! lost endpoint `10.244.1.7:53`, and Service `10.96.5.5:8125/UDP` lost
//! its last endpoint. Entries still DNATed to them black-hole the
//! Service's traffic until they expire; the rules that select them, one
//! per line:
//!
//! ```text
//! $ cat stale.txt
//! # Service 10.96.0.10:53, endpoint 10.244.1.7:53 gone
//! proto=udp orig-dst=10.96.0.10 orig-dport=53 reply-src=10.244.1.7 reply-sport=53
//! proto=udp orig-dport=30053 reply-src=10.244.1.7 reply-sport=53
//! # Service 10.96.5.5:8125, no endpoint left
//! proto=udp orig-dst=10.96.5.5 orig-dport=8125
//!
//! $ clean --rules stale.txt --dry-run --list      # what would go
//! $ clean --rules stale.txt                       # delete them
//! streaming dump with batched changes (more than one rule: one flush request holds one filter); kernel dump filter: family ipv4, proto udp
//! matched 212, deleted 209, updated 0, vanished 3, failed 0
//! 61977 flows read in 1 pass(es), 212 requests in 1 datagrams, 41.02ms
//! ```
//!
//! `--rule RULE` gives one rule on the command line (repeatable). The
//! rule syntax (keys, networks, marks, status, ICMP fields) is described
//! in `conntrack_netlink::bulk::syntax`. A single rule the kernel can apply
//! exactly is one filtered-flush request on kernels that support it (the
//! report says which path ran and why). `--mark`, `--labels` or
//! `--timeout` change the matching entries instead of deleting them:
//!
//! ```text
//! clean --netns node --rule 'reply-src=192.0.2.50' --mark 0x4/0x4 --timeout 60s
//! ```
//!
//! Needs root: CAP_NET_ADMIN for ctnetlink (and CAP_SYS_ADMIN to enter
//! another namespace).
mod common;

use clap::Parser;
use common::duration::duration_in;
use common::exit::{exit_codes_help, exit_with, failure_of};
use common::target::{NetnsArgs, Target};
use common::{Failure, parse_args};
use conntrack_kit::ct_core::Labels;
use conntrack_kit::ct_core::cli::list::{ListFormat, render_line};
use conntrack_kit::netlink::bulk::{Action, BulkOptions, Change, FilterSet, Rule};
use conntrack_kit::netlink::{Conntrack, DumpPolicy};
use std::time::Duration;

const LONG_ABOUT: &str = "\
Deletes every conntrack entry that matches any of the given rules, in one
streaming dump with the deletes sent in batches on a second socket; with
--mark, --labels or --timeout, changes them instead. A single rule the
kernel applies exactly is sent as one filtered flush where the kernel
supports it.

Rules, one per line (--rules FILE, `-` for stdin) or per --rule: key=value
terms that must all hold, e.g.
  proto=udp orig-dst=10.96.0.10 orig-dport=53 reply-src=10.244.1.7
Keys: family, proto, zone, mark (V[/M]), status (FLAGS[/MASK]), orig-src,
orig-dst, reply-src, reply-dst (addresses or networks), orig-sport,
orig-dport, reply-sport, reply-dport, icmp-type, icmp-code, icmp-id (and
reply-icmp-*); `all` matches every entry. `#` starts a comment.";

/// Delete or change the conntrack entries matching any of many rules.
#[derive(Parser, Debug)]
#[command(
    name = "clean",
    version,
    long_about = LONG_ABOUT,
    after_help = exit_codes_help(&[
        (0, "every matching entry was deleted or changed, or was already gone"),
        (3, "also for a rule that does not parse"),
        (4, ""),
        (5, ""),
        (6, "also when the kernel refused some entries (the report lists them)"),
    ])
)]
struct Args {
    #[command(flatten)]
    ns: NetnsArgs,
    /// A rule (repeatable).
    #[arg(long, value_name = "RULE")]
    rule: Vec<String>,
    /// A file of rules, one per line (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    rules: Option<String>,
    /// Change the matching entries' mark instead of deleting them: V sets
    /// the whole mark, V/M the bits under M.
    #[arg(long, value_name = "V[/M]")]
    mark: Option<String>,
    /// Change their labels: bit numbers (1,5), or BITS/MASK to set only
    /// the bits under the mask (5/5 adds label 5, /5 clears it).
    #[arg(long, value_name = "BITS[/MASK]")]
    labels: Option<String>,
    /// Change their timeout (whole seconds: 30s, 2m).
    #[arg(long, value_name = "DURATION",
          value_parser = duration_in(Duration::from_secs(0), Duration::from_secs(u64::from(u32::MAX))))]
    timeout: Option<Duration>,
    /// Count the matching entries, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print every matching entry (as `conntrack -L -o extended,id` does)
    /// and the first rule it matched.
    #[arg(long)]
    list: bool,
    /// Requests per datagram.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Never use the kernel's filtered flush.
    #[arg(long)]
    no_kernel_flush: bool,
    /// Never let the kernel filter the dump.
    #[arg(long)]
    no_kernel_filter: bool,
    /// When the dump reports NLM_F_DUMP_INTR: fail, retry (up to 3 more
    /// passes) or accept.
    #[arg(long, default_value = "retry", value_parser = ["fail", "retry", "accept"])]
    on_interrupt: String,
}

fn main() {
    let args: Args = parse_args();
    exit_with("clean", run(&args));
}

/// `V` or `V/M`, decimal or 0x hex.
fn parse_mark(s: &str) -> Result<(u32, u32), Failure> {
    let num = |t: &str| -> Option<u32> {
        match t.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16).ok(),
            None => t.parse().ok(),
        }
    };
    let bad = || Failure::Usage(format!("--mark {s:?}: give V or V/M (decimal or 0x hex)"));
    match s.split_once('/') {
        Some((v, m)) => Ok((num(v).ok_or_else(bad)?, num(m).ok_or_else(bad)?)),
        None => Ok((num(s).ok_or_else(bad)?, u32::MAX)),
    }
}

/// `1,5`, `5/5`, `/5`: label bits and an optional mask of bits.
fn parse_labels(s: &str) -> Result<(Labels, Option<Labels>), Failure> {
    let bad = || {
        Failure::Usage(format!(
            "--labels {s:?}: give bit numbers 0..127 (1,5) or BITS/MASK"
        ))
    };
    let bits = |t: &str| -> Result<Labels, Failure> {
        let mut l = Labels::default();
        for b in t.split(',').filter(|b| !b.is_empty()) {
            let n: u32 = b.trim().parse().map_err(|_| bad())?;
            if n >= Labels::BITS {
                return Err(bad());
            }
            l.insert(n);
        }
        Ok(l)
    };
    match s.split_once('/') {
        Some((v, m)) => Ok((bits(v)?, Some(bits(m)?))),
        None => Ok((bits(s)?, None)),
    }
}

fn read_rules(args: &Args) -> Result<FilterSet, Failure> {
    let mut set = FilterSet::new();
    if let Some(path) = &args.rules {
        let text = if path == "-" {
            std::io::read_to_string(std::io::stdin())
                .map_err(|e| Failure::Error(format!("reading rules from stdin: {e}")))?
        } else {
            std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("--rules {path}: {e}")))?
        };
        let parsed =
            FilterSet::parse(&text).map_err(|e| Failure::Usage(format!("--rules {path}: {e}")))?;
        set.extend(parsed.rules().iter().cloned());
    }
    for r in &args.rule {
        let rule: Rule = r
            .parse()
            .map_err(|e| Failure::Usage(format!("--rule {r:?}: {e}")))?;
        set.push(rule);
    }
    if set.is_empty() {
        return Err(Failure::Usage(
            "no rule: give --rule RULE or --rules FILE (`all` matches every entry)".into(),
        ));
    }
    Ok(set)
}

fn action(args: &Args) -> Result<Action, Failure> {
    let mut change = Change::new();
    if let Some(m) = &args.mark {
        let (v, mask) = parse_mark(m)?;
        change = change.mark_masked(v, mask);
    }
    if let Some(l) = &args.labels {
        change = match parse_labels(l)? {
            (bits, Some(mask)) => change.labels_masked(bits, mask),
            (bits, None) => change.labels(bits),
        };
    }
    if let Some(t) = args.timeout {
        if t.subsec_nanos() != 0 {
            return Err(Failure::Usage(format!(
                "--timeout {t:?}: conntrack timeouts are whole seconds"
            )));
        }
        change = change.timeout(u32::try_from(t.as_secs()).unwrap_or(u32::MAX));
    }
    Ok(match (args.dry_run, change.is_empty()) {
        (true, _) => Action::Count,
        (false, true) => Action::Delete,
        (false, false) => Action::Update(change),
    })
}

fn run(args: &Args) -> Result<(), Failure> {
    let set = read_rules(args)?;
    let action = action(args)?;
    let policy = match args.on_interrupt.as_str() {
        "fail" => DumpPolicy::Fail,
        "accept" => DumpPolicy::Accept,
        _ => DumpPolicy::Retry(3),
    };
    let opts = BulkOptions::default()
        .batch(args.batch)
        .policy(policy)
        // Listing needs every entry to pass through the dump.
        .kernel_flush(!args.no_kernel_flush && !args.list)
        .kernel_prefilter(!args.no_kernel_filter);
    let target = Target::resolve(&args.ns, None)?;
    let mut ct = Conntrack::open_in(&target.netns())
        .map_err(|e| failure_of(&format!("open ctnetlink in the {}", target.short()), &e))?;
    eprintln!(
        "clean: {} rule(s) in {} shape(s), {} in the {}",
        set.len(),
        set.shapes(),
        action.name(),
        target.short()
    );
    let format = ListFormat::EXTENDED.with_id();
    let report = ct
        .bulk(&set, &action, &opts, |f| {
            if args.list {
                let rule = set.first_match(f).map_or(0, |i| i + 1);
                println!("{}  # rule {rule}", render_line(&f.to_owned(), format));
            }
        })
        .map_err(|e| failure_of(&format!("{} the matching entries", action.name()), &e))?;
    println!("{report}");
    for f in &report.failures {
        println!("  refused: {f}");
    }
    if report.failed > report.failures.len() as u64 {
        println!(
            "  ... and {} more",
            report.failed - report.failures.len() as u64
        );
    }
    if report.failed > 0 {
        return Err(Failure::Error(format!(
            "the kernel refused {} of {} matching entries",
            report.failed, report.matched
        )));
    }
    Ok(())
}
