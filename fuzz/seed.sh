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
seed mirror "$nl"/events*.bin
h="$root"/conntrack-core/fixtures/host/linux-6.18
seed host "$h"/proc/meminfo "$h"/proc/slabinfo "$h"/proc/softirqs "$h"/sys/devices/system/cpu/possible \
    "$h"/proc/sys/kernel/osrelease "$h"/proc/self/smaps
# trace_record: hand-made records (clash, table full, NAT failure with a
# stack; record version 2) in the layout of
# conntrack-netlink/src/trace/record.rs; kept in the corpus as they are.

# Capture directories and host trees, packed one tree per file as
# `==> PATH <==` headers each followed by the file (src/tree.rs reads
# them). Reports, READMEs and generators are left out; listings are cut to
# their first 40 lines so an input stays small.
pack() { # target, name, directory
    local t=$1 name=$2 dir=$3
    mkdir -p "$here/corpus/$t"
    (cd "$dir" && find . -type f ! -name 'expected.*' ! -name '*.md' ! -name '*.py' \
        ! -name 'compare-*' ! -name '*.sh' | LC_ALL=C sort | while read -r f; do
        printf '==> %s <==\n' "${f#./}"
        case $f in
            */conntrack-L.txt) head -n 40 "$f" ;;
            *) awk 1 "$f" ;;
        esac
    done) >"$here/corpus/$t/seed-$name"
}
pack capture sample-incident "$root"/examples/data/sample-incident
for d in "$root"/conntrack-tune/fixtures/scenarios/*/; do
    pack capture "$(basename "$d")" "$d"
done
for d in "$root"/conntrack-core/fixtures/host/*/; do
    pack host_tree "$(basename "$d")" "$d"
done
for s in chain-too-long-6.1 el7-explicit-hashsize kube-proxy-max-over-4 max200-table-full; do
    pack host_tree "$s" "$root/conntrack-tune/fixtures/scenarios/$s"
done
for d in "$root"/examples/data/sample-incident "$root"/conntrack-tune/fixtures/scenarios/*; do
    seed stats_series "$d"/stats.txt
    seed nat_rules "$d"/iptables-save.txt "$d"/nft-ruleset.txt
done
seed sysctl_d "$root"/conntrack-tune/fixtures/scenarios/*/etc/sysctl.conf \
    "$root"/conntrack-tune/fixtures/scenarios/*/etc/sysctl.d/*.conf
seed modprobe_d "$root"/conntrack-tune/fixtures/scenarios/*/etc/modprobe.d/*.conf
seed kube_proxy "$root"/conntrack-tune/fixtures/scenarios/*/var/lib/kube-proxy/config.conf
seed label_map "$root"/conntrack-core/fixtures/cli-list/connlabel.conf

# Formats no fixture holds: small handwritten seeds in the kernel's and the
# tools' own forms (documented examples, no data of a real host).
hand() { # target, name; the text on stdin
    mkdir -p "$here/corpus/$1"
    cat >"$here/corpus/$1/seed-hand-$2"
}
hand attribution proc-net-tcp <<'TXT'
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0200000A:C350 0100000A:0050 01 00000000:00000000 02:000AFC2D 00000000  1000        0 5151 2 0000000000000000 20 4 30 10 -1
   2: 0200000A:C351 0100000A:0050 06 00000000:00000000 03:00001742 00000000     0        0 0 3 0000000000000000
TXT
hand attribution proc-net-tcp6 <<'TXT'
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1717 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000200000A:01BB 0000000000000000FFFF00000100000A:D431 01 00000000:00000000 00:00000000 00000000    33        0 1818 1 0000000000000000 20 4 30 10 -1
TXT
hand attribution cgroup-docker-v1 <<'TXT'
12:memory:/docker/4f1c6b4e8a2d9c0b7e6f5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b
11:cpu,cpuacct:/docker/4f1c6b4e8a2d9c0b7e6f5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b
0::/
TXT
hand attribution cgroup-k8s-v2 <<'TXT'
0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_0000_1111_2222_333344445555.slice/cri-containerd-4f1c6b4e8a2d9c0b7e6f5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b.scope
socket:[12345]
TXT
hand flow_mix default <<'TXT'
tcp=60,udp=30,icmp=10
TXT
hand flow_mix all-kinds <<'TXT'
tcp=1, udp=2, icmp=3, tcp6=4, udp6=5, icmp6=0
TXT
hand nat_rules nft-ruleset <<'TXT'
table ip nat {
	chain POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 172.18.0.0/16 oifname != "br-1" masquerade
		oifname "eth0" masquerade fully-random
		ip saddr 10.0.0.0/8 snat to 192.0.2.1 random,persistent
		tcp dport 8080 dnat to 172.18.0.2:80
	}
}
TXT
hand kube_proxy systemd-unit <<'TXT'
[Service]
ExecStart=/usr/bin/kube-proxy --conntrack-max-per-core 0 --conntrack-min=65536 \
    --conntrack-tcp-timeout-established=24h0m0s --conntrack-tcp-timeout-close-wait 1h --config=/opt/kp.yaml
TXT
hand modprobe_d options <<'TXT'
# conntrack and a helper
options nf-conntrack hashsize=16384 expect_hashsize="64"
options nf_conntrack_ftp ports=21,2121 loose=1 # trailing comment
blacklist nf_conntrack_sip
TXT
hand sysctl_d forms <<'TXT'
# comment
; comment
net.netfilter.nf_conntrack_max = 262144
-net/netfilter/nf_conntrack_buckets=65536
net.ipv4.conf.*.rp_filter = 2
-excluded.key
net.netfilter.nf_conntrack_tcp_timeout_established=432000
TXT
hand stats_series cli-and-proc <<'TXT'
@ 100
cpu=0   	found=0 invalid=12 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=1 chaintoolong=0 
cpu=1   	found=0 invalid=3 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 
@ 110
cpu=0   	found=0 invalid=20 insert=0 insert_failed=5 drop=5 early_drop=0 error=0 search_restart=0 clash_resolve=4 chaintoolong=0 
cpu=1   	found=0 invalid=3 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 
TXT
# A hostile capture: control characters in meta.txt, fractional and
# repeated sample times, a directory, FIFOs, a masked file and link loops.
{
    printf '==> meta.txt <==\n'
    printf 'hostname=web\033]0;pwned\007\ndescription=bell \007 and \033[31m red\r\n'
    printf '==> stats.txt <==\n@ 0\nentries  insert_failed drop\n00000010  00000000 00000000\n'
    printf '@ 0.5\nentries  insert_failed drop\n00000010  00000064 00000064\n'
    printf '==> conntrack-L.txt/ <==\n==> conntrack-S.txt | <==\n==> etc/sysctl.d/a.conf | <==\n'
    printf '==> etc/sysctl.d/masked.conf -> /dev/null <==\n==> proc/meminfo -> meminfo <==\n'
    printf '==> etc/modprobe.d/loop.conf -> loop.conf <==\n'
} | hand capture hostile
