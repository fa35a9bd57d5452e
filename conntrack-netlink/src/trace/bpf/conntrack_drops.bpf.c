// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// conntrack-kit drop tracer. One program on the `skb:kfree_skb`
// tracepoint (tp_btf) keeps the packets netfilter dropped
// (SKB_DROP_REASON_NETFILTER_DROP) and classifies them at the free: it
// reads this CPU's conntrack counters of the packet's namespace and
// compares them with the values it saw at the previous drop there (the
// counters a drop moved name its failure; trace/mod.rs says why each is
// counted on this CPU right before the free). Drops no counter explains
// are counted without a record (unless asked for), except those that may
// be NAT's: for them it walks the kernel stack, which names the hook and
// whether NAT's hook function dropped the packet. Records carry the
// entry, its state, the counters moved and where the packet was freed;
// user space (trace/loader.rs) names the reason.
//
// Built by conntrack-netlink's build.rs with `clang -target bpf -O2 -g`
// (feature `trace`) and loaded by libbpf (libbpf-rs), which relocates it
// against the running kernel's BTF (CO-RE): the structures below declare
// only the fields read here, with `preserve_access_index`, instead of a
// generated vmlinux.h, so the build needs no kernel BTF and no bpftool.
//
// Kernel facts relied on (v6.2+ sources, net/netfilter/nf_conntrack_core.c
// unless named; the layouts were checked against this machine's BTF):
//
// - nf_hook_slow() (net/netfilter/core.c) frees a packet whose verdict is
//   NF_DROP with kfree_skb_reason(skb, SKB_DROP_REASON_NETFILTER_DROP);
//   the tracepoint fires before skb_release_head_state() drops the skb's
//   conntrack reference, so skb->_nfct still names the entry.
// - __nf_conntrack_alloc() sets tuplehash[ORIGINAL].hnnode.pprev = NULL;
//   only __nf_conntrack_hash_insert() links it into the table, and
//   nf_ct_delete() unlinks it (pprev becomes LIST_POISON2, not NULL). So
//   pprev == NULL means "never inserted".
// - An entry that loses at __nf_conntrack_confirm() is never inserted:
//   an unresolved clash (nf_ct_resolve_clash() returned NF_DROP: counts
//   drop and insert_failed), a chain longer than max_chainlen (counts
//   chaintoolong and insert_failed, not drop), a dying entry or a failed
//   nf_ct_ext_valid_pre() (insert_failed). Since commit 2d72afb34065
//   ("netfilter: nf_conntrack: fix crash due to removal of uninitialised
//   entry", 6.16; stable 6.12.40, 6.1.147) IPS_CONFIRMED is set only
//   after insertion, so such an entry looks like any unconfirmed one (a
//   first packet the ruleset dropped); before it, IPS_CONFIRMED was set
//   first and a CONFIRMED entry that was never inserted is a loser. User
//   space tells them apart with the per-CPU counters and, for a clash,
//   by finding the winner under the same tuple with ctnetlink.
// - Table full: __nf_conntrack_alloc() found the count above
//   nf_conntrack_max and early_drop() evicted nothing; init_conntrack()
//   fails and nf_conntrack_in() counts `drop` and returns NF_DROP with no
//   entry on the skb. The tuple is then read from the packet headers.
// - An entry in the table was dropped by the ruleset: no conntrack
//   counter moves. Neither does NAT's own NF_DROP: nf_nat_masquerade_ipv4()
//   (net/netfilter/nf_nat_masquerade.c) returns NF_DROP when
//   inet_select_addr() finds no address for the output interface, before
//   nf_nat_setup_info() runs; nf_nat_inet_fn() (nf_nat_core.c) returns
//   the NAT chain's verdict, and NF_DROP after nf_ct_kill() when a
//   masqueraded flow's output interface changed. The entry is unconfirmed
//   (or dying) and its mapping for that hook not done.
// - ip_output() (net/ipv4/ip_output.c) sets skb->dev to the route's
//   device before NF_HOOK_COND(POST_ROUTING); ip_forward() runs FORWARD
//   with skb->dev the input device: `F_OUT_DEV` tells POSTROUTING from
//   FORWARD without a stack walk.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

