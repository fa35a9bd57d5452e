// The baseline of benches/bulk_delete.rs: deleting the conntrack entries
// that match any of a set of filters with vishvananda/netlink, the way
// kube-proxy does it (a list of filters, every flow of the table checked
// against them in turn until one matches, each match deleted with its
// own request).
//
// Built by the benchmark from Debian's golang-go and
// golang-github-vishvananda-netlink-dev in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o OUT vishvananda_bulk.go
//
// Usage (run inside the network namespace, e.g. with `ip netns exec`):
//
//	vishvananda_bulk delete RULES   # ConntrackDeleteFilter
//	vishvananda_bulk count RULES    # ConntrackTableList, then the same matching
//
// RULES holds one filter per line in conntrack-kit's rule syntax, of which
// this program reads the keys kube-proxy's filters use: proto, orig-src,
// orig-dst, reply-src, reply-dst (single addresses), orig-sport,
// orig-dport, reply-sport, reply-dport. It prints `matched=N` and its peak
// RSS, `vmhwm_kib=K`.
//
// The filter type follows kube-proxy's conntrackFilter
// (pkg/proxy/conntrack): protocol, then the original and reply tuples'
// addresses and ports; an unset field matches anything. Debian's library
// (1.1.0 plus 125 commits, f243826) has ConntrackDeleteFilter with one
// filter; kube-proxy's newer ConntrackDeleteFilters takes a list and runs
// the same loop, which anyOf below reproduces.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

type tuple struct {
	srcIP, dstIP     net.IP
	srcPort, dstPort uint16
}

type filter struct {
	proto             uint8
	orig, reply       tuple
	hasOrig, hasReply bool
}

func (t *tuple) match(src, dst net.IP, sport, dport uint16) bool {
	if t.srcIP != nil && !t.srcIP.Equal(src) {
		return false
	}
	if t.dstIP != nil && !t.dstIP.Equal(dst) {
		return false
	}
	if t.srcPort != 0 && t.srcPort != sport {
		return false
	}
	if t.dstPort != 0 && t.dstPort != dport {
		return false
	}
	return true
}

func (f *filter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if f.proto != 0 && f.proto != flow.Forward.Protocol {
		return false
	}
	fw, rv := &flow.Forward, &flow.Reverse
	if f.hasOrig && !f.orig.match(fw.SrcIP, fw.DstIP, fw.SrcPort, fw.DstPort) {
		return false
	}
	if f.hasReply && !f.reply.match(rv.SrcIP, rv.DstIP, rv.SrcPort, rv.DstPort) {
		return false
	}
	return true
}

// anyOf matches a flow that any of its filters matches, checking them in
// order: ConntrackDeleteFilters' loop.
type anyOf []*filter

func (a anyOf) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	for _, f := range a {
		if f.MatchConntrackFlow(flow) {
			return true
		}
	}
	return false
}

func parse(line string) (*filter, error) {
	f := &filter{}
	for _, term := range strings.Fields(line) {
		kv := strings.SplitN(term, "=", 2)
		if len(kv) != 2 {
			return nil, fmt.Errorf("%q: not key=value", term)
		}
		k, v := kv[0], kv[1]
		ip := func() (net.IP, error) {
			a := net.ParseIP(v)
			if a == nil {
				return nil, fmt.Errorf("%q: not an address", term)
			}
			return a, nil
		}
		port := func() (uint16, error) {
			p, err := strconv.ParseUint(v, 10, 16)
			return uint16(p), err
		}
		var err error
		switch k {
		case "proto":
			switch v {
			case "udp":
				f.proto = unix.IPPROTO_UDP
			case "tcp":
				f.proto = unix.IPPROTO_TCP
			default:
				return nil, fmt.Errorf("%q: only tcp and udp", term)
			}
		case "orig-src":
			f.orig.srcIP, err = ip()
			f.hasOrig = true
		case "orig-dst":
			f.orig.dstIP, err = ip()
			f.hasOrig = true
		case "reply-src":
			f.reply.srcIP, err = ip()
			f.hasReply = true
		case "reply-dst":
			f.reply.dstIP, err = ip()
			f.hasReply = true
		case "orig-sport":
			f.orig.srcPort, err = port()
			f.hasOrig = true
		case "orig-dport":
			f.orig.dstPort, err = port()
			f.hasOrig = true
		case "reply-sport":
			f.reply.srcPort, err = port()
			f.hasReply = true
		case "reply-dport":
			f.reply.dstPort, err = port()
			f.hasReply = true
		default:
			return nil, fmt.Errorf("%q: key not supported here", term)
		}
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "delete" && os.Args[1] != "count") {
		fmt.Fprintln(os.Stderr, "usage: vishvananda_bulk delete|count RULES")
		os.Exit(2)
	}
	file, err := os.Open(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var filters anyOf
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		line := strings.TrimSpace(strings.SplitN(sc.Text(), "#", 2)[0])
		if line == "" {
			continue
		}
		f, err := parse(line)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		filters = append(filters, f)
	}
	var n uint
	if os.Args[1] == "delete" {
		n, err = netlink.ConntrackDeleteFilter(netlink.ConntrackTable, unix.AF_INET, filters)
	} else {
		var flows []*netlink.ConntrackFlow
		flows, err = netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		for _, flow := range flows {
			if filters.MatchConntrackFlow(flow) {
				n++
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("matched=%d vmhwm_kib=%d\n", n, vmHWM())
}

// vmHWM is this process's peak resident set since its exec, in KiB
// (VmHWM in /proc/self/status; wait4's ru_maxrss would also count the
// spawning process's memory, which the child's image shared until exec).
func vmHWM() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return 0
}
