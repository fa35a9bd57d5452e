//! Live tests of bulk delete and update (`conntrack_netlink::bulk`), each
//! in a fresh network namespace, checked against `conntrack -L` before
//! and after.
//!
//! They skip (printing why) without root, `ip`, `conntrack` or
//! nf_conntrack, unless `CONNTRACK_KIT_REQUIRE_LIVE=1`. The tables are a
//! few thousand flows of the synthetic kube-proxy node
//! (`bulk::kube::KubeTable`), within the default `nf_conntrack_max`.

use conntrack_core::cli::list::parse_lines;
use conntrack_core::testkit::{self, Need, TestNetns};
use conntrack_core::{Flow, Labels, Tuple};
use conntrack_netlink::bulk::kube::KubeTable;
use conntrack_netlink::bulk::{
    Action, BulkOptions, BulkPath, Change, FilterSet, KernelSupport, Rule,
};
use conntrack_netlink::fill::fill_flows;
use conntrack_netlink::{Conntrack, Netns};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

const NEEDS: &[Need<'static>] = &[
    Need::Root,
    Need::Tool("ip"),
    Need::Tool("conntrack"),
    Need::Path("/proc/sys/net/netfilter/nf_conntrack_max"),
];

/// A fresh namespace and a connection to its table, or `None` (skip).
fn live(tag: &str) -> Option<(TestNetns, Conntrack)> {
    if !testkit::live(tag, NEEDS) {
        return None;
    }
    let ns = TestNetns::new(tag);
    let ct = Conntrack::open_in(&Netns::named(ns.name())).expect("open ctnetlink");
    Some((ns, ct))
}

/// A small node: 60 Services of 5 endpoints.
fn node() -> KubeTable {
    KubeTable {
        services: 60,
        endpoints: 5,
        timeout: 3600,
    }
}

/// Creates `flows`, all of which must be accepted.
fn create(ct: &mut Conntrack, flows: impl IntoIterator<Item = Flow>) -> u64 {
    let r = fill_flows(ct, flows, 256).expect("create flows");
    assert_eq!(r.failed, 0, "creates refused: {:?}", r.errors);
    r.created
}

/// `conntrack -L -o extended,id` in the namespace, by original tuple.
fn cli(ns: &TestNetns) -> HashMap<Tuple, Flow> {
    let out = ns
        .command("conntrack")
        .args(["-L", "-o", "extended,id"])
        .output()
        .expect("run conntrack -L");
    assert!(out.status.success(), "conntrack -L: {out:?}");
    parse_lines(&String::from_utf8(out.stdout).unwrap())
        .map(|r| r.expect("conntrack -L line parses"))
        .map(|f| (f.orig, f))
        .collect()
}

fn matches(set: &FilterSet, f: &Flow) -> bool {
    set.rules().iter().any(|r| r.matches_fields(f))
}

#[test]
fn delete_removes_exactly_the_matching_entries_under_concurrent_creates() {
    let Some((ns, mut ct)) = live("bulk-del") else {
        return;
    };
    let t = node();
    create(&mut ct, t.flows(0, 6000));
    // More than one rule: the streaming pass.
    let set: FilterSet = t.stale_rules(48).into_iter().collect();
    let before = cli(&ns);
    assert_eq!(before.len(), 6000);
    let (gone, kept): (Vec<&Flow>, Vec<&Flow>) = before.values().partition(|f| matches(&set, f));
    assert!(!gone.is_empty() && !kept.is_empty());

    // A second connection creates flows (UDP through the same Services,
    // so some match, and TCP) for as long as the pass runs.
    let done = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel();
    let churn = {
        let (done, name) = (done.clone(), ns.name().to_string());
        std::thread::spawn(move || {
            let mut c = Conntrack::open_in(&Netns::named(&name)).expect("open");
            let mut made = Vec::new();
            let mut next = 1_000_000u64;
            while !done.load(Ordering::Acquire) {
                let batch: Vec<Flow> = t.flows(next, 64).collect();
                next += 64;
                create(&mut c, batch.iter().cloned());
                made.extend(batch);
                let _ = started_tx.send(());
            }
            made
        })
    };
    started_rx
        .recv()
        .expect("the creating thread made its first batch");
    let report = ct.delete_matching(&set).expect("bulk delete");
    done.store(true, Ordering::Release);
    let made = churn.join().expect("creating thread");
    println!("{report}\n{} flows created during the pass", made.len());

    assert_eq!(report.path, BulkPath::Streaming);
    assert_eq!(report.failed, 0, "{report}");
    assert_eq!(
        report.matched,
        report.deleted + report.vanished + report.failed
    );
    let new_matching = made.iter().filter(|f| matches(&set, f)).count() as u64;
    assert!(
        report.deleted >= gone.len() as u64 && report.deleted <= gone.len() as u64 + new_matching,
        "deleted {} of {} old + {new_matching} new matching entries",
        report.deleted,
        gone.len()
    );

    let after = cli(&ns);
    for f in &gone {
        assert!(!after.contains_key(&f.orig), "matching entry left: {f:?}");
    }
    for f in &kept {
        assert!(
            after.contains_key(&f.orig),
            "non-matching entry deleted: {f:?}"
        );
    }
    for f in made.iter().filter(|f| !matches(&set, f)) {
        assert!(
            after.contains_key(&f.orig),
            "new non-matching entry deleted: {f:?}"
        );
    }
    assert_eq!(
        after.len() as u64,
        before.len() as u64 + made.len() as u64 - report.deleted
    );
    // A second pass finds only what was created after the first one's dump.
    let again = ct.count_matching(&set).expect("count");
    assert_eq!(
        again.matched,
        after.values().filter(|f| matches(&set, f)).count() as u64
    );
}

