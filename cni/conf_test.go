package main

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/node/cnisrv"
)

func TestParseConf(t *testing.T) {
	tests := []struct {
		name, in    string
		wantNetwork string
		wantSocket  string
		wantErr     string // substring; "" = no error
	}{
		{"full", `{"cniVersion":"1.0.0","name":"sdn-proj1","type":"sdn","network":"proj1","socket":"/run/x.sock"}`, "proj1", "/run/x.sock", ""},
		{"default socket", `{"cniVersion":"1.0.0","name":"n","type":"sdn","network":"proj1"}`, "proj1", DefaultSocket, ""},
		{"runtime extras ignored", `{"cniVersion":"1.0.0","name":"n","type":"sdn","network":"p","runtimeConfig":{"x":1},"prevResult":{}}`, "p", DefaultSocket, ""},
		{"no network (checked later)", `{"cniVersion":"1.0.0","name":"n","type":"sdn"}`, "", DefaultSocket, ""},
		{"not json", `{"cniVersion":`, "", "", "not a JSON object"},
		{"network not a string", `{"name":"n","network":5}`, "", "", `field "network": want a string, got 5`},
		{"relative socket", `{"name":"n","network":"p","socket":"cni.sock"}`, "", "", `field "socket": "cni.sock" is not an absolute path`},
		{"socket path too long", `{"name":"n","network":"p","socket":"/` + strings.Repeat("s", 107) + `"}`, "", "", `field "socket": "/sss`},
		{"longest socket path", `{"name":"n","network":"p","socket":"/` + strings.Repeat("s", 106) + `"}`, "p", "/" + strings.Repeat("s", 106), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConf([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				var ce *types.Error
				if !errors.As(err, &ce) || ce.Code != types.ErrInvalidNetworkConfig {
					t.Errorf("err = %#v, want a CNI error with code %d", err, types.ErrInvalidNetworkConfig)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Network != tt.wantNetwork || c.Socket != tt.wantSocket {
				t.Errorf("got network %q socket %q, want %q %q", c.Network, c.Socket, tt.wantNetwork, tt.wantSocket)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Args
		wantErr string
	}{
		{name: "empty", in: "", want: Args{Labels: map[string]string{}}},
		{name: "sdn keys", in: "SDN_NETWORK=proj2;SDN_NAME=web1;IP=10.128.0.9",
			want: Args{Network: "proj2", Name: "web1", IP: "10.128.0.9", Labels: map[string]string{}}},
		{name: "IP with a prefix, MAC", in: "IP=10.128.0.9/23;MAC=0A:58:0A:80:00:09",
			want: Args{IP: "10.128.0.9", MAC: "0a:58:0a:80:00:09", Labels: map[string]string{}}},
		{name: "bad IP", in: "IgnoreUnknown=1;IP=10.128.0", wantErr: `IP="10.128.0": not an IP address`},
		{name: "bad MAC", in: "IgnoreUnknown=1;MAC=zz", wantErr: `MAC="zz" is not an Ethernet MAC address`},
		{name: "kubernetes", in: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1-2",
			want: Args{PodNS: "default", Pod: "web-0", Labels: map[string]string{"k8s.namespace": "default", "k8s.pod": "web-0"}}},
		{name: "nomad", in: "IgnoreUnknown=true;NOMAD_ALLOC_ID=3f2a9c1e-8b7d-4c1a-9e2f-0123456789ab;NOMAD_GROUP_NAME=cache;NOMAD_JOB_ID=redis;NOMAD_NAMESPACE=default;NOMAD_TASK_NAME=redis;NOMAD_OTHER=x",
			want: Args{Labels: map[string]string{"nomad.alloc-id": "3f2a9c1e-8b7d-4c1a-9e2f-0123456789ab", "nomad.group": "cache", "nomad.job": "redis", "nomad.namespace": "default", "nomad.task": "redis"}}},
		{name: "nomad job name wins over id", in: "NOMAD_JOB_ID=batch/periodic-1;NOMAD_JOB_NAME=batch",
			want: Args{Labels: map[string]string{"nomad.job": "batch"}}},
		{name: "plain labels", in: "app=web;team.example.com/tier=db;empty=",
			want: Args{Labels: map[string]string{"app": "web", "team.example.com/tier": "db", "empty": ""}}},
		{name: "value with equals", in: "IgnoreUnknown=1;note=a=b",
			want: Args{Labels: map[string]string{}}},
		{name: "invalid label without IgnoreUnknown", in: "app=web;bad key=1",
			wantErr: `CNI_ARGS: bad key=1: not a label`},
		{name: "invalid value without IgnoreUnknown", in: "app=web app",
			wantErr: `CNI_ARGS: app=web app: not a label (value "web app"`},
		{name: "invalid label skipped with IgnoreUnknown", in: "bad key=1;IgnoreUnknown=1;app=web",
			want: Args{Labels: map[string]string{"app": "web"}}},
		{name: "not a pair", in: "app=web;oops", wantErr: `"oops" is not KEY=VALUE`},
		{name: "bad IgnoreUnknown", in: "IgnoreUnknown=maybe", wantErr: `IgnoreUnknown="maybe"`},
		{name: "bad SDN_NETWORK", in: "SDN_NETWORK=Proj_1", wantErr: `SDN_NETWORK="Proj_1" is not a valid sdn network name`},
		{name: "bad SDN_NAME", in: "SDN_NAME=-x", wantErr: `SDN_NAME="-x" is not a valid workload name`},
		{name: "pod name too long for a label", in: "K8S_POD_NAME=" + strings.Repeat("p", 70),
			want: Args{Pod: strings.Repeat("p", 70), Labels: map[string]string{},
				Dropped: []string{`K8S_POD_NAME="` + strings.Repeat("p", 70) + `" (not a valid label value: it is 70 characters long, more than 63)`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				var ce *types.Error
				if !errors.As(err, &ce) || ce.Code != types.ErrInvalidEnvironmentVariables {
					t.Errorf("want CNI error code %d, got %#v", types.ErrInvalidEnvironmentVariables, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Network != tt.want.Network || got.Name != tt.want.Name || got.IP != tt.want.IP || got.MAC != tt.want.MAC ||
				got.PodNS != tt.want.PodNS || got.Pod != tt.want.Pod || !maps.Equal(got.Labels, tt.want.Labels) ||
				strings.Join(got.Dropped, "|") != strings.Join(tt.want.Dropped, "|") {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	conf := &NetConf{Network: "proj1", Socket: DefaultSocket}
	const cid = "0123456789abcdef0123"
	t.Run("config network and labels", func(t *testing.T) {
		args, _ := parseArgs("app=web")
		req, err := request("ADD", cid, "/run/netns/x", "eth0", conf, args)
		if err != nil {
			t.Fatal(err)
		}
		if req.Network != "proj1" || req.Name != "w-0123456789ab" || req.ContainerId != cid || req.Netns != "/run/netns/x" ||
			req.Ifname != "eth0" || req.Labels["app"] != "web" {
			t.Errorf("request = %v", req)
		}
	})
	t.Run("named ports: config, and CNI_ARGS replaces them", func(t *testing.T) {
		c, err := parseConf([]byte(`{"cniVersion":"1.0.0","name":"n","type":"sdn","network":"proj1","named_ports":{"http":"tcp/8080","dns":"udp/53","metrics":"9090"}}`))
		if err != nil {
			t.Fatal(err)
		}
		args, _ := parseArgs("app=web")
		req, err := request("ADD", cid, "/n", "eth0", c, args)
		if err != nil {
			t.Fatal(err)
		}
		// Compare fields, not fmt output: protobuf's text form is
		// deliberately unstable (it varies its spacing between builds).
		var got []string
		for _, np := range req.NamedPorts {
			got = append(got, fmt.Sprintf("%s=%s/%d", np.Name, np.Protocol, np.Port))
		}
		if g := strings.Join(got, " "); g != "dns=udp/53 http=tcp/8080 metrics=tcp/9090" {
			t.Errorf("named ports from the config: %s", g)
		}
		args, err = parseArgs("SDN_NAMED_PORTS=web:tcp/80,q:udp/5353")
		if err != nil {
			t.Fatal(err)
		}
		req, _ = request("ADD", cid, "/n", "eth0", c, args)
		if len(req.NamedPorts) != 2 || req.NamedPorts[0].Name != "web" || req.NamedPorts[1].Protocol != "udp" || req.NamedPorts[1].Port != 5353 {
			t.Errorf("named ports from CNI_ARGS: %v", req.NamedPorts)
		}
		for _, bad := range []string{"SDN_NAMED_PORTS=http", "SDN_NAMED_PORTS=http:sctp/1", "SDN_NAMED_PORTS=http:tcp/70000", "SDN_NAMED_PORTS=:80"} {
			if _, err := parseArgs(bad); err == nil {
				t.Errorf("%s accepted", bad)
			}
		}
		if _, err := parseConf([]byte(`{"network":"proj1","named_ports":{"http":"tcp/x"}}`)); err == nil || !strings.Contains(err.Error(), `"named_ports"`) {
			t.Errorf("bad named_ports in the config: %v", err)
		}
	})
	t.Run("args network wins", func(t *testing.T) {
		args, _ := parseArgs("SDN_NETWORK=proj2")
		req, err := request("ADD", cid, "/n", "eth0", conf, args)
		if err != nil || req.Network != "proj2" {
			t.Fatalf("network = %q, err %v", req.GetNetwork(), err)
		}
	})
	t.Run("no network", func(t *testing.T) {
		_, err := request("ADD", cid, "/n", "eth0", &NetConf{}, &Args{})
		if err == nil || !strings.Contains(err.Error(), `network config field "network": missing`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad network", func(t *testing.T) {
		_, err := request("CHECK", cid, "/n", "eth0", &NetConf{Network: "Proj 1"}, &Args{})
		if err == nil || !strings.Contains(err.Error(), `network config field "network": "Proj 1" is not a valid sdn network name`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("DEL needs no network", func(t *testing.T) {
		req, err := request("DEL", cid, "", "eth0", &NetConf{Network: "Proj 1"}, &Args{})
		if err != nil || req.ContainerId != cid || req.Ifname != "eth0" {
			t.Fatalf("req %v err %v", req, err)
		}
	})
}

func TestWorkloadName(t *testing.T) {
	long, long2 := strings.Repeat("a", 40), strings.Repeat("b", 40)
	tests := []struct {
		cid  string
		args Args
		want string
	}{
		{"abcdef0123456789", Args{}, "abcdef012345"},
		{"0123456789abcdef", Args{}, "w-0123456789ab"},
		{"short", Args{}, "short"},
		{"ABC_def.GH", Args{}, "abc-def-gh"},
		{"x", Args{Name: "given"}, "given"},
		{"x", Args{PodNS: "default", Pod: "web-0"}, "default-web-0"},
		{"x", Args{PodNS: "web1", Pod: "web1", PodUID: true}, "web1-web1"},
		{"x", Args{Pod: "web-0", PodUID: true}, "web-0"},
		{"x", Args{PodNS: long, Pod: long2}, long + "-" + long2[:13] + "-" + shortHash(long+"-"+long2)},
		{"3f2a9c1e-8b7d", Args{NomadAlloc: "3f2a9c1e-8b7d-4c1a", NomadGroup: "cache", NomadTask: "redis"}, "redis-3f2a9c1e"},
		{"3f2a9c1e-8b7d", Args{NomadAlloc: "3f2a9c1e-8b7d-4c1a", NomadGroup: "Cache"}, "cache-3f2a9c1e"},
		{"3f2a9c1e-8b7d", Args{NomadAlloc: "3f2a9c1e-8b7d-4c1a"}, "alloc-3f2a9c1e"},
	}
	for _, tt := range tests {
		got, perHost := workloadName(tt.cid, &tt.args)
		if got != tt.want || perHost {
			t.Errorf("workloadName(%q, %+v) = %q %v, want %q", tt.cid, tt.args, got, perHost, tt.want)
		}
		if err := model.ValidateName(got); err != nil {
			t.Errorf("workloadName(%q, %+v) = %q: not a valid name: %v", tt.cid, tt.args, got, err)
		}
	}
}

// Podman passes its container's name as K8S_POD_NAME (Podman 4:
// containers/common libnetwork/cni) or as both namespace and name (Podman
// 3): unique only on its host, so the agent appends the host.
func TestWorkloadNamePodman(t *testing.T) {
	for _, in := range []string{"IgnoreUnknown=1;K8S_POD_NAME=Web.Server_1", "IgnoreUnknown=1;K8S_POD_NAMESPACE=Web.Server_1;K8S_POD_NAME=Web.Server_1;K8S_POD_INFRA_CONTAINER_ID=abc"} {
		args, err := parseArgs(in)
		if err != nil {
			t.Fatal(err)
		}
		name, perHost := workloadName("abcdef0123456789", args)
		if name != "web-server-1" || !perHost {
			t.Errorf("%s: name %q, per host %v; want web-server-1, per host", in, name, perHost)
		}
	}
}

func TestDNSLabelAlwaysValid(t *testing.T) {
	for _, s := range []string{"", "-", "___", "9", "a-", "Ünïcode", strings.Repeat("x-", 50), strings.Repeat("9", 100)} {
		if err := model.ValidateName(dnsLabel(s)); err != nil {
			t.Errorf("dnsLabel(%q) = %q: %v", s, dnsLabel(s), err)
		}
	}
}

func TestDefaultSocketMatchesAgent(t *testing.T) {
	if DefaultSocket != cnisrv.DefaultSocket {
		t.Fatalf("plugin default socket %s, agent default %s", DefaultSocket, cnisrv.DefaultSocket)
	}
	if serversHealthService != cnisrv.ServersHealthService {
		t.Fatalf("plugin asks health of %q, the agent answers %q", serversHealthService, cnisrv.ServersHealthService)
	}
}