// uapi/linux/bpf.h values (stable ABI).
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_RINGBUF 27
#define BPF_MAP_TYPE_PERCPU_HASH 5
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_ANY 0
#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_FORCE_WAKEUP 2
#define BPF_RB_AVAIL_DATA 0

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

// include/linux/skbuff.h: the low bits of skb->_nfct hold ctinfo.
#define NFCT_PTRMASK (~7UL)

// Reading kernel memory on the per-drop path. Built twice (build.rs):
//
// - DIRECT_READS (the default object): the entry, its namespace and the
//   route (and the device and socket a namespace may come from) are cast
//   with the kfunc bpf_rdonly_cast(obj__ign, btf_id__k)
//   (kernel/bpf/helpers.c) and read with plain loads. With btf_id 0 the
//   kfunc returns read-only, untrusted memory of no type (kernel commit
//   f2362a57aeff, "bpf: allow void* cast using bpf_rdonly_cast()", Linux
//   6.17): the verifier replaces the call with a register move
//   (fixup_kfunc_call(), kernel/bpf/verifier.c) and turns each load from
//   it into a BPF_PROBE_MEM load, a plain load with an exception-table
//   entry (a fault reads 0), where bpf_probe_read_kernel() is a helper
//   call each. The fields are found at their CO-RE offsets. (A typed cast,
//   Linux 6.2+, cannot name the entry's type: the kernel's BTF also has
//   `struct nf_conn___init` (net/netfilter/nf_conntrack_bpf.c), which
//   CO-RE counts as a flavour of `nf_conn`, so the type id is ambiguous:
//   libbpf's "relocation decision ambiguity".)
//   The kernel advertises the cast in its BTF (BPF_FEAT_RDONLY_CAST_TO_VOID
//   of enum bpf_features, added by the same series): the loader loads this
//   object only then.
// - Without it (the compatible object: older kernels, or when the kernel
//   refuses the first anyway): bpf_probe_read_kernel() for each field, as
//   on any 6.0+ kernel.
//
// KREAD(p, type, field): `field` of the `type` at address `p` (a number
// or a pointer).
#ifdef DIRECT_READS
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define KREAD(p, type, field)                                                   \
	(*(typeof(((type *)0)->field) *)((const char *)bpf_rdonly_cast(         \
						 (const void *)(unsigned long)(p), 0) + \
					 bpf_core_field_offset(type, field)))
#else
#define KREAD(p, type, field) BPF_CORE_READ((type *)(unsigned long)(p), field)
#endif

// The fields read, named as in the kernel (CO-RE matches by name).
// Copied whole (40 bytes: src {u3, u, l3num}, dst {u3, u, protonum, dir})
// and decoded in user space (record.rs); no field of it is relocated.
struct nf_conntrack_tuple {
	__u8 raw[40];
};

struct hlist_nulls_node {
	void *next;
	void *pprev;
} __attribute__((preserve_access_index));

struct nf_conntrack_tuple_hash {
	struct hlist_nulls_node hnnode;
	struct nf_conntrack_tuple tuple;
} __attribute__((preserve_access_index));