#[test]
fn one_rule_goes_to_the_kernel_flush_and_deletes_exactly_it() {
    let Some((ns, mut ct)) = live("bulk-flush") else {
        return;
    };
    let t = node();
    create(&mut ct, t.flows(0, 4000));
    let mut marked: Vec<Flow> = (0..200u32)
        .map(|i| {
            let mut f = t.udp_flow(500_000 + u64::from(i));
            f.mark = Some(0x100 | (i % 4));
            f
        })
        .collect();
    marked.sort_by_key(|f| f.orig);
    create(&mut ct, marked.iter().cloned());

    let running = KernelSupport::running();
    // One rule of kube-proxy's shape (tuple conditions): one request on
    // 6.12+, where the kernel takes CTA_FILTER in a flush.
    let rule = t.stale_rule(7);
    let tuple_flush = running.can_flush(&rule.as_kernel_filter().unwrap()).is_ok();
    // One rule on the mark only: one request on 5.2+.
    let mark_rule: Rule = "mark=0x101/0xfff".parse().unwrap();
    // A network: the kernel cannot flush by it.
    let cidr_rule: Rule = "proto=udp reply-src=10.244.0.0/26".parse().unwrap();

    for (rule, kernel) in [(rule, tuple_flush), (mark_rule, true), (cidr_rule, false)] {
        let set = FilterSet::new().with(rule.clone());
        let before = cli(&ns);
        let want: HashSet<Tuple> = before
            .values()
            .filter(|f| matches(&set, f))
            .map(|f| f.orig)
            .collect();
        assert!(!want.is_empty(), "{rule} matches something");
        let report = ct.delete_matching(&set).expect("bulk delete");
        println!("{rule}: {report}");
        let expect_path = if kernel {
            BulkPath::KernelFlush
        } else {
            BulkPath::Streaming
        };
        assert_eq!(report.path, expect_path, "{rule}: {}", report.why);
        assert_eq!(report.deleted, want.len() as u64, "{rule}");
        let after = cli(&ns);
        assert_eq!(after.len(), before.len() - want.len(), "{rule}");
        for (orig, f) in &before {
            assert_eq!(
                after.contains_key(orig),
                !want.contains(orig),
                "{rule}: {f:?}"
            );
        }
    }
}

#[test]
fn update_changes_exactly_the_matching_entries() {
    let Some((ns, mut ct)) = live("bulk-upd") else {
        return;
    };
    let t = node();
    let mut flows: Vec<Flow> = t.flows(0, 3000).collect();
    for (i, f) in flows.iter_mut().enumerate() {
        f.mark = Some(0xa000 | i as u32 & 0xff);
    }
    create(&mut ct, flows.iter().cloned());
    let set: FilterSet = t.stale_rules(24).into_iter().collect();
    let before = cli(&ns);
    let change = Change::new().mark_masked(0x0500, 0x0f00).timeout(120);
    let report = ct.update_matching(&set, &change).expect("bulk update");
    println!("{report}");
    let want = before.values().filter(|f| matches(&set, f)).count() as u64;
    assert_eq!(
        (report.matched, report.updated, report.failed),
        (want, want, 0)
    );
    assert_eq!(report.deleted, 0);

    let after = cli(&ns);
    assert_eq!(after.len(), before.len());
    for (orig, old) in &before {
        let new = &after[orig];
        let old_mark = old.mark.unwrap_or(0);
        if matches(&set, old) {
            assert_eq!(new.mark, Some(old_mark & !0x0f00 | 0x0500), "{old:?}");
            assert!(new.timeout.unwrap() <= 120, "{new:?}");
        } else {
            assert_eq!(new.mark.unwrap_or(0), old_mark, "{old:?}");
            assert!(new.timeout.unwrap() > 120, "{new:?}");
        }
    }
}

