package ovs

import (
	"fmt"
	"strings"
	"testing"
)

func TestCookie(t *testing.T) {
	c := MakeCookie(0x0102, 0xdeadbeef)
	if c != 0x5d4e0102deadbeef || CookieTag(c) != AppTag || CookieGeneration(c) != 0x0102 || CookieCategory(c) != 0xdeadbeef {
		t.Errorf("MakeCookie = %#x", c)
	}
	if c&TagMask != TagCookie() {
		t.Errorf("TagCookie does not select %#x", c)
	}
}

// Lines as ovs-ofctl 3.1 dump-flows --no-stats prints them.
func TestParseDumpLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Flow
	}{
		{"actions=drop", Flow{Priority: 32768, Actions: "drop"}},
		{"table=1, actions=drop", Flow{Table: 1, Priority: 32768, Actions: "drop"}},
		{"cookie=0x1, table=2, priority=0 actions=drop", Flow{Cookie: 1, Table: 2, Actions: "drop"}},
		{"cookie=0x5d4e000100000001, in_port=3,dl_src=aa:bb:cc:dd:ee:ff actions=drop",
			Flow{Cookie: 0x5d4e000100000001, Priority: 32768, Match: "in_port=3,dl_src=aa:bb:cc:dd:ee:ff", Actions: "drop"}},
		{"cookie=0x1, table=3, idle_timeout=100, send_flow_rem importance=3, priority=5,ip actions=drop",
			Flow{Cookie: 1, Table: 3, Priority: 5, Match: "ip", Actions: "drop"}},
		{"cookie=0x0, duration=0.020s, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=100,ip,in_port=3,nw_src=10.128.0.2 actions=set_field:0x5->reg0,resubmit(,10)",
			Flow{Priority: 100, Match: "ip,in_port=3,nw_src=10.128.0.2", Actions: "set_field:0x5->reg0,resubmit(,10)"}},
		{"cookie=0xffffffffffffffff, table=254, priority=65535,tcp,tp_dst=0x1000/0xf000 actions=note:01.02.00.00.00.00",
			Flow{Cookie: ^uint64(0), Table: 254, Priority: 65535, Match: "tcp,tp_dst=0x1000/0xf000", Actions: "note:01.02.00.00.00.00"}},
	} {
		got, err := parseDumpLine(tc.line)
		if err != nil || got != tc.want {
			t.Errorf("parseDumpLine(%q) =\n  %+v, %v\nwant\n  %+v", tc.line, got, err, tc.want)
		}
	}
	if _, err := parseDumpLine("priority=1,ip"); err == nil {
		t.Error("a line without actions parsed")
	}
}

// goldenFlows are added as written and must dump as canonical.
var goldenFlows = []struct {
	in                       Flow
	canonMatch, canonActions string
}{
	{Flow{Table: 0, Priority: 100, Match: "ip,in_port=3,nw_src=10.128.0.2", Actions: "load:0x5->NXM_NX_REG0[],resubmit(,10)"},
		"ip,in_port=3,nw_src=10.128.0.2", "set_field:0x5->reg0,resubmit(,10)"},
	{Flow{Table: 10, Priority: 200, Match: "tcp,reg0=0x5,tp_dst=80", Actions: "ct(commit,table=20)"},
		"tcp,reg0=0x5,tp_dst=80", "ct(commit,table=20)"},
	{Flow{Table: 10, Priority: 50, Match: "ip,nw_dst=172.30.0.1", Actions: "group:7"},
		"ip,nw_dst=172.30.0.1", "group:7"},
	{Flow{Table: 20, Priority: 10, Match: "ct_state=+trk+new,ip", Actions: "ct(commit,zone=5,nat(dst=10.128.0.5:8080)),resubmit(,30)"},
		"ct_state=+new+trk,ip", "ct(commit,zone=5,nat(dst=10.128.0.5:8080)),resubmit(,30)"},
	{Flow{Table: 30, Priority: 100, Match: "ip,nw_src=10.1.2.3/8", Actions: "conjunction(1,1/2)"},
		"ip,nw_src=10.0.0.0/8", "conjunction(1,1/2)"},
	{Flow{Table: 30, Priority: 100, Match: "tcp,tp_dst=443", Actions: "conjunction(1,2/2)"},
		"tcp,tp_dst=443", "conjunction(1,2/2)"},
	{Flow{Table: 30, Priority: 100, Match: "conj_id=1,ip", Actions: "resubmit(,40)"},
		"conj_id=1,ip", "resubmit(,40)"},
	{Flow{Table: 40, Priority: 5, Match: "arp,arp_tpa=10.128.0.1,arp_op=1", Actions: "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:0a:58:0a:80:00:01,load:0x2->NXM_OF_ARP_OP[],IN_PORT"},
		"arp,arp_tpa=10.128.0.1,arp_op=1", "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:0a:58:0a:80:00:01->eth_src,set_field:2->arp_op,IN_PORT"},
	{Flow{Table: 40, Priority: 6, Match: "ip", Actions: "set_field:10.0.0.1->tun_dst,load:0x10->NXM_NX_TUN_ID[0..31],output:9"},
		"ip", "set_field:10.0.0.1->tun_dst,set_field:0x10/0xffffffff->tun_id,output:9"},
	{Flow{Table: 50, Priority: 1, Match: "dl_type=0x0800,nw_proto=6,reg1=0x5/0xff", Actions: "NORMAL"},
		"tcp,reg1=0x5/0xff", "NORMAL"},
	{Flow{Table: 50, Priority: 0, Match: "", Actions: ""},
		"", "drop"},
	{Flow{Table: 60, Priority: 32768, Match: "ip", Actions: "ct(commit,exec(load:0x1->NXM_NX_CT_MARK[])),dec_ttl,controller"},
		"ip", "ct(commit,exec(set_field:0x1->ct_mark)),dec_ttl,CONTROLLER:65535"},
}

