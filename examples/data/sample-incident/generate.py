#!/usr/bin/env python3
"""Writes the synthetic sample incident (a capture directory) next to this
script. Deterministic: run it again and `git diff` shows nothing.

    python3 examples/data/sample-incident/generate.py

The story (see README.md): a 512 MiB cloud VM, Ubuntu 22.04 (5.15), Docker
with the default bridge and masquerade. A worker container opens a new HTTPS
connection per request; TIME_WAIT entries fill the kernel's default 4096-entry
table, new flows are early-dropped and dropped, DNS lookups of the containers
race (insert_failed), and everything lands on CPU 0 (one virtio queue, RPS
off)."""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20261121)

HOST = "10.0.1.15"         # eth0
RESOLVER = "10.0.0.2"      # VPC resolver
API = ["203.0.113.10", "203.0.113.11"]
DEAD_DB = "198.51.100.7"
API_C, WORKER_C, REDIS_C = "172.17.0.2", "172.17.0.3", "172.17.0.4"
LB = ["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13"]

COUNT = 4093
MAX = 4096

lines = []
used_ports = set()


def port():
    while True:
        p = rng.randint(32768, 60999)
        if p not in used_ports:
            used_ports.add(p)
            return p


def tcp(state, timeout, o, r, flags):
    (os_, od, osp, odp), (rs, rd, rsp, rdp) = o, r
    unrep = "[UNREPLIED] " if "U" in flags else ""
    assured = "[ASSURED] " if "A" in flags else ""
    return (f"tcp      6 {timeout} {state} src={os_} dst={od} sport={osp} dport={odp} "
            f"{unrep}src={rs} dst={rd} sport={rsp} dport={rdp} {assured}mark=0 use=1")


def udp(timeout, o, r, flags):
    (os_, od, osp, odp), (rs, rd, rsp, rdp) = o, r
    unrep = "[UNREPLIED] " if "U" in flags else ""
    assured = "[ASSURED] " if "A" in flags else ""
    return (f"udp      17 {timeout} src={os_} dst={od} sport={osp} dport={odp} "
            f"{unrep}src={rs} dst={rd} sport={rsp} dport={rdp} {assured}mark=0 use=1")


def masq(src, dst, dport, sport=None):
    """A container flow leaving through docker0 masquerade."""
    sp = sport or port()
    return (src, dst, sp, dport), (dst, HOST, dport, sp)


# Inbound service traffic: load balancer -> published port 8080 (DNAT).
for i in range(300):
    lb, sp = rng.choice(LB), port()
    lines.append(tcp("ESTABLISHED", rng.randint(431000, 431999),
                     (lb, HOST, sp, 8080), (API_C, lb, 8080, sp), "A"))
for i in range(140):
    lb, sp = rng.choice(LB), port()
    lines.append(tcp("TIME_WAIT", rng.randint(1, 120),
                     (lb, HOST, sp, 8080), (API_C, lb, 8080, sp), "A"))
# API container -> redis container over the bridge (br_netfilter, no NAT).
for i in range(60):
    sp = port()
    lines.append(tcp("ESTABLISHED", rng.randint(300000, 431999),
                     (API_C, REDIS_C, sp, 6379), (REDIS_C, API_C, 6379, sp), "A"))
# The worker: HTTPS to the API provider, some live, most closed.
for i in range(130):
    o, r = masq(WORKER_C, rng.choice(API), 443)
    lines.append(tcp("ESTABLISHED", rng.randint(431900, 431999), o, r, "A"))
# Retries against a database that no longer answers.
for i in range(180):
    o, r = masq(WORKER_C, DEAD_DB, 5432)
    lines.append(tcp("SYN_SENT", rng.randint(1, 120), o, r, "U"))
# DNS of both containers (A and AAAA), mostly answered.
for i in range(980):
    src = WORKER_C if rng.random() < 0.8 else API_C
    o, r = masq(src, RESOLVER, 53)
    flags = "U" if rng.random() < 0.12 else ""
    lines.append(udp(rng.randint(1, 30), o, r, flags))
# The host itself: ssh, NTP, a ping from the load balancer.
for i in range(2):
    sp = port()
    lines.append(tcp("ESTABLISHED", rng.randint(7000, 7200),
                     ("192.0.2.44", HOST, sp, 22), (HOST, "192.0.2.44", 22, sp), "A"))
lines.append(udp(rng.randint(100, 120), (HOST, "169.254.169.123", 123, 123),
                 ("169.254.169.123", HOST, 123, 123), "A"))
for i in range(20):
    lb = rng.choice(LB)
    ident = rng.randint(1, 65535)
    lines.append(f"icmp     1 {rng.randint(1, 30)} src={lb} dst={HOST} type=8 code=0 id={ident} "
                 f"src={HOST} dst={lb} type=0 code=0 id={ident} mark=0 use=1")
