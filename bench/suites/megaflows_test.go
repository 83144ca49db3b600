package suites

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sdn-dev/sdn/integration/lab"
	"github.com/sdn-dev/sdn/spec"
)

// Lines as OVS 3.1's `dpctl/dump-flows -m` prints them (shortened where
// nothing depends on it).
const (
	// Two ICMP flows from different workload ports to different
	// destinations: one mask, two subtables.
	dumpICMP1 = "ufid:1d0f352f-819d-451b-aabd-275a5bc07418, skb_priority(0/0),skb_mark(0/0),ct_state(0x21/0x31),ct_zone(0x1/0),ct_mark(0/0),ct_label(0/0),ct_tuple4(src=10.128.2.3/0.0.0.0,dst=10.128.2.5/0.0.0.0,proto=1/0,tp_src=8/0,tp_dst=0/0),recirc_id(0x3),dp_hash(0/0),in_port(sdn6fa44366315),packet_type(ns=0,id=0),eth(src=0a:58:0a:80:02:03,dst=0a:58:0a:80:02:05),eth_type(0x0800),ipv4(src=10.128.2.3/0.0.0.0,dst=10.128.2.5,proto=1/0,tos=0/0,ttl=64/0,frag=no),icmp(type=8/0,code=0/0), packets:0, bytes:0, used:never, dp:ovs, actions:set(eth(src=0a:58:0a:80:02:01)),ct(commit,zone=1),sdn064e86e5398, dp-extra-info:miniflow_bits(5,2)"
	dumpICMP2 = "ufid:1082bc40-6171-40fe-80f8-65f245d39c73, skb_priority(0/0),skb_mark(0/0),ct_state(0x21/0x31),ct_zone(0x1/0),ct_mark(0/0),ct_label(0/0),ct_tuple4(src=10.128.2.4/0.0.0.0,dst=10.128.2.6/0.0.0.0,proto=1/0,tp_src=8/0,tp_dst=0/0),recirc_id(0x4),dp_hash(0/0),in_port(sdn3795e1c5cb5),packet_type(ns=0,id=0),eth(src=0a:58:0a:80:02:04,dst=0a:58:0a:80:02:06),eth_type(0x0800),ipv4(src=10.128.2.4/0.0.0.0,dst=10.128.2.6,proto=1/0,tos=0/0,ttl=64/0,frag=no),icmp(type=8/0,code=0/0), packets:3, bytes:294, used:0.1s, dp:ovs, actions:drop"
	// The same match on a TCP packet: its wildcarded ports are the
	// slots icmp's type and code use, so still the same mask.
	dumpTCP = "ufid:2d0f352f-819d-451b-aabd-275a5bc07418, skb_priority(0/0),skb_mark(0/0),ct_state(0x22/0x31),ct_zone(0x1/0),ct_mark(0/0),ct_label(0/0),recirc_id(0x3),dp_hash(0/0),in_port(sdn6fa44366315),packet_type(ns=0,id=0),eth(src=0a:58:0a:80:02:03,dst=0a:58:0a:80:02:07),eth_type(0x0800),ipv4(src=10.128.2.3/0.0.0.0,dst=10.128.2.7,proto=6/0,tos=0/0,ttl=64/0,frag=no),tcp(src=40000/0,dst=8080/0),tcp_flags(0/0), packets:0, bytes:0, used:never, dp:ovs, actions:drop"
	// A tunnel flow: tunnel fields and masked flags make another mask.
	dumpTunnel = "ufid:bd890f4d-5b61-4cc9-87e3-41476ef3d71f, skb_priority(0/0),tunnel(tun_id=0x0,src=198.19.13.2,dst=198.19.13.1,ttl=64/0,tp_src=59558/0,tp_dst=4789/0,flags(-df-csum+key)),skb_mark(0/0),ct_state(0/0),ct_zone(0/0),ct_mark(0/0),ct_label(0/0),recirc_id(0),dp_hash(0/0),in_port(vxlan_sys_4789),packet_type(ns=0,id=0),eth(src=0a:58:0a:80:00:02/00:00:00:00:00:00,dst=0a:58:0a:80:00:01/00:00:00:00:00:00),eth_type(0x0800),ipv4(src=10.128.0.2/0.0.0.0,dst=10.128.2.5/0.0.0.0,proto=1/0,tos=0/0,ttl=64/0,frag=no),icmp(type=8/0,code=0/0), packets:5, bytes:490, used:6.184s, dp:ovs, actions:ct(zone=1),recirc(0x5)"
	// A partial mask (a remote host's /23).
	dumpRemote = "ufid:3d0f352f-819d-451b-aabd-275a5bc07418, skb_priority(0/0),skb_mark(0/0),ct_state(0x21/0x31),ct_zone(0x1/0),ct_mark(0/0),ct_label(0/0),recirc_id(0x1),dp_hash(0/0),in_port(sdn6fa44366315),packet_type(ns=0,id=0),eth(src=0a:58:0a:80:02:03/00:00:00:00:00:00,dst=0a:58:0a:80:02:01/00:00:00:00:00:00),eth_type(0x0800),ipv4(src=10.128.2.3/0.0.0.0,dst=10.128.0.4/255.255.254.0,proto=1/0,tos=0/0x3,ttl=64/0,frag=no),icmp(type=8/0,code=0/0), packets:2, bytes:196, used:2.270s, dp:ovs, actions:drop"
)