func TestDumpFlowsCanonical(t *testing.T) {
	t.Parallel()
	inst := startTestInstance(t, "")
	ctx := testCtx(t)
	mustBridge(t, inst, "br-dump")
	if _, err := inst.Ofctl(ctx, "-O", "OpenFlow15", "add-group", "br-dump", "group_id=7,type=select,bucket=actions=drop"); err != nil {
		t.Fatal(err)
	}
	var file strings.Builder
	for k, g := range goldenFlows {
		f := g.in
		f.Cookie = MakeCookie(1, uint32(k))
		file.WriteString(f.String() + "\n")
	}
	if _, err := inst.run(ctx, strings.NewReader(file.String()), "ovs-ofctl", "-O", "OpenFlow15", "add-flows", "br-dump", "-"); err != nil {
		t.Fatal(err)
	}
	// A flow that is not ours, to be filtered out by cookie.
	if _, err := inst.Ofctl(ctx, "-O", "OpenFlow15", "add-flow", "br-dump", "cookie=0x1234,table=9,actions=drop"); err != nil {
		t.Fatal(err)
	}
	flows, err := inst.DumpFlows(ctx, "br-dump", TagCookie(), TagMask)
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != len(goldenFlows) {
		t.Fatalf("DumpFlows returned %d flows, want %d: %v", len(flows), len(goldenFlows), flows)
	}
	byCat := map[uint32]Flow{}
	for _, f := range flows {
		byCat[CookieCategory(f.Cookie)] = f
	}
	for k, g := range goldenFlows {
		f := byCat[uint32(k)]
		if f.Match != g.canonMatch || f.Actions != g.canonActions {
			t.Errorf("%s\n dumped as   %q actions %q\n golden      %q actions %q", g.in, f.Match, f.Actions, g.canonMatch, g.canonActions)
		}
	}
	// What ovs-ofctl parse-flows predicts is what the switch holds.
	var desired []Flow
	for _, g := range goldenFlows {
		desired = append(desired, g.in)
	}
	canon, err := inst.canonicalize(ctx, desired, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k := range goldenFlows {
		if want := byCat[uint32(k)]; canon[k].key != want.key() || canon[k].actions != want.Actions {
			t.Errorf("parse-flows predicts %+v, switch holds %+v", canon[k], want)
		}
	}
	all, err := inst.DumpFlows(ctx, "br-dump", 0, 0)
	if err != nil || len(all) != len(goldenFlows)+1 {
		t.Errorf("DumpFlows(all) = %d flows, %v; want %d", len(all), err, len(goldenFlows)+1)
	}
}

// TestFlowString: a flow's ovs-ofctl line, with and without a cookie and
// a match (the cookie in hex as OVS prints it).
func TestFlowString(t *testing.T) {
	for _, tc := range []struct {
		f    Flow
		want string
	}{
		{Flow{Table: 3, Priority: 100, Match: "ip,nw_dst=10.1.0.0/16", Actions: "drop"}, "table=3,priority=100,ip,nw_dst=10.1.0.0/16,actions=drop"},
		{Flow{Table: 0, Priority: 0, Actions: "goto_table:10"}, "table=0,priority=0,actions=goto_table:10"},
		{Flow{Table: 255, Priority: 65535, Match: "arp", Actions: "NORMAL", Cookie: 0xabc0000000000012}, "cookie=0xabc0000000000012,table=255,priority=65535,arp,actions=NORMAL"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.f, got, tc.want)
		}
		if got := fmt.Sprintf("%#x", tc.f.Cookie); tc.f.Cookie != 0 && !strings.HasPrefix(tc.want, "cookie="+got+",") {
			t.Errorf("cookie %s is not fmt's %%#x", got)
		}
	}
}