# The rest: the worker's closed HTTPS connections in TIME_WAIT.
while len(lines) < COUNT:
    o, r = masq(WORKER_C, rng.choice(API), 443)
    lines.append(tcp("TIME_WAIT", rng.randint(1, 120), o, r, "A"))
rng.shuffle(lines)


def write(rel, text):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


write("conntrack-L.txt", "\n".join(lines) + "\n")
write("conntrack-C.txt", f"{COUNT}\n")

# /proc/net/stat/nf_conntrack, 5.15 header, 2 CPUs, two samples 10 s apart.
HEADER = ("entries  clashres found new invalid ignore delete chainlength insert insert_failed "
          "drop early_drop icmp_error  expect_new expect_create expect_delete search_restart")
COLS = HEADER.split()
boot = [
    dict(clashres=18234, found=5123, invalid=88412, insert_failed=20310, drop=61877,
         early_drop=540122, icmp_error=1204, search_restart=9120),
    dict(clashres=3120, found=811, invalid=12033, insert_failed=2011, drop=4102,
         early_drop=60213, icmp_error=301, search_restart=1877),
]
window = [
    dict(clashres=112, found=9, invalid=41, insert_failed=96, drop=412, early_drop=1830,
         icmp_error=2, search_restart=14),
    dict(clashres=15, found=1, invalid=6, insert_failed=4, drop=21, early_drop=310,
         icmp_error=0, search_restart=2),
]


def stat(entries, cpus):
    out = [HEADER]
    for c in cpus:
        vals = [entries] + [c.get(name, 0) for name in COLS[1:]]
        cells = [f"{v:08x}" for v in vals]
        out.append(cells[0] + "  " + " ".join(cells[1:13]) + "  " + " ".join(cells[13:]))
    return "\n".join(out) + "\n"


later = [{k: b[k] + w.get(k, 0) for k in b} for b, w in zip(boot, window)]
# stats.txt: two `@ SECONDS` samples 10 s apart (what capture.sh writes).
write("stats.txt", "@ 1762092441\n" + stat(4091, boot) + "@ 1762092451\n" + stat(COUNT, later))
write("proc/net/stat/nf_conntrack", stat(COUNT, later))


# conntrack -S as conntrack-tools 1.4.6 (Ubuntu 22.04) prints it on 5.15:
# chaintoolong is newer than the tools and shows up as unknown1.
def cli(c, cpu):
    names = [("found", "found"), ("invalid", "invalid"), ("insert", "insert"),
             ("insert_failed", "insert_failed"), ("drop", "drop"), ("early_drop", "early_drop"),
             ("error", "icmp_error"), ("search_restart", "search_restart"),
             ("clash_resolve", "clashres"), ("unknown1", "chainlength")]
    return f"cpu={cpu:<4}\t" + "".join(f"{n}={c.get(k, 0)} " for n, k in names)


write("conntrack-S.txt", "".join(cli(c, i) + "\n" for i, c in enumerate(later)))

write("meta.txt", """\
# Capture metadata (key=value). See examples/data/README.md.
description=SAMPLE: synthetic Docker host (512 MiB VM, Ubuntu 22.04, 5.15) with a full table
hostname=worker-vm-1
captured_at=2026-11-02T14:07:31Z
""")

# Docker's nat table as `iptables-save -t nat` prints it: MASQUERADE for
# the bridge without --random-fully, DNAT for the published port.
write("iptables-save.txt", """\
# Generated by iptables-save v1.8.7 on Sun Nov  2 14:07:31 2026
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 8080 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:8080
COMMIT
""")

# The host tree HostFs reads.
write("proc/sys/kernel/osrelease", "5.15.0-91-generic\n")
write("proc/meminfo", """\
MemTotal:         473648 kB
MemFree:           21476 kB
MemAvailable:      88012 kB
Buffers:            9124 kB
Cached:            96308 kB
SwapCached:            0 kB
Active:           187220 kB
Inactive:         152316 kB
SwapTotal:             0 kB
SwapFree:              0 kB
""")
write("proc/self/smaps", """\
55d0c7a00000-55d0c7a28000 r--p 00000000 fc:01 1835043                    /usr/bin/cat
Size:                160 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                 160 kB
""")
write("proc/self/ns/net", "net:[4026531840]\n")
write("proc/1/ns/net", "net:[4026531840]\n")
write("sys/devices/system/cpu/possible", "0-1\n")
write("sys/devices/system/cpu/online", "0-1\n")
write("sys/module/nf_conntrack/parameters/hashsize", "4096\n")
write("sys/module/nf_conntrack/initstate", "live\n")
for iface in ["eth0", "docker0", "veth3f1a2b0", "veth91c4d7e", "veth5e0b6a2"]:
    write(f"sys/class/net/{iface}/queues/rx-0/rps_cpus", "0\n")