struct nf_conntrack_zone {
	__u16 id;
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

// include/linux/netfilter/nf_conntrack_common.h: the per-CPU counters
// ctnetlink's CTA_STATS_* report (only the three a drop moves are read).
struct ip_conntrack_stat {
	unsigned int drop;
	unsigned int insert_failed;
	unsigned int chaintoolong;
} __attribute__((preserve_access_index));

// include/net/netns/conntrack.h: `struct ip_conntrack_stat __percpu
// *stat` (this kernel's BTF carries no percpu type tag on it).
struct netns_ct {
	struct ip_conntrack_stat *stat;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
	struct netns_ct ct;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct nf_conn {
	struct nf_conntrack_zone zone;
	struct nf_conntrack_tuple_hash tuplehash[2];
	unsigned long status;
	possible_net_t ct_net;
	__u32 mark;
} __attribute__((preserve_access_index));

struct net_device {
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

struct sock_common {
	possible_net_t skc_net;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct dst_entry {
	struct net_device *dev;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	unsigned long _skb_refdst;
	unsigned long _nfct;
	__u32 mark;
	__u16 network_header;
	unsigned char *head;
} __attribute__((preserve_access_index));

enum skb_drop_reason {
	SKB_DROP_REASON_NETFILTER_DROP = 12,
};

// The record shared with user space (record.rs decodes it; keep both in
// step and bump RECORD_VERSION on any change).
#define RECORD_VERSION 2

// What the entry's state says (record.rs: `State`).
enum state {
	ST_NO_ENTRY = 1,     // no conntrack entry on the packet
	ST_UNCONFIRMED = 2,  // not confirmed: ruleset/NAT verdict, or lost at confirm
	ST_INSERT_FAILED = 3, // CONFIRMED, never inserted, not dying
	ST_DYING = 4,        // dying: never inserted, or killed after insertion
	ST_IN_TABLE = 5,     // in the table: dropped by the ruleset
};

#define F_CT (1 << 0)	    // orig, reply, zone and status are the entry's
#define F_MARK (1 << 1)	    // mark is known
#define F_PACKET (1 << 2)   // orig was parsed from the packet headers
#define F_COUNTED (1 << 3)  // `moved` is known (a baseline existed)
#define F_STACK (1 << 4)    // `stack` holds the kernel stack
#define F_OUT_DEV (1 << 5)  // skb->dev was the route's device (output path)

// `moved`: the conntrack counters of the packet's namespace, on this CPU,
// that rose since the previous NETFILTER_DROP seen there.
#define M_DROP (1 << 0)
#define M_INSERT_FAILED (1 << 1)
#define M_CHAINTOOLONG (1 << 2)

// include/uapi/linux/netfilter/nf_conntrack_common.h
#define IPS_CONFIRMED (1UL << 3)
#define IPS_SRC_NAT_DONE (1UL << 7)
#define IPS_DST_NAT_DONE (1UL << 8)
#define IPS_DYING (1UL << 9)

// include/linux/skbuff.h: SKB_DST_NOREF is the low bit of _skb_refdst.
#define SKB_DST_PTRMASK (~1UL)

#define STACK_DEPTH 12

struct ct_drop_event {
	__u8 version;
	__u8 state;
	__u8 flags;
	__u8 moved;
	__u32 cpu;
	__u64 ts_ns;	// bpf_ktime_get_ns: CLOCK_MONOTONIC
	__u64 location; // kfree_skb caller (nf_hook_slow+off)
	__u32 netns;	// net->ns.inum, as in /proc/PID/ns/net
	__u32 mark;	// entry mark (F_CT), else skb->mark
	__u32 status;	// ct->status, low 32 bits
	__u16 zone;
	__u16 pad2;
	struct nf_conntrack_tuple orig;
	struct nf_conntrack_tuple reply;
	__u64 stack[STACK_DEPTH]; // F_STACK: bpf_get_stack, innermost first
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

// 0: netns inode to keep (0: every namespace); 1: 1 to also report drops
// no conntrack failure explains (ruleset verdicts); 2: records lost
// because the ring buffer was full; 3, 4: nf_hook_slow's text [start,
// end) from /proc/kallsyms (0: unknown).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} config SEC(".maps");

// Per CPU: NETFILTER_DROP frees that no conntrack counter explains and
// that were not recorded (ruleset verdicts, with `config[1]` off), so
// that the totals stay honest without a record each; and this CPU's
// per-CPU offset once computed (0: not yet).
struct cpu_slot {
	__u64 unrecorded;
	__u64 cpu_off;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_slot);
} unrecorded SEC(".maps");

// The counters as last seen, per (CPU, namespace inode): a per-CPU hash
// keyed by the inode. `primed` is 0 in the slots of the CPUs that have
// not seen a drop in that namespace yet (an update from a program writes
// only its own CPU's slot).
struct seen_ctr {
	__u32 drop;
	__u32 insert_failed;
	__u32 chaintoolong;
	__u32 primed;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct seen_ctr);
} seen SEC(".maps");

// kernel/bpf/arraymap.c: a per-CPU array keeps each element's __percpu
// pointer in `pptrs[]`, and a lookup returns this_cpu_ptr() of it. The
// difference of the two is this CPU's per-CPU offset (__per_cpu_offset[cpu]
// in include/asm-generic/percpu.h), the same for every per-CPU allocation,
// so adding it to another __percpu pointer gives this CPU's copy. This is
// the one way a program can compute it on the project VM: a typed per-CPU
// ksym (`this_cpu_off`) and the typeless `__per_cpu_offset` are resolved by
// the kernel and libbpf through kallsyms (kernel/bpf/verifier.c,
// check_pseudo_btf_id: "ldimm64 failed to find the address for kernel
// symbol"), and this kernel, without CONFIG_KALLSYMS_ALL, lists no data
// symbols there.
struct bpf_array {
	__u32 elem_size;
	void *pptrs[];
} __attribute__((preserve_access_index));

static __always_inline __u64 config_get(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&config, &k);
	return v ? *v : 0;
}

// This CPU's per-CPU offset, from the `unrecorded` per-CPU array (above),
// computed once per CPU and kept in its slot. The map and value pointers
// become plain numbers through the stack: the verifier allows no
// arithmetic on a map pointer.
static __always_inline __u64 cpu_offset(struct cpu_slot *slot)
{
	if (slot->cpu_off)
		return slot->cpu_off;
	void *here = slot;
	void *map = &unrecorded;
	__u64 here_addr = 0, map_addr = 0, base = 0;
	if (bpf_probe_read_kernel(&here_addr, sizeof(here_addr), &here) ||
	    bpf_probe_read_kernel(&map_addr, sizeof(map_addr), &map))
		return 0;
	if (bpf_probe_read_kernel(&base, sizeof(base),
				  (void *)(map_addr + bpf_core_field_offset(struct bpf_array, pptrs))) ||
	    !base)
		return 0;
	slot->cpu_off = here_addr - base;
	return slot->cpu_off;
}

// This CPU's counters of `net` (net->ct.stat + this CPU's offset), read
// in one bpf_probe_read_kernel of the structure. Returns 0 when read.
static __always_inline int read_counters(struct net *net, struct cpu_slot *slot,
					 struct seen_ctr *c)
{
	// Through the helper (a number for the arithmetic below: the verifier
	// allows none on a pointer it typed), on this rarer path.
	struct ip_conntrack_stat *stat = BPF_CORE_READ(net, ct.stat);
	__u64 off = cpu_offset(slot);
	if (!stat || !off)
		return -1;
	__u64 buf[8] = {}; // struct ip_conntrack_stat: 52 bytes on 6.18
	__u32 size = bpf_core_type_size(struct ip_conntrack_stat);
	if (size > sizeof(buf))
		size = sizeof(buf);
	if (bpf_probe_read_kernel(buf, size, (void *)((unsigned long)stat + off)))
		return -1;
	__u32 o_drop = bpf_core_field_offset(struct ip_conntrack_stat, drop);
	__u32 o_failed = bpf_core_field_offset(struct ip_conntrack_stat, insert_failed);
	if (o_drop > sizeof(buf) - 4 || o_failed > sizeof(buf) - 4)
		return -1;
	c->drop = *(__u32 *)((char *)buf + o_drop);
	c->insert_failed = *(__u32 *)((char *)buf + o_failed);
	c->chaintoolong = 0;
	if (bpf_core_field_exists(struct ip_conntrack_stat, chaintoolong)) {
		__u32 o_chain = bpf_core_field_offset(struct ip_conntrack_stat, chaintoolong);
		if (o_chain <= sizeof(buf) - 4)
			c->chaintoolong = *(__u32 *)((char *)buf + o_chain);
	}
	c->primed = 1;
	return 0;
}

// Reads the packet's addresses and ports into a kernel-layout tuple (for
// drops with no conntrack entry attached). Offsets: see record.rs.
static __always_inline int tuple_from_packet(struct sk_buff *skb, __u8 *t)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	unsigned char *ip = head + nh;
	__u8 vihl = 0;
	__u8 proto = 0;
	__u16 ports[2] = {};
	unsigned char *l4;
	if (bpf_probe_read_kernel(&vihl, 1, ip))
		return -1;
	if ((vihl >> 4) == 4) {
		bpf_probe_read_kernel(&proto, 1, ip + 9);
		bpf_probe_read_kernel(&t[0], 4, ip + 12);  // src.u3
		bpf_probe_read_kernel(&t[20], 4, ip + 16); // dst.u3
		t[18] = 2;				   // src.l3num: AF_INET
		l4 = ip + (vihl & 0xf) * 4;
	} else if ((vihl >> 4) == 6) {
		bpf_probe_read_kernel(&proto, 1, ip + 6); // next header
		bpf_probe_read_kernel(&t[0], 16, ip + 8);
		bpf_probe_read_kernel(&t[20], 16, ip + 24);
		t[18] = 10; // AF_INET6
		l4 = ip + 40;
	} else {
		return -1;
	}
	t[38] = proto; // dst.protonum
	if (proto == 6 || proto == 17 || proto == 132 || proto == 33 || proto == 136) {
		bpf_probe_read_kernel(ports, 4, l4);
		__builtin_memcpy(&t[16], &ports[0], 2); // src.u.all
		__builtin_memcpy(&t[36], &ports[1], 2); // dst.u.all
	} else if (proto == 1 || proto == 58) {
		__u8 tc[2] = {};
		__u16 id = 0;
		bpf_probe_read_kernel(tc, 2, l4);
		bpf_probe_read_kernel(&id, 2, l4 + 4);
		__builtin_memcpy(&t[16], &id, 2); // src.u.icmp.id
		t[36] = tc[0];			 // dst.u.icmp.type
		t[37] = tc[1];			 // dst.u.icmp.code
	}
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	// Every kfree_skb runs this: anything but a netfilter drop leaves at
	// the first test.
	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP))
		return 0;

	// skb is a trusted BTF pointer (tp_btf): its fields are read directly.
	// What it points to (the entry, the device, the socket, the
	// namespace) is read with KREAD.
	unsigned long nfct = skb->_nfct & NFCT_PTRMASK;
	struct nf_conn *ct = (struct nf_conn *)nfct;
	struct net_device *dev = skb->dev;
	unsigned long net = 0;
	if (nfct)
		net = (unsigned long)KREAD(nfct, struct nf_conn, ct_net.net);
	if (!net && dev)
		net = (unsigned long)KREAD(dev, struct net_device, nd_net.net);
	if (!net) {
		struct sock *sk = skb->sk;
		if (sk)
			net = (unsigned long)KREAD(sk, struct sock, __sk_common.skc_net.net);
	}
	if (!net)
		return 0;
	// The namespace filter before anything about the entry.
	__u32 inum = KREAD(net, struct net, ns.inum);
	__u64 want = config_get(0);
	if (want && want != inum)
		return 0;

	unsigned long status = 0;
	__u8 st = ST_NO_ENTRY;
	if (nfct) {
		status = KREAD(nfct, struct nf_conn, status);
		if (!(status & IPS_CONFIRMED))
			st = ST_UNCONFIRMED;
		else if (status & IPS_DYING)
			st = ST_DYING;
		else if (!KREAD(nfct, struct nf_conn, tuplehash[0].hnnode.pprev))
			st = ST_INSERT_FAILED;
		else
			st = ST_IN_TABLE;
	}

	// Which of this CPU's counters in this namespace rose since the last
	// drop seen here. Every conntrack failure that ends in NF_DROP counts
	// on the CPU that frees the packet, right before nf_hook_slow() frees
	// it (see trace/mod.rs for the kernel paths): a drop that moved none
	// is a ruleset or NAT verdict.
	__u8 flags = 0, moved = 0;
	struct seen_ctr now = {};
	__u32 zero = 0;
	struct cpu_slot *slot = bpf_map_lookup_elem(&unrecorded, &zero);
	if (!slot)
		return 0;
	// Conntrack never frees the packets it refuses: nf_conntrack_in() and
	// __nf_conntrack_confirm() return NF_DROP and nf_hook_slow() frees
	// them (net/netfilter/core.c). A packet freed anywhere else was freed
	// by the chain that dropped it (6.18's nf_tables frees a `drop`
	// verdict in nft_do_chain(), NF_DROP_REASON): no conntrack failure,
	// and no need to read the counters.
	__u64 hs = config_get(3), he = config_get(4);
	__u64 at = (__u64)location;
	if (hs && (at < hs || at >= he)) {
		flags |= F_COUNTED;
	} else if (read_counters((struct net *)net, slot, &now) == 0) {
		struct seen_ctr *last = bpf_map_lookup_elem(&seen, &inum);
		if (last && last->primed) {
			if (now.drop != last->drop)
				moved |= M_DROP;
			if (now.insert_failed != last->insert_failed)
				moved |= M_INSERT_FAILED;
			if (now.chaintoolong != last->chaintoolong)
				moved |= M_CHAINTOOLONG;
			*last = now;
			flags |= F_COUNTED;
		} else if (last) {
			*last = now;
		} else {
			bpf_map_update_elem(&seen, &inum, &now, BPF_ANY);
		}
	}

	// A drop no conntrack failure explains may be NAT's own NF_DROP: an
	// entry whose source (destination) mapping is not done yet, dropped
	// where source (destination) NAT runs. Only those pay for a stack
	// walk, which names the hook; the rest is a ruleset verdict. Every
	// failure that drops a packet counts drop or insert_failed;
	// chaintoolong alone moved for a path that frees no packet
	// (ctnetlink's chain-cap refusals), so it does not rule NAT out.
	int nat_candidate = 0;
	if (!(moved & (M_DROP | M_INSERT_FAILED)) && ct) {
		unsigned long refdst = skb->_skb_refdst & SKB_DST_PTRMASK;
		struct net_device *out = 0;
		if (refdst)
			out = KREAD(refdst, struct dst_entry, dev);
		if (out && out == dev)
			flags |= F_OUT_DEV;
		if (st == ST_UNCONFIRMED && !(status & IPS_DST_NAT_DONE))
			nat_candidate = 1; // prerouting / output, before DNAT completed
		else if ((st == ST_UNCONFIRMED || st == ST_DYING) && (flags & F_OUT_DEV))
			nat_candidate = 1; // postrouting (ip_output sets skb->dev first)
	}
	if ((flags & F_COUNTED) && !moved && !nat_candidate && !config_get(1)) {
		slot->unrecorded += 1;
		return 0;
	}
	// Without a baseline (the first drop on this CPU in this namespace)
	// the record goes to user space, which reads the counters itself.
	if (!(flags & F_COUNTED) && st == ST_IN_TABLE && !config_get(1))
		return 0;

	struct ct_drop_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 k = 2;
		__u64 *lost = bpf_map_lookup_elem(&config, &k);
		if (lost)
			__sync_fetch_and_add(lost, 1);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->version = RECORD_VERSION;
	e->state = st;
	e->moved = moved;
	e->cpu = bpf_get_smp_processor_id();
	e->ts_ns = bpf_ktime_get_ns();
	e->location = (__u64)location;
	e->netns = inum;
	if (ct) {
		BPF_CORE_READ_INTO(&e->orig, ct, tuplehash[0].tuple);
		BPF_CORE_READ_INTO(&e->reply, ct, tuplehash[1].tuple);
		e->zone = BPF_CORE_READ(ct, zone.id);
		e->status = (__u32)status;
		flags |= F_CT;
		if (bpf_core_field_exists(ct->mark)) {
			e->mark = BPF_CORE_READ(ct, mark);
			flags |= F_MARK;
		}
	} else {
		if (tuple_from_packet(skb, (__u8 *)&e->orig) == 0)
			flags |= F_PACKET;
		e->mark = BPF_CORE_READ(skb, mark);
		flags |= F_MARK;
	}
	if (nat_candidate && bpf_get_stack(ctx, e->stack, sizeof(e->stack), 0) > 0)
		flags |= F_STACK;
	e->flags = flags;
	// Wake the reader only when a quarter of the buffer is pending: it
	// polls every 50 ms anyway, and a wake-up per drop would cost more
	// than the drop under a flood.
	__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(e, pending >= (1 << 18) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
