#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the crates' fixtures. Idempotent; run
# from anywhere. The corpus is committed so CI and cargo-fuzz start from it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
seed() { # target, files...
    local t=$1; shift
    mkdir -p "$here/corpus/$t"
    for f in "$@"; do
        [ -f "$f" ] || continue
        cp "$f" "$here/corpus/$t/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
    done
}
seed procstat "$root"/conntrack-core/fixtures/proc-stat/*.txt
seed cli_stats "$root"/conntrack-core/fixtures/cli-stats/*.txt
seed cli_list "$root"/conntrack-core/fixtures/cli-list/*.txt
nl="$root"/conntrack-netlink/fixtures
seed nl_flow "$nl"/dump*.bin "$nl"/get*.bin "$nl"/events*.bin
seed nl_stats "$nl"/stats*.bin
seed nl_event "$nl"/events*.bin
h="$root"/conntrack-core/fixtures/host/linux-6.18
seed host "$h"/proc/meminfo "$h"/proc/slabinfo "$h"/proc/softirqs "$h"/sys/devices/system/cpu/possible \
    "$h"/proc/sys/kernel/osrelease "$h"/proc/self/smaps
# trace_record: hand-made records (clash, table full) in the layout of
# conntrack-netlink/src/trace/record.rs; kept in the corpus as they are.