#[test]
fn errors_per_entry_are_reported_and_the_pass_goes_on() {
    let Some((ns, mut ct)) = live("bulk-err") else {
        return;
    };
    if !testkit::live("bulk-err (nft)", &[Need::Tool("nft")]) {
        return;
    }
    let t = node();
    // Entries created while no rule of the namespace uses labels have no
    // label area: the kernel refuses to label them (ENOSPC).
    let bare: Vec<Flow> = (0..300).map(|u| t.udp_flow(u)).collect();
    create(&mut ct, bare.iter().cloned());
    // A ruleset that uses labels makes the kernel give new entries one.
    ns.exec(&["nft", "add", "table", "ip", "ckit"]);
    ns.exec(&[
        "nft",
        "add chain ip ckit pre { type filter hook prerouting priority 0; }",
    ]);
    ns.exec(&["nft", "add rule ip ckit pre ct label set 5"]);
    let labelled: Vec<Flow> = (300..600).map(|u| t.udp_flow(u)).collect();
    create(&mut ct, labelled.iter().cloned());

    let set = FilterSet::parse("proto=udp orig-dst=10.96.0.0/16").unwrap();
    let change = Change::new().labels_masked(Labels::from_bits([9]), Labels::from_bits([9]));
    let opts = BulkOptions::default().batch(64).keep_failures(5);
    let report = ct
        .bulk(&set, &Action::Update(change), &opts, |_| {})
        .expect("an update with refused entries still completes");
    println!("{report}");
    for f in &report.failures {
        println!("  {f}");
    }
    assert_eq!(report.matched, 600);
    assert_eq!(report.updated, 300, "the labelled half");
    assert_eq!(report.failed, 300, "the bare half");
    assert_eq!(report.errors.get(&libc::ENOSPC), Some(&300));
    assert_eq!(report.failures.len(), 5);
    let bare_tuples: HashSet<Tuple> = bare.iter().map(|f| f.orig).collect();
    for f in &report.failures {
        assert!(bare_tuples.contains(&f.orig), "{f}");
        assert_eq!(f.errno, libc::ENOSPC);
    }
    // conntrack -L shows label 9 on exactly the labelled half (no label
    // names file here: the CLI prints none, so read them through a dump).
    let mut labelled_now = HashSet::new();
    ct.for_each(
        &conntrack_netlink::DumpRequest::table(conntrack_core::L3Family::INET),
        |f| {
            if f.labels().is_some_and(|l| l.contains(9)) {
                labelled_now.insert(f.orig());
            }
        },
    )
    .unwrap();
    let want: HashSet<Tuple> = labelled.iter().map(|f| f.orig).collect();
    assert_eq!(labelled_now, want);
    assert_eq!(cli(&ns).len(), 600, "nothing deleted");
}

#[test]
fn vanished_entries_are_not_failures() {
    let Some((ns, mut ct)) = live("bulk-gone") else {
        return;
    };
    let t = node();
    create(&mut ct, (0..500).map(|u| t.udp_flow(u)));
    let set = FilterSet::parse("proto=udp").unwrap();
    // Delete every tenth entry from the callback, as a concurrent agent
    // would between the dump and the batch.
    let name = ns.name().to_string();
    let mut other = Conntrack::open_in(&Netns::named(&name)).unwrap();
    let mut n = 0;
    let opts = BulkOptions::default().kernel_flush(false);
    let report = ct
        .bulk(&set, &Action::Delete, &opts, |f| {
            n += 1;
            if n % 10 == 0 {
                other
                    .delete(&f.orig(), conntrack_core::FlowLike::zone(f), None)
                    .unwrap();
            }
        })
        .unwrap();
    println!("{report}");
    assert_eq!(
        (
            report.matched,
            report.deleted,
            report.vanished,
            report.failed
        ),
        (500, 450, 50, 0)
    );
    assert!(cli(&ns).is_empty());
}
