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
