package cnidrive

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The command's JSON reads back as the Result it printed, after any
// noise a shell put before it.
func TestParseResultRoundTrip(t *testing.T) {
	in := Result{Ops: 3, Window: 2 * time.Second, Latency: []time.Duration{10 * time.Millisecond, 30 * time.Millisecond, 20 * time.Millisecond}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"window_ns":2000000000`) {
		t.Errorf("JSON %s: want the window in nanoseconds", b)
	}
	r, err := ParseResult(append([]byte("Warning: noise\n"), append(b, '\n')...))
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 3 || r.Throughput() != 1.5 || r.Percentile(50) != 20 || r.Percentile(99) != 30 {
		t.Errorf("parsed %+v: ops %d, %.2f ADD/s, p50 %.1f ms, p99 %.1f ms; want 3, 1.5, 20, 30", r, r.Ops, r.Throughput(), r.Percentile(50), r.Percentile(99))
	}
}

// A result that is not one, or misses ADDs, is an error, not figures.
func TestParseResultRefuses(t *testing.T) {
	for _, out := range []string{
		"",
		"cnidrive: sdn ADD of s00001: exit status 1\n",
		`{"ops":2,"window_ns":5,"latency_ns":[1]}`,
		`{"ops":2,"window_ns":5,"latency_ns":[1,0]}`,
	} {
		if r, err := ParseResult([]byte(out)); err == nil {
			t.Errorf("ParseResult(%q) = %+v, want an error", out, r)
		}
	}
}

func TestJoin(t *testing.T) {
	a := Result{Ops: 1, Window: time.Second, Latency: []time.Duration{time.Millisecond}}
	b := Result{Ops: 2, Window: time.Second, Latency: []time.Duration{2 * time.Millisecond, 3 * time.Millisecond}}
	j := Result{}.Join(a).Join(b)
	if j.Ops != 3 || j.Window != 2*time.Second || len(j.Latency) != 3 || j.Percentile(100) != 3 {
		t.Errorf("joined %+v", j)
	}
	if len(a.Latency) != 1 {
		t.Errorf("Join changed its receiver: %+v", a)
	}
}

// Container numbers pick the bridge (1,000 containers each) and survive
// IDs' formatting.
func TestBridgeConfPerThousand(t *testing.T) {
	ids := IDs("b", 998, 4)
	if ids[0] != "b00998" || ids[3] != "b01001" {
		t.Fatalf("IDs: %v", ids)
	}
	d := Bridge("x-", "/opt/cni", "/run/netns/cnibr", "/tmp/hl")
	for _, c := range []struct {
		id, bridge, subnet string
	}{{"b00998", "cni-br0", "10.200.0.0/16"}, {"b01001", "cni-br1", "10.201.0.0/16"}, {"b12345", "cni-br12", "10.212.0.0/16"}} {
		var conf struct {
			Bridge string `json:"bridge"`
			IPAM   struct {
				Ranges  [][]map[string]string `json:"ranges"`
				DataDir string                `json:"dataDir"`
			} `json:"ipam"`
		}
		if err := json.Unmarshal(d.Conf(c.id), &conf); err != nil {
			t.Fatal(err)
		}
		if conf.Bridge != c.bridge || conf.IPAM.Ranges[0][0]["subnet"] != c.subnet || conf.IPAM.DataDir != "/tmp/hl" {
			t.Errorf("%s: bridge %s, ipam %+v; want %s, %s", c.id, conf.Bridge, conf.IPAM, c.bridge, c.subnet)
		}
	}
	if d.NS("b00001") != "x-b00001" || d.Plugin != "/opt/cni/bridge" || d.CNIPath != "/opt/cni" {
		t.Errorf("driver %+v", d)
	}
}

func TestSDNConf(t *testing.T) {
	d, err := SDN("lab-host1-", "/opt/sdn/bin/sdn", "bench", "/var/lib/sdn-lab/host1/cni.sock")
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]string
	if err := json.Unmarshal(d.Conf("s1"), &conf); err != nil {
		t.Fatal(err)
	}
	if conf["type"] != "sdn" || conf["network"] != "bench" || conf["socket"] != "/var/lib/sdn-lab/host1/cni.sock" || conf["cniVersion"] != "1.0.0" {
		t.Errorf("conf %v", conf)
	}
	if d.CNIPath != "/opt/sdn/bin" || d.ExtraArgs("s1") != "SDN_NAME=s1" {
		t.Errorf("CNI_PATH %s, CNI_ARGS %s", d.CNIPath, d.ExtraArgs("s1"))
	}
}