func TestParseDumpFlowsCountsMasks(t *testing.T) {
	dump := "flow-dump from the main thread:\n" + dumpICMP1 + "\n" + dumpICMP2 + "\n" + dumpTCP + "\n" + dumpTunnel + "\n" + dumpRemote + "\n"
	s := parseDumpFlows(dump)
	if s.Dumped != 5 || s.Masks != 3 || s.Subtables != 4 {
		t.Errorf("dumped %d, masks %d, subtables %d; want 5, 3, 4 (masks: %v)", s.Dumped, s.Masks, s.Subtables, s.ByMask)
	}
	m1, p1 := megaflowMask(keyOf(dumpICMP1))
	if want := "ct_state=0x31,eth.dst=*,eth.src=*,eth_type=*,in_port=*,nw_dst=*,nw_frag=*,packet_type.id=*,packet_type.ns=*,recirc_id=*"; m1 != want || p1 != "sdn6fa44366315" {
		t.Errorf("mask %q in_port %q;\nwant %q, sdn6fa44366315", m1, p1, want)
	}
	mt, _ := megaflowMask(keyOf(dumpTunnel))
	if want := "eth_type=*,in_port=*,nw_frag=*,packet_type.id=*,packet_type.ns=*,recirc_id=*,tunnel.dst=*,tunnel.flags=csum|df|key,tunnel.src=*,tunnel.tun_id=*"; mt != want {
		t.Errorf("tunnel mask %q;\nwant %q", mt, want)
	}
	mr, _ := megaflowMask(keyOf(dumpRemote))
	if want := "ct_state=0x31,eth_type=*,in_port=*,nw_dst=255.255.254.0,nw_frag=*,nw_tos=0x3,packet_type.id=*,packet_type.ns=*,recirc_id=*"; mr != want {
		t.Errorf("remote mask %q;\nwant %q", mr, want)
	}
}

func keyOf(line string) string {
	key, _ := flowKey(line)
	return key
}

func TestParseShowFlows(t *testing.T) {
	show := "netdev@ovs-netdev:\n  lookups: hit:180 missed:69 lost:0\n  flows: 67\n  port 0: ovs-netdev (tap)\n"
	if n, err := parseShowFlows(show); err != nil || n != 67 {
		t.Errorf("parseShowFlows = %d, %v; want 67", n, err)
	}
	if _, err := parseShowFlows("netdev@ovs-netdev:\n"); err == nil {
		t.Error("no flows line: want an error")
	}
}

func TestZeroMask(t *testing.T) {
	for m, want := range map[string]bool{"0": true, "0x0": true, "0.0.0.0": true, "::": true, "00:00:00:00:00:00": true,
		"*": false, "0x31": false, "255.255.254.0": false, "0x3": false, "ff:ff:ff:ff:ff:ff": false} {
		if got := zeroMask(m); got != want {
			t.Errorf("zeroMask(%q) = %v, want %v", m, got, want)
		}
	}
}

func TestBuildMix(t *testing.T) {
	var ws []*lab.Workload
	for h := 1; h <= 2; h++ {
		for _, n := range []string{"infra", "proj1", "proj2"} {
			for k := 1; k <= 3; k++ {
				ws = append(ws, &lab.Workload{Host: lab.HostName(h), Network: n, Name: fmt.Sprintf("%s-%d", n, k)})
			}
		}
	}
	mix := buildMix(ws)
	if len(mix) != 18*17 {
		t.Fatalf("%d probes, want %d (every ordered pair)", len(mix), 18*17)
	}
	kinds := map[string]int{}
	seen := map[string]bool{}
	byKey := map[[2]string]string{}
	for _, p := range mix {
		if p.from == p.to {
			t.Fatalf("probe to itself: %s", p)
		}
		kinds[p.kind]++
		where := fmt.Sprintf("%s/%v/%v", p.kind, p.from.Host == p.to.Host, p.from.Network == p.to.Network)
		seen[where] = true
		byKey[[2]string{p.from.ID(), p.to.ID()}] = p.kind + fmt.Sprint(p.port)
	}
	if kinds["tcp"] == 0 || kinds["udp"] == 0 || kinds["icmp"] == 0 {
		t.Errorf("kinds %v: want tcp, udp and icmp", kinds)
	}
	for _, k := range []string{"tcp", "udp", "icmp"} {
		for _, host := range []bool{true, false} {
			for _, net := range []bool{true, false} {
				if w := fmt.Sprintf("%s/%v/%v", k, host, net); !seen[w] {
					t.Errorf("no %s probe with same host %v, same network %v", k, host, net)
				}
			}
		}
	}
	for k, v := range byKey {
		if back := byKey[[2]string{k[1], k[0]}]; back != v {
			t.Errorf("%s -> %s is %s but the way back is %s", k[0], k[1], v, back)
		}
	}
}

func TestMemLabHCLDecodes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "memory.hcl"), []byte(memLabHCL()), 0o644); err != nil {
		t.Fatal(err)
	}
	doc, diags := spec.LoadPaths([]string{dir})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if len(doc.Networks) != memLabNetworks || doc.Cluster.GetHostPrefix() != 18 {
		t.Errorf("%d networks, host prefix %d; want %d and 18", len(doc.Networks), doc.Cluster.GetHostPrefix(), memLabNetworks)
	}
}

func TestMemLabPlacementFitsBlocks(t *testing.T) {
	per := map[int]int{}
	for i := range 10000 {
		h, n := memLabPlacement(i)
		if h < 1 || h > memLabHosts || n < 0 || n >= memLabNetworks {
			t.Fatalf("memLabPlacement(%d) = %d, %d", i, h, n)
		}
		per[h]++
	}
	// A /18 holds 2^14 - 3 workloads (network, gateway, broadcast).
	for h, c := range per {
		if c > 1<<14-3 {
			t.Errorf("host%d gets %d workloads, more than a /18 holds", h, c)
		}
	}
}