write("proc/slabinfo", """\
slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
nf_conntrack        4110   4150    320   25    2 : tunables    0    0    0 : slabdata    166    166      0
""")
write("proc/softirqs", """\
                    CPU0       CPU1
          HI:          0          1
       TIMER:    9120331    8311022
      NET_TX:      41023       3310
      NET_RX:  381220117    2104466
       BLOCK:     211034     190221
    IRQ_POLL:          0          0
     TASKLET:      10321        211
       SCHED:    4102331    3920112
     HRTIMER:          0          0
         RCU:    6021331    5899012
""")
write("proc/modules", """\
veth 32768 0 - Live 0x0000000000000000
xt_conntrack 16384 1 - Live 0x0000000000000000
xt_MASQUERADE 20480 1 - Live 0x0000000000000000
nf_conntrack_netlink 53248 0 - Live 0x0000000000000000
xfrm_user 45056 1 - Live 0x0000000000000000
xt_addrtype 16384 2 - Live 0x0000000000000000
iptable_nat 16384 1 - Live 0x0000000000000000
nf_nat 49152 2 xt_MASQUERADE,iptable_nat, Live 0x0000000000000000
nf_conntrack 172032 4 xt_conntrack,xt_MASQUERADE,nf_conntrack_netlink,nf_nat, Live 0x0000000000000000
nf_defrag_ipv6 24576 1 nf_conntrack, Live 0x0000000000000000
nf_defrag_ipv4 16384 1 nf_conntrack, Live 0x0000000000000000
br_netfilter 32768 0 - Live 0x0000000000000000
bridge 307200 1 br_netfilter, Live 0x0000000000000000
overlay 151552 3 - Live 0x0000000000000000
""")
sysctls = {
    "nf_conntrack_acct": 0, "nf_conntrack_buckets": 4096, "nf_conntrack_checksum": 1,
    "nf_conntrack_count": COUNT, "nf_conntrack_dccp_loose": 1,
    "nf_conntrack_dccp_timeout_closereq": 64, "nf_conntrack_dccp_timeout_closing": 64,
    "nf_conntrack_dccp_timeout_open": 43200, "nf_conntrack_dccp_timeout_partopen": 480,
    "nf_conntrack_dccp_timeout_request": 240, "nf_conntrack_dccp_timeout_respond": 480,
    "nf_conntrack_dccp_timeout_timewait": 240, "nf_conntrack_events": 1,
    "nf_conntrack_expect_max": 64, "nf_conntrack_frag6_high_thresh": 4194304,
    "nf_conntrack_frag6_low_thresh": 3145728, "nf_conntrack_frag6_timeout": 60,
    "nf_conntrack_generic_timeout": 600, "nf_conntrack_gre_timeout": 30,
    "nf_conntrack_gre_timeout_stream": 180, "nf_conntrack_icmp_timeout": 30,
    "nf_conntrack_icmpv6_timeout": 30, "nf_conntrack_log_invalid": 0,
    "nf_conntrack_max": MAX, "nf_conntrack_sctp_timeout_closed": 10,
    "nf_conntrack_sctp_timeout_cookie_echoed": 3, "nf_conntrack_sctp_timeout_cookie_wait": 3,
    "nf_conntrack_sctp_timeout_established": 210,
    "nf_conntrack_sctp_timeout_heartbeat_sent": 30,
    "nf_conntrack_sctp_timeout_shutdown_ack_sent": 3,
    "nf_conntrack_sctp_timeout_shutdown_recd": 3, "nf_conntrack_sctp_timeout_shutdown_sent": 3,
    "nf_conntrack_tcp_be_liberal": 0, "nf_conntrack_tcp_ignore_invalid_rst": 0,
    "nf_conntrack_tcp_loose": 1, "nf_conntrack_tcp_max_retrans": 3,
    "nf_conntrack_tcp_timeout_close": 10, "nf_conntrack_tcp_timeout_close_wait": 60,
    "nf_conntrack_tcp_timeout_established": 432000, "nf_conntrack_tcp_timeout_fin_wait": 120,
    "nf_conntrack_tcp_timeout_last_ack": 30, "nf_conntrack_tcp_timeout_max_retrans": 300,
    "nf_conntrack_tcp_timeout_syn_recv": 60, "nf_conntrack_tcp_timeout_syn_sent": 120,
    "nf_conntrack_tcp_timeout_time_wait": 120, "nf_conntrack_tcp_timeout_unacknowledged": 300,
    "nf_conntrack_timestamp": 0, "nf_conntrack_udp_timeout": 30,
    "nf_conntrack_udp_timeout_stream": 120,
}
for k, v in sysctls.items():
    write(f"proc/sys/net/netfilter/{k}", f"{v}\n")
