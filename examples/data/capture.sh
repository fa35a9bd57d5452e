#!/bin/sh
# Saves what `doctor --capture DIR` and `plan --capture DIR` read, on the
# host to diagnose (no Rust needed there). Run as root so that ctnetlink,
# slabinfo and the hashsize parameter are readable:
#
#   sh capture.sh /tmp/ct-capture [INTERVAL_SECS]
#   tar czf ct-capture.tgz -C /tmp ct-capture      # attach to the ticket
#
# Layout (every file optional; conntrack_analyze::capture documents it):
# stats.txt (`@ SECONDS` lines, each followed by /proc/net/stat/nf_conntrack,
# or by `conntrack -S` when the /proc file does not exist: two samples
# INTERVAL_SECS apart, for rates), conntrack-L.txt, conntrack-S.txt,
# conntrack-C.txt (conntrack-tools), iptables-save.txt / nft-ruleset.txt
# (the NAT rules), meta.txt (hostname, captured_at), and the host's /proc,
# /sys, /etc/sysctl.d and /etc/modprobe.d files at their paths. Nothing is
# changed on the host. To capture a container's network namespace, run the
# script under `nsenter -t PID -n` (sysctls and /proc/net then show that
# namespace).
set -eu
out=${1:?usage: capture.sh OUTDIR [INTERVAL_SECS]}
interval=${2:-10}
mkdir -p "$out"
copy() { # copy FILE: the file's bytes at the same path under $out, if readable
    [ -r "$1" ] || return 0
    mkdir -p "$out$(dirname "$1")"
    cat "$1" > "$out$1" 2>/dev/null || rm -f "$out$1"
}
stat_file=/proc/net/stat/nf_conntrack
sample() { # one `@ SECONDS` sample of the per-CPU counters
    if [ -r "$stat_file" ]; then
        echo "@ $(date +%s)"; cat "$stat_file"
    elif command -v conntrack >/dev/null 2>&1; then
        echo "@ $(date +%s)"; conntrack -S 2>/dev/null
    fi
}
sample > "$out/stats.txt"
start=$(date +%s)
if command -v conntrack >/dev/null 2>&1; then
    conntrack -L > "$out/conntrack-L.txt" 2>/dev/null || true
    conntrack -S > "$out/conntrack-S.txt" 2>/dev/null || true
    conntrack -C > "$out/conntrack-C.txt" 2>/dev/null || true
fi
command -v iptables-save >/dev/null 2>&1 &&
    iptables-save -t nat > "$out/iptables-save.txt" 2>/dev/null || true
command -v nft >/dev/null 2>&1 && nft list ruleset > "$out/nft-ruleset.txt" 2>/dev/null || true
for f in /proc/sys/net/netfilter/* /proc/meminfo /proc/slabinfo /proc/softirqs \
         /proc/modules /proc/sys/kernel/osrelease /proc/net/stat/nf_conntrack \
         /sys/devices/system/cpu/possible /sys/devices/system/cpu/online \
         /sys/module/nf_conntrack/parameters/hashsize /sys/module/nf_conntrack/initstate \
         /etc/sysctl.conf /etc/sysctl.d/* /usr/lib/sysctl.d/* /run/sysctl.d/* \
         /etc/modprobe.d/* /lib/modprobe.d/* /usr/lib/modprobe.d/* \
         /var/lib/kube-proxy/config.conf; do
    [ -f "$f" ] && copy "$f"
done
for f in /sys/class/net/*/queues/rx-*/rps_cpus; do copy "$f"; done
for d in /sys/module/nf_conntrack_* /sys/module/nf_nat_*; do
    [ -d "$d/parameters" ] || continue
    for f in "$d"/parameters/*; do copy "$f"; done
done
mkdir -p "$out/proc/self/ns" "$out/proc/1/ns"
head -n 24 /proc/self/smaps > "$out/proc/self/smaps"
readlink /proc/self/ns/net > "$out/proc/self/ns/net"
readlink /proc/1/ns/net > "$out/proc/1/ns/net" 2>/dev/null || rm -f "$out/proc/1/ns/net"
# The second statistics sample, INTERVAL_SECS after the first.
now=$(date +%s)
[ $((now - start)) -lt "$interval" ] && sleep $((interval - (now - start)))
sample >> "$out/stats.txt"
{
    echo "# Written by examples/data/capture.sh"
    echo "hostname=$(uname -n)"
    echo "captured_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$out/meta.txt"
echo "capture written to $out" >&2
