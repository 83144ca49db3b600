package main

import (
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/cluster/api"
	"github.com/sdn-dev/sdn/node/agent"
)

func testEnv(files map[string]string) env {
	return env{
		hostname: "Host-A",
		usageOut: io.Discard,
		readFile: func(p string) ([]byte, error) {
			if s, ok := files[p]; ok {
				return []byte(s), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		},
	}
}

// want lists the fields a case checks; the rest are compared to defaults.
func TestParseFlags(t *testing.T) {
	cwd, err := os.Getwd() // relative TLS paths are made absolute
	if err != nil {
		t.Fatal(err)
	}
	base := options{dataDir: defaultDataDir, listen: []string{defaultListen}, nodeName: "host-a",
		ovsRunDir: defaultOVSRunDir, cniSocket: defaultCNISocket, logLevel: slog.LevelInfo,
		nodeDownAfter: cluster.DefaultNodeDownAfter, heartbeatInterval: agent.DefaultHeartbeatInterval, stateCheckInterval: api.DefaultStateCheckInterval}
	agentBase := base
	agentBase.agent, agentBase.underlayIface, agentBase.datapath, agentBase.ovsDBDir = true, "eth0", "netdev", defaultOVSDBDir
	tests := []struct {
		name   string
		args   []string
		files  map[string]string
		kmod   bool
		change func(o *options)
	}{
		{name: "dev", args: []string{"--dev"}, change: func(o *options) { o.dev, o.server, o.bootstrap, o.raftAddr = true, true, true, defaultListen }},
		{name: "dev with its own raft address (tests, bench)", args: []string{"--dev", "--raft-addr", "127.0.0.1:9"},
			change: func(o *options) { o.dev, o.server, o.bootstrap, o.raftAddr = true, true, true, "127.0.0.1:9" }},
		{name: "static peers", args: []string{"--server", "--node-name", "s2", "--listen", "10.0.0.2:7420", "--peers", "s1=10.0.0.1:7420,s2=10.0.0.2:7420", "--peers=s3=10.0.0.3:7420", "--tls-ca=/tls/ca.crt", "--tls-cert=/tls/server-s2.crt", "--tls-key=/tls/server-s2.key"},
			change: func(o *options) {
				o.tlsCA, o.tlsCert, o.tlsKey = "/tls/ca.crt", "/tls/server-s2.crt", "/tls/server-s2.key"
				o.server, o.nodeName, o.listen, o.raftAddr = true, "s2", []string{"10.0.0.2:7420"}, "10.0.0.2:7420"
				o.peers = []cluster.Peer{{ID: "s1", Address: "10.0.0.1:7420"}, {ID: "s2", Address: "10.0.0.2:7420"}, {ID: "s3", Address: "10.0.0.3:7420"}}
			}},
		{name: "bootstrap-expect with join, wildcard listen and advertise", args: []string{"--server", "--listen", "0.0.0.0:7420", "--raft-advertise", "10.0.0.1:7420", "--bootstrap-expect", "3", "--join", "10.0.0.2:7420,10.0.0.3:7420", "--insecure-plaintext"},
			change: func(o *options) {
				o.insecurePlaintext = true
				o.server, o.listen, o.raftAddr, o.advertise = true, []string{"0.0.0.0:7420"}, "0.0.0.0:7420", "10.0.0.1:7420"
				o.bootstrapExpect, o.join = 3, []string{"10.0.0.2:7420", "10.0.0.3:7420"}
			}},
		{name: "bootstrap-expect from the config file as a number", args: []string{"--config=/s.hcl"},
			files: map[string]string{"/s.hcl": "server = true\nbootstrap-expect = 3\njoin = [\"10.0.0.2:7420\"]\ntls_ca = \"/tls/ca.crt\"\ntls-cert = \"/tls/s.crt\"\ntls-key = \"/tls/s.key\"\n"},
			change: func(o *options) {
				o.tlsCA, o.tlsCert, o.tlsKey = "/tls/ca.crt", "/tls/s.crt", "/tls/s.key"
				o.config, o.server, o.raftAddr, o.bootstrapExpect, o.join = "/s.hcl", true, defaultListen, 3, []string{"10.0.0.2:7420"}
			}},
		{name: "server with listeners, comma and repeat", args: []string{"--server", "--listen", "unix:/run/sdn/api.sock,10.0.0.1:7420", "--listen=[::1]:7420", "--node-name", "s1", "--log-level", "debug", "--insecure-plaintext"},
			change: func(o *options) {
				o.insecurePlaintext = true
				o.server, o.listen, o.nodeName, o.logLevel = true, []string{"unix:/run/sdn/api.sock", "10.0.0.1:7420", "[::1]:7420"}, "s1", slog.LevelDebug
				o.raftAddr = "10.0.0.1:7420"
			}},
		{name: "dev agent: servers default to the first listener", args: []string{"--dev", "--agent", "--underlay-iface", "eth0", "--listen", "0.0.0.0:7000"},
			change: func(o *options) {
				*o = agentBase
				o.dev, o.server, o.bootstrap, o.listen, o.servers = true, true, true, []string{"0.0.0.0:7000"}, []string{"127.0.0.1:7000"}
				o.raftAddr = "0.0.0.0:7000"
			}},
		{name: "server+agent on a unix API socket (the lab)", args: []string{"--server", "--bootstrap", "--agent", "--listen=unix:/lab/api.sock,198.18.7.1:7420",
			"--underlay-iface=ul0", "--ovs-rundir=/lab/ovs", "--datapath=netdev", "--cni-socket=/lab/cni.sock", "--insecure-plaintext"},
			change: func(o *options) {
				*o = agentBase
				o.insecurePlaintext = true
				o.server, o.bootstrap, o.listen, o.servers = true, true, []string{"unix:/lab/api.sock", "198.18.7.1:7420"}, []string{"unix:/lab/api.sock"}
				o.raftAddr = "198.18.7.1:7420"
				o.underlayIface, o.ovsRunDir, o.ovsDBDir, o.cniSocket = "ul0", "/lab/ovs", "/lab/ovs", "/lab/cni.sock"
			}},
		{name: "agent only, kernel module present", kmod: true, args: []string{"--agent", "--servers", "10.0.0.1:7420,10.0.0.2:7420", "--underlay-iface", "eth0", "--tls-ca", "ca.crt", "--tls-cert", "/t/agent-host-a.crt", "--tls-key", "/t/agent-host-a.key"},
			change: func(o *options) {
				*o = agentBase
				o.tlsCA, o.tlsCert, o.tlsKey = cwd+"/ca.crt", "/t/agent-host-a.crt", "/t/agent-host-a.key"
				o.servers, o.datapath = []string{"10.0.0.1:7420", "10.0.0.2:7420"}, "system"
			}},
		{name: "config file, flags win", args: []string{"--config", "/etc/sdnd.hcl", "--node-name", "cli"},
			files: map[string]string{"/etc/sdnd.hcl": `
agent          = true
servers        = ["10.0.0.1:7420", "10.0.0.2:7420"]
underlay_iface = "eth1"
node-name      = "file"
datapath       = "system"
log-level      = "warn"
insecure-plaintext = true
`},
			change: func(o *options) {
				*o = agentBase
				o.insecurePlaintext = true
				o.config, o.nodeName, o.servers, o.underlayIface, o.datapath, o.logLevel = "/etc/sdnd.hcl", "cli", []string{"10.0.0.1:7420", "10.0.0.2:7420"}, "eth1", "system", slog.LevelWarn
			}},
		{name: "liveness timings, down-after from the config file", args: []string{"--dev", "--agent", "--underlay-iface", "eth0", "--heartbeat-interval", "500ms", "--config", "/l.hcl"},
			files: map[string]string{"/l.hcl": `node-down-after = "3s"` + "\n"},
			change: func(o *options) {
				o.dev, o.server, o.bootstrap, o.agent, o.raftAddr = true, true, true, true, defaultListen
				o.servers, o.underlayIface, o.datapath, o.ovsDBDir = []string{defaultListen}, "eth0", "netdev", defaultOVSDBDir
				o.config, o.nodeDownAfter, o.heartbeatInterval = "/l.hcl", 3*time.Second, 500*time.Millisecond
			}},
		{name: "config file list as comma string", args: []string{"--config=/c.hcl"},
			files: map[string]string{"/c.hcl": `server = true` + "\n" + `listen = "127.0.0.1:1,unix:/x.sock"` + "\ninsecure_plaintext = true\n"},
			change: func(o *options) {
				o.insecurePlaintext = true
				o.config, o.server, o.listen, o.raftAddr = "/c.hcl", true, []string{"127.0.0.1:1", "unix:/x.sock"}, "127.0.0.1:1"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEnv(tt.files)
			e.kernelOVS = tt.kmod
			got, err := parseFlags(tt.args, e)
			if err != nil {
				t.Fatal(err)
			}
			want := base
			tt.change(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		files map[string]string
		want  []string // substrings, all of them
	}{
		{"nothing to run", nil, nil, []string{"nothing to run: use --dev, --server or --agent"}},
		{"two ways to bootstrap", []string{"--server", "--bootstrap", "--peers", "a=1.1.1.1:1"}, nil, []string{"choose one way to start a cluster"}},
		{"dev with peers", []string{"--dev", "--peers", "a=1.1.1.1:1"}, nil, []string{"choose one way to start a cluster"}},
		{"expect without join", []string{"--server", "--bootstrap-expect", "3"}, nil, []string{"--bootstrap-expect 3 needs --join"}},
		{"join with peers", []string{"--server", "--join", "1.1.1.1:1", "--peers", "a=1.1.1.1:1"}, nil, []string{"--join goes with --bootstrap-expect"}},
		{"bad peer", []string{"--server", "--peers", "10.0.0.1:7420"}, nil, []string{`peers "10.0.0.1:7420": want id=host:port`}},
		{"bad peer id", []string{"--server", "--peers", "S_1=10.0.0.1:7420"}, nil, []string{`peers: id "S_1"`}},
		{"bad join", []string{"--server", "--join", "unix:/x"}, nil, []string{`join "unix:/x": want another server's host:port`}},
		{"unix only", []string{"--server", "--listen", "unix:/x.sock"}, nil, []string{"raft needs one"}},
		{"peers without server", []string{"--agent", "--servers", "a:1", "--underlay-iface", "e", "--peers", "a=b:1"}, nil, []string{"--peers is a setting of the server role"}},
		{"agent flag without agent", []string{"--server", "--underlay-iface", "eth0"}, nil, []string{"--underlay-iface is a setting of the agent role; add --agent"}},
		{"server flag without server", []string{"--agent", "--servers", "a:1", "--underlay-iface", "e", "--listen", "x:1"}, nil, []string{"--listen is a setting of the server role; add --server"}},
		{"agent without underlay", []string{"--agent", "--servers", "a:1"}, nil, []string{"--agent needs --underlay-iface"}},
		{"agent without servers", []string{"--agent", "--underlay-iface", "eth0"}, nil, []string{"--agent needs --servers"}},
		{"bad datapath", []string{"--dev", "--agent", "--underlay-iface", "eth0", "--datapath", "dpdk"}, nil, []string{`datapath "dpdk": want netdev`}},
		{"bad listen", []string{"--server", "--listen", "7420"}, nil, []string{`listen "7420": want host:port or unix:/path`}},
		{"relative unix listen", []string{"--server", "--listen", "unix:api.sock"}, nil, []string{"absolute path"}},
		{"two unix servers", []string{"--agent", "--underlay-iface", "e", "--servers", "unix:/a,unix:/b"}, nil, []string{"a unix socket can only be the one server"}},
		{"bad node name", []string{"--dev", "--node-name", "Host_1"}, nil, []string{`node-name "Host_1"`}},
		{"bad log level", []string{"--dev", "--log-level", "loud"}, nil, []string{"log-level"}},
		{"stray argument", []string{"--dev", "extra"}, nil, []string{"unexpected arguments: [extra]"}},
		{"missing config file", []string{"--config", "/none.hcl"}, nil, []string{"--config: open /none.hcl"}},
		{"config typo", []string{"--config", "/c.hcl"}, map[string]string{"/c.hcl": "dev = true\ndatadir = \"/x\"\n"},
			[]string{`/c.hcl:2,1-8: Unknown setting "datadir"; Did you mean "data-dir"?`}},
		{"config wrong type", []string{"--config", "/c.hcl"}, map[string]string{"/c.hcl": "dev = \"yes\"\n"},
			[]string{`/c.hcl:1,7-12: Invalid value for "dev"; Want true or false, got string.`}},
		{"config list of numbers", []string{"--config", "/c.hcl"}, map[string]string{"/c.hcl": "server = true\nlisten = [1]\n"},
			[]string{`/c.hcl:2,10-13: Invalid value for "listen"; Want a list of strings, got tuple.`}},
		{"config syntax", []string{"--config", "/c.hcl"}, map[string]string{"/c.hcl": "dev = \n"}, []string{"/c.hcl:1"}},
		{"config block", []string{"--config", "/c.hcl"}, map[string]string{"/c.hcl": "agent {\n}\n"}, []string{"/c.hcl:1", "Unexpected \"agent\" block"}},
		{"config twice", []string{"--config", "/c.hcl"}, map[string]string{"/c.hcl": "data-dir = \"/a\"\ndata_dir = \"/b\"\ndev = true\n"},
			[]string{`/c.hcl:2,1-9: Setting "data-dir" given twice`}},
		{"server without TLS", []string{"--server", "--bootstrap"}, nil,
			[]string{"sdnd --server speaks mutual TLS and no TLS files were given: pass --tls-ca, --tls-cert and --tls-key", "`sdnctl tls init`", "--dev", "--insecure-plaintext"}},
		{"agent without TLS", []string{"--agent", "--servers", "a:1", "--underlay-iface", "e"}, nil, []string{"sdnd --agent speaks mutual TLS"}},
		{"TLS half given", []string{"--server", "--tls-ca", "/ca.crt", "--tls-cert", "/s.crt"}, nil,
			[]string{"--tls-ca, --tls-cert given without --tls-key: mutual TLS needs all three"}},
		{"TLS and plaintext", []string{"--dev", "--insecure-plaintext", "--tls-ca", "/ca.crt", "--tls-cert", "/s.crt", "--tls-key", "/s.key"}, nil,
			[]string{"--insecure-plaintext and --tls-ca, --tls-cert, --tls-key contradict each other"}},
		{"down-after too short", []string{"--dev", "--node-down-after", "100ms"}, nil, []string{"node-down-after 100ms: want at least 1s"}},
		{"state check interval negative", []string{"--dev", "--state-check-interval", "-1s"}, nil, []string{"state-check-interval -1s: want 0 (only when asked) or a positive duration (the default is 5m0s)"}},
		{"heartbeat not positive", []string{"--dev", "--agent", "--underlay-iface", "e", "--heartbeat-interval", "0s"}, nil, []string{"heartbeat-interval 0s: want a positive duration"}},
		{"heartbeat too slow for down-after", []string{"--dev", "--agent", "--underlay-iface", "e", "--heartbeat-interval", "20s"}, nil,
			[]string{"a host would be marked down after missing fewer than two heartbeats"}},
		{"down-after without server", []string{"--agent", "--servers", "a:1", "--underlay-iface", "e", "--node-down-after", "9s"}, nil, []string{"--node-down-after is a setting of the server role"}},
		{"config cannot include config", []string{"--config", "/c.hcl"}, map[string]string{"/c.hcl": "config = \"/d.hcl\"\n"}, []string{`Unknown setting "config"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, testEnv(tt.files))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	if _, err := parseFlags([]string{"--help"}, testEnv(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:7420": "127.0.0.1:7420", ":7420": "127.0.0.1:7420", "[::]:7420": "[::1]:7420",
		"10.0.0.1:7420": "10.0.0.1:7420", "unix:/run/sdn/api.sock": "unix:/run/sdn/api.sock",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}
