//! The invariants every fuzz target checks, shared by the libFuzzer targets
//! (`fuzz_targets/`, run with `cargo fuzz`) and by the stable replay test
//! (`tests/replay.rs`, run with plain `cargo test`), so both check exactly
//! the same thing.
//!
//! Each check must not panic on any input, and where an encoder exists,
//! decode -> encode -> decode must be stable.

use conntrack_core::cli::list::{LabelMap, ListFormat, ListParser};
use conntrack_core::cli::stats as cli_stats;
use conntrack_core::procstat;
use conntrack_netlink::event::{Item, for_each_item};
use conntrack_netlink::wire::{self, FlowView, encode};

/// `/proc/net/stat/nf_conntrack`: parse never panics; a parsed table
/// rendered in the kernel's format parses back to the same stats.
pub fn check_procstat(data: &[u8]) {
    if let Ok(table) = procstat::parse_table_bytes(data) {
        let text = procstat::render(&table.columns, &table.stats);
        let again = procstat::parse_table(&text).expect("rendered /proc stat text must parse");
        assert_eq!(
            again.stats, table.stats,
            "render/parse not stable for {text:?}"
        );
        assert_eq!(again.columns, table.columns);
    }
    // The lazy row reader must not panic either, whatever the rows hold.
    if let Ok(rows) = procstat::rows(data) {
        for _ in rows {}
    }
}

/// `conntrack -S` and `-C` text: parse never panics; parse(render(parse(x)))
/// equals parse(x).
pub fn check_cli_stats(data: &[u8]) {
    if let Ok(stats) = cli_stats::parse_cli_stats_bytes(data) {
        let text = cli_stats::render_cli_stats(&stats);
        let again =
            cli_stats::parse_cli_stats(&text).expect("rendered conntrack -S text must parse");
        assert_eq!(again, stats, "render/parse not stable for {text:?}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cli_stats::parse_count(text);
    }
}

/// `conntrack -L` text: parsing never panics, one bad line does not stop
/// the rest, and every parsed flow rendered in the fullest CLI form
/// (`-o extended,id,ktimestamp,labels`) parses back to the same flow.
pub fn check_cli_list(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let labels = LabelMap::numeric();
    let parser = ListParser::new().with_labels(&labels);
    let format = ListFormat::EXTENDED
        .with_id()
        .with_ktimestamp()
        .with_labels(&labels);
    for flow in parser.parse_lines(&text).flatten() {
        let line = conntrack_core::cli::list::render_line(&flow, format);
        let again = parser
            .parse_line(&line)
            .unwrap_or_else(|e| panic!("rendered line does not parse: {e}: {line:?}"));
        assert_eq!(again, flow, "render/parse not stable for {line:?}");
    }
}

/// ctnetlink flow messages: decoding never panics; every flow that
/// decodes, encoded as the kernel would and decoded again, gives the same
/// owned flow.
pub fn check_nl_flow(data: &[u8]) {
    let mut buf = Vec::new();
    for view in wire::flows(data).flatten() {
        let flow = view.to_owned();
        buf.clear();
        let m = encode::begin_message(
            &mut buf,
            wire::message::ct_type(wire::message::IPCTNL_MSG_CT_NEW),
            0,
            0,
            flow.family().0,
        );
        encode::encode_flow_as_kernel(&flow, &mut buf);
        encode::finish_message(&mut buf, m);
        let msg = wire::messages(&buf)
            .next()
            .expect("one message")
            .expect("own framing is valid");
        let again = FlowView::from_message(&msg)
            .unwrap_or_else(|e| panic!("re-encoded flow does not decode: {e}: {flow:?}"))
            .to_owned();
        assert_eq!(again, flow, "decode/encode/decode not stable");
    }
}

/// Stats replies: per-CPU and global stats decoding never panics, on the
/// payload of each message and on the raw bytes.
pub fn check_nl_stats(data: &[u8]) {
    let _ = wire::decode_stats_cpu(data);
    let _ = wire::decode_stats_global(data);
    for msg in wire::messages(data).flatten() {
        let _ = wire::decode_stats_cpu(msg.payload);
        let _ = wire::decode_stats_global(msg.payload);
    }
}

/// Event datagrams: decoding never panics, and every decoded event can be
/// turned into its owned form.
pub fn check_nl_event(data: &[u8]) {
    for_each_item(data, |item| {
        if let Item::Event(e) = item {
            let _ = e.to_owned_event();
        }
    });
}

/// Host facts files (`/proc/meminfo`, `slabinfo`, `softirqs`, `modules`,
/// CPU lists, RPS masks, ...): every pure parser of `conntrack_core::host`
/// never panics, and CPU lists and RPS masks round-trip through their
/// renderers.
pub fn check_host(data: &[u8]) {
    use conntrack_core::host::*;
    let _ = parse_auxv_page_size(data);
    let Ok(text) = decode_utf8(data) else { return };
    let _ = parse_single_value(text);
    let _ = parse_sysctl_u32(text);
    let _ = parse_u32_value(text);
    let _ = parse_sysctl_bool(text);
    let _ = parse_osrelease(text);
    let _ = parse_meminfo(text);
    let _ = parse_slabinfo(text);
    let _ = parse_softirqs(text);
    let _ = parse_modules(text);
    let _ = parse_smaps_page_size(text);
    let _ = parse_ns_link(text);
    if let Ok(cpus) = parse_cpu_list(text) {
        assert_eq!(
            parse_cpu_list(&render_cpu_list(&cpus)).ok(),
            Some(cpus.clone())
        );
    }
    if let Ok(cpus) = parse_rps_mask(text) {
        let width = cpus.iter().max().map_or(1, |m| m + 1);
        assert_eq!(
            parse_rps_mask(&render_rps_mask(&cpus, width)).ok(),
            Some(cpus)
        );
    }
}

/// One fuzz target's check.
pub type Check = fn(&[u8]);

/// The targets by name, for the replay test and the CI script.
/// A drop tracer record (`conntrack_netlink::trace::record`): parse never
/// panics, and emit(parse(x)) parses back to parse(x).
pub fn check_trace_record(data: &[u8]) {
    use conntrack_netlink::trace::record::{RawDrop, decode_tuple, emit_tuple};
    if let Ok(r) = RawDrop::parse(data) {
        let again = RawDrop::parse(&r.emit()).expect("an emitted record must parse");
        assert_eq!(again, r, "emit/parse not stable");
    }
    if let Some(t) = decode_tuple(data) {
        assert_eq!(
            decode_tuple(&emit_tuple(&t)),
            Some(t),
            "tuple emit/decode not stable"
        );
    }
}

pub const TARGETS: &[(&str, Check)] = &[
    ("procstat", check_procstat),
    ("cli_stats", check_cli_stats),
    ("cli_list", check_cli_list),
    ("nl_flow", check_nl_flow),
    ("nl_stats", check_nl_stats),
    ("nl_event", check_nl_event),
    ("host", check_host),
    ("trace_record", check_trace_record),
];
