package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func hclOrigin() *sdnv1.Origin {
	return &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL, File: "prod.hcl"}
}

func testNetworks() []*sdnv1.Network {
	return []*sdnv1.Network{
		{Name: "proj2", Vnid: 4242, Labels: map[string]string{"tier": "web", "env": "prod"}, Origin: hclOrigin()},
		{Name: "admin", Admin: true, Vnid: 0, Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_API}},
		{Name: "proj1", Vnid: 17, Labels: map[string]string{"env": "dev"}, Origin: hclOrigin()},
	}
}

func testWorkloads() []*sdnv1.Workload {
	return []*sdnv1.Workload{
		{Network: "proj1", Name: "web1", Node: "host2", Ip: "10.128.2.5", Mac: "0a:58:0a:80:02:05",
			Labels: map[string]string{"app": "web"}, Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI}},
		{Network: "proj1", Name: "db1", Node: "host9", Labels: map[string]string{"app": "db", "role": "primary"},
			Origin: hclOrigin(), Pending: "node host9 has not registered"},
		{Network: "admin", Name: "mon", Node: "host1", Ip: "10.128.0.9", Mac: "0a:58:0a:80:00:09",
			Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_AGENT}},
	}
}

// tableNow is "now" for the tables that show ages.
var tableNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestTables(t *testing.T) {
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  string
	}{
		{
			name: "nodes",
			write: func(b *bytes.Buffer) error {
				return writeNodesTable(b, []*sdnv1.Node{
					{Name: "host2", UnderlayIp: "198.18.0.2", UnderlayMtu: 1500, Subnet: "10.128.2.0/23", GatewayIp: "10.128.2.1",
						DownSinceUnixMs: tableNow.Add(-3*time.Minute - 12*time.Second).UnixMilli(), LastHeartbeatUnixMs: 0},
					{Name: "host1", UnderlayIp: "198.18.0.1", UnderlayMtu: 9000, Subnet: "10.128.0.0/23", GatewayIp: "10.128.0.1",
						LastHeartbeatUnixMs: tableNow.Add(-2 * time.Second).UnixMilli()},
					{Name: "host3", UnderlayIp: "198.18.0.3", UnderlayMtu: 1500, Subnet: "10.128.4.0/23", GatewayIp: "10.128.4.1",
						Drained: true, LastHeartbeatUnixMs: tableNow.Add(-4 * time.Second).UnixMilli()},
					{Name: "host4", UnderlayIp: "198.18.0.4", UnderlayMtu: 1500, Subnet: "10.128.6.0/23", GatewayIp: "10.128.6.1",
						Drained: true, DownSinceUnixMs: tableNow.Add(-26 * time.Hour).UnixMilli()},
				}, true, tableNow)
			},
			want: `NAME    UNDERLAY-IP   MTU    SUBNET          GATEWAY      STATUS                     HEARTBEAT
host1   198.18.0.1    9000   10.128.0.0/23   10.128.0.1   ready                      2s ago
host2   198.18.0.2    1500   10.128.2.0/23   10.128.2.1   down for 3m12s             never
host3   198.18.0.3    1500   10.128.4.0/23   10.128.4.1   drained                    4s ago
host4   198.18.0.4    1500   10.128.6.0/23   10.128.6.1   down for 26h00m, drained   never
`,
		},
		{
			name: "nodes, stale read (no heartbeats)",
			write: func(b *bytes.Buffer) error {
				return writeNodesTable(b, []*sdnv1.Node{{Name: "host1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500}}, false, tableNow)
			},
			want: `NAME    UNDERLAY-IP   MTU    SUBNET   GATEWAY   STATUS   HEARTBEAT
host1   198.18.0.1    1500   -        -         ready    -
`,
		},
		{
			name:  "no nodes",
			write: func(b *bytes.Buffer) error { return writeNodesTable(b, nil, true, tableNow) },
			want:  "NAME   UNDERLAY-IP   MTU   SUBNET   GATEWAY   STATUS   HEARTBEAT\n",
		},
		{
			name:  "networks",
			write: func(b *bytes.Buffer) error { return writeNetworksTable(b, testNetworks()) },
			want: `NAME    VNID   ADMIN   LABELS              ORIGIN
admin   0      yes     -                   api
proj1   17     no      env=dev             hcl
proj2   4242   no      env=prod,tier=web   hcl
`,
		},
		{
			name:  "no networks",
			write: func(b *bytes.Buffer) error { return writeNetworksTable(b, []*sdnv1.Network{}) },
			want:  "NAME   VNID   ADMIN   LABELS   ORIGIN\n",
		},
		{
			name:  "workloads",
			write: func(b *bytes.Buffer) error { return writeWorkloadsTable(b, testWorkloads(), false) },
			want: `NETWORK   NAME   NODE    IP           MAC                 LABELS                ORIGIN   STATUS
admin     mon    host1   10.128.0.9   0a:58:0a:80:00:09   -                     agent    ready
proj1     db1    host9   -            -                   app=db,role=primary   hcl      node host9 has not registered
proj1     web1   host2   10.128.2.5   0a:58:0a:80:02:05   app=web               cni      ready
`,
		},
		{
			name:  "no workloads",
			write: func(b *bytes.Buffer) error { return writeWorkloadsTable(b, nil, false) },
			want:  "NETWORK   NAME   NODE   IP   MAC   LABELS   ORIGIN   STATUS\n",
		},
		{
			name: "cluster",
			write: func(b *bytes.Buffer) error {
				return writeClusterTable(b, &sdnv1.ClusterSettings{
					Cidr: "10.128.0.0/14", HostPrefix: 23, ServiceCidr: "172.30.0.0/16", VxlanPort: 4789,
					Isolation: sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT, EffectiveMtu: 1450,
					Origin: hclOrigin(), ModRevision: 7,
				}, 12)
			},
			want: `cidr:                 10.128.0.0/14
host-prefix:          23
service-cidr:         172.30.0.0/16
vxlan-port:           4789
isolation:            multitenant
mtu:                  auto
effective-mtu:        1450
node-release-after:   24h
origin:               hcl (prod.hcl)
revision:             7
`,
		},
		{
			name:  "no cluster settings",
			write: func(b *bytes.Buffer) error { return writeClusterTable(b, nil, 3) },
			want:  "No cluster settings yet (revision 3); declare a cluster block and apply it.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestFormatLabels(t *testing.T) {
	tests := []struct {
		in   map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{}, ""},
		{map[string]string{"env": "prod"}, "env=prod"},
		{map[string]string{"tier": "web", "env": "prod", "app.example.com/team": "net"}, "app.example.com/team=net,env=prod,tier=web"},
		{map[string]string{"empty": ""}, "empty="},
	}
	for _, tt := range tests {
		for range 5 { // map order varies between iterations; the output must not
			if got := formatLabels(tt.in); got != tt.want {
				t.Errorf("formatLabels(%v) = %q, want %q", tt.in, got, tt.want)
			}
		}
	}
}

func TestFormatOrigin(t *testing.T) {
	tests := []struct {
		in   *sdnv1.Origin
		want string
	}{
		{nil, ""},
		{&sdnv1.Origin{}, ""},
		{&sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL}, "hcl"},
		{&sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI}, "cni"},
		{&sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_AGENT}, "agent"},
		{&sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_API}, "api"},
		{&sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_ATTACH}, "attach"},
		{&sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_DOCKER}, "docker"},
	}
	for _, tt := range tests {
		if got := formatOrigin(tt.in); got != tt.want {
			t.Errorf("formatOrigin(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestJSON(t *testing.T) {
	t.Run("networks", func(t *testing.T) {
		first, err := marshalJSONList(sortedNetworks(testNetworks()))
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			again, err := marshalJSONList(sortedNetworks(testNetworks()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, again) {
				t.Fatalf("JSON output changed between runs:\n%s\nthen:\n%s", first, again)
			}
		}
		var got []map[string]any
		if err := json.Unmarshal(first, &got); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, first)
		}
		if len(got) != 3 || got[0]["name"] != "admin" || got[2]["name"] != "proj2" {
			t.Errorf("want the three networks sorted by name, got:\n%s", first)
		}
		// EmitDefaultValues: the admin network's VNID 0 is there, not absent.
		if v, ok := got[0]["vnid"]; !ok || v != float64(0) {
			t.Errorf("admin network vnid = %v (present %v), want 0:\n%s", v, ok, first)
		}
		want := `[
  {
    "name": "admin",
    "labels": {},
    "admin": true,
    "vnid": 0,
    "origin": {
      "kind": "ORIGIN_KIND_API",
      "file": "",
      "containerId": "",
      "ifname": "",
      "netns": ""
    },
    "createRevision": "0",
    "modRevision": "0",
    "noSnat": false
  },`
		if !strings.HasPrefix(string(first), want) {
			t.Errorf("JSON layout:\n%s\nwant it to start with:\n%s", first, want)
		}
		if !strings.Contains(string(first), `"labels": {
      "env": "prod",
      "tier": "web"
    }`) {
			t.Errorf("labels not rendered with sorted keys:\n%s", first)
		}
	})
	t.Run("empty list", func(t *testing.T) {
		for _, b := range [][]byte{
			must(marshalJSONList([]*sdnv1.Workload(nil))),
			must(marshalJSONList([]*sdnv1.Node{})),
		} {
			if string(b) != "[]\n" {
				t.Errorf("empty list = %q, want %q", b, "[]\n")
			}
		}
	})
	t.Run("cluster object", func(t *testing.T) {
		b := must(marshalJSON(&sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", HostPrefix: 23}))
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("not a JSON object: %v\n%s", err, b)
		}
		if got["cidr"] != "10.128.0.0/14" || got["hostPrefix"] != float64(23) {
			t.Errorf("cluster JSON:\n%s", b)
		}
		if _, ok := got["ranges"]; ok {
			t.Errorf("cluster JSON shows the input-only ranges:\n%s", b)
		}
		if s := string(must(marshalJSON((*sdnv1.ClusterSettings)(nil)))); s != "null\n" {
			t.Errorf("nil cluster = %q, want null", s)
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestWriteStatus(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	resp := &sdnv1.StatusResponse{
		Revision:          14,
		CompactedRevision: 3,
		ClusterId:         "W3KQ2ZKDOTXQ5HHRSWNJ5DQCXQ",
		Nodes: []*sdnv1.NodeStatus{
			{Name: "host2", State: sdnv1.NodeState_NODE_STATE_DOWN, RealizedRevision: 11,
				LastReportUnixMs: now.Add(-5*time.Minute - 3*time.Second).UnixMilli(), Error: "ovs-vswitchd not running",
				DownSinceUnixMs: now.Add(-4*time.Minute - 30*time.Second).UnixMilli()},
			{Name: "host1", State: sdnv1.NodeState_NODE_STATE_READY, RealizedRevision: 14,
				LastReportUnixMs: now.Add(-2 * time.Second).UnixMilli(), LastHeartbeatUnixMs: now.Add(-1 * time.Second).UnixMilli()},
			{Name: "host3", State: sdnv1.NodeState_NODE_STATE_DRAINED, Drained: true},
		},
	}
	var b bytes.Buffer
	if err := writeStatus(&b, resp, now); err != nil {
		t.Fatal(err)
	}
	want := `cluster W3KQ2ZKDOTXQ5HHRSWNJ5DQCXQ
revision 14 (watch history from 3)
NODE    STATE            REALIZED   LAG   LAST-REPORT   HEARTBEAT   ERROR
host1   ready            14         0     2s ago        1s ago      -
host2   down for 4m30s   11         3     5m03s ago     never       ovs-vswitchd not running
host3   drained          0          14    never         never       -
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestWriteStateCheck: one line when the servers agree (and which were
// not compared), a loud block with each server and what to do when one
// differs.
func TestWriteStateCheck(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h1, h2 := bytes.Repeat([]byte{0x3f}, 32), bytes.Repeat([]byte{0x9c}, 32)
	rep := &sdnv1.StateCheckReport{CheckedUnixMs: now.Add(-2 * time.Minute).UnixMilli(), LeaderId: "s1", Revision: 14, AppliedIndex: 31, LeaderHash: h1, Records: 5003,
		Servers: []*sdnv1.ServerStateCheck{
			{Id: "s2", Result: sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES, Revision: 14, Hash: h1},
			{Id: "s3", Result: sdnv1.StateCheckResult_STATE_CHECK_RESULT_NOT_COMPARED, Detail: "did not reach revision 14 within 10s"},
		}}
	var b bytes.Buffer
	writeStateCheck(&b, rep, now)
	if want := "state check 2m00s ago at revision 14 (raft index 31): 2 of 3 servers agree (hash 3f3f3f3f3f3f3f3f, 5003 records); not compared: s3 (did not reach revision 14 within 10s)\n"; b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	rep.Servers[1] = &sdnv1.ServerStateCheck{Id: "s3", Result: sdnv1.StateCheckResult_STATE_CHECK_RESULT_DIFFERS, Revision: 14, Hash: h2, Detail: "its state at revision 14 differs from the leader's"}
	rep.Advice = "s3 holds a state the leader s1 and 1 other server(s) do not; rebuild it"
	b.Reset()
	writeStateCheck(&b, rep, now)
	want := `STATE CHECK FAILED 2m00s ago at revision 14 (raft index 31): the servers do not all hold the same state
  SERVER   STATE     HASH               DETAIL
  s1       leader    3f3f3f3f3f3f3f3f   -
  s2       agrees    3f3f3f3f3f3f3f3f   -
  s3       DIFFERS   9c9c9c9c9c9c9c9c   its state at revision 14 differs from the leader's
  what to do: s3 holds a state the leader s1 and 1 other server(s) do not; rebuild it
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	writeStateCheck(&b, nil, now)
	if b.Len() != 0 {
		t.Errorf("no comparison yet printed %q", b.String())
	}
}

func TestFormatAgo(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{0, "0s ago"},
		{59 * time.Second, "59s ago"},
		{61 * time.Second, "1m01s ago"},
		{3*time.Hour + 4*time.Minute, "3h04m ago"},
		{72 * time.Hour, "3d ago"},
		{-time.Second, "just now"},
	}
	for _, tt := range tests {
		if got := formatAgo(now.Add(-tt.ago).UnixMilli(), now); got != tt.want {
			t.Errorf("formatAgo(-%s) = %q, want %q", tt.ago, got, tt.want)
		}
	}
	if got := formatAgo(0, now); got != "never" {
		t.Errorf("formatAgo(0) = %q, want never", got)
	}
}

func TestWriteRevoked(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	if err := writeRevoked(&b, nil, now); err != nil || b.String() != "no certificate is revoked\n" {
		t.Fatalf("none: %q %v", b.String(), err)
	}
	b.Reset()
	certs := []*sdnv1.RevokedCertificate{
		{Serial: "a1", Identity: "client/alice", Reason: "laptop stolen", RevokedBy: "client/admin",
			RevokedUnixMs: now.Add(-time.Hour).UnixMilli(), NotAfterUnixMs: now.AddDate(1, 0, 0).UnixMilli()},
		{Serial: "b2", RevokedBy: "client/admin", RevokedUnixMs: now.Add(-48 * time.Hour).UnixMilli(), NotAfterUnixMs: now.Add(-time.Hour).UnixMilli()},
	}
	if err := writeRevoked(&b, certs, now); err != nil {
		t.Fatal(err)
	}
	want := `SERIAL   IDENTITY       REVOKED                BY             EXPIRES      REASON
a1       client/alice   2026-12-05T11:00:00Z   client/admin   2027-12-05   laptop stolen
b2       -              2026-12-03T12:00:00Z   client/admin   expired      -
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteDiskAlarms(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	if err := writeDiskAlarms(&b, nil, now); err != nil || b.Len() != 0 {
		t.Fatalf("no alarms: %q %v", b.String(), err)
	}
	servers := []*sdnv1.Server{{Id: "s2", DiskAlarms: []*sdnv1.DiskAlarm{{
		Problem:     "no space left on device /dev/sdb1 mounted at /var (ext4, 12 KiB of 20 GiB free) for /var/lib/sdn/state.db",
		SinceUnixMs: now.Add(-42 * time.Second).UnixMilli()}}}}
	if err := writeDiskAlarms(&b, servers, now); err != nil {
		t.Fatal(err)
	}
	want := `SERVER   DISK-ALARM                                                                                                  SINCE
s2       no space left on device /dev/sdb1 mounted at /var (ext4, 12 KiB of 20 GiB free) for /var/lib/sdn/state.db   42s ago
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
