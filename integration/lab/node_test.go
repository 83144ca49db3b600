package lab

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/pki"
)

// TestNodeArgsOneServerUnchanged pins host1's and an agent's flags with one
// server: the netns lab runs exactly these (sdndArgs).
func TestNodeArgsOneServerUnchanged(t *testing.T) {
	l, err := Prepare(Config{Name: "n1", Hosts: 2, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ip1 := l.HostIP(1).String()
	tls := func(role pki.Role, name string) []string {
		p := pki.PathsFor(l.TLSDir(), role, name)
		return []string{"--tls-ca=" + p.CA, "--tls-cert=" + p.Cert, "--tls-key=" + p.Key}
	}
	tail := func(i int) []string {
		return []string{"--node-name=" + HostName(i), "--data-dir=" + l.dataDir(i), "--underlay-iface=eth1",
			"--datapath=system", "--cni-socket=" + l.CNISocket(i)}
	}
	want1 := append(append([]string{"--server", "--bootstrap", "--agent", "--listen=unix:" + l.APISocket() + "," + ip1 + ":7420",
		"--raft-addr=" + ip1 + ":7421"}, tls(pki.RoleServer, "host1")...), tail(1)...)
	if got := l.NodeArgs(Node{Index: 1, Server: true, UnderlayIface: "eth1", Datapath: "system"}); !slices.Equal(got, want1) {
		t.Errorf("host1:\n got %q\nwant %q", got, want1)
	}
	want2 := append(append([]string{"--agent", "--servers=" + ip1 + ":7420"}, tls(pki.RoleAgent, "host2")...), tail(2)...)
	if got := l.NodeArgs(Node{Index: 2, UnderlayIface: "eth1", Datapath: "system"}); !slices.Equal(got, want2) {
		t.Errorf("host2:\n got %q\nwant %q", got, want2)
	}
	if _, err := os.Stat(pki.PathsFor(l.TLSDir(), pki.RoleServer, "host2").Cert); !os.IsNotExist(err) {
		t.Errorf("server-host2 certificate with one server: %v", err)
	}
}

// TestPrepareThreeServerHosts: certificates naming each server host's
// address, the peers on every server, every server given to the agents,
// and the count recorded for the hosts (OpenNode).
func TestPrepareThreeServerHosts(t *testing.T) {
	dir := t.TempDir()
	l, err := Prepare(Config{Name: "n3", Hosts: 4, HostServers: 3, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		c := readCert(t, pki.PathsFor(l.TLSDir(), pki.RoleServer, HostName(i)).Cert)
		if len(c.IPAddresses) == 0 || c.IPAddresses[0].String() != l.HostIP(i).String() {
			t.Errorf("server-host%d names %v; want %v first", i, c.IPAddresses, l.HostIP(i))
		}
	}
	if _, err := os.Stat(pki.PathsFor(l.TLSDir(), pki.RoleServer, "host4").Cert); !os.IsNotExist(err) {
		t.Errorf("server-host4 certificate: %v; host4 is an agent", err)
	}
	// A host's view, from the recorded count.
	v, err := OpenNode("n3", dir, "/opt/sdn/bin", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.HostServers() != 3 {
		t.Fatalf("OpenNode: %d server hosts; want 3 (lab.json)", v.HostServers())
	}
	peers := "--peers=host1=" + l.HostIP(1).String() + ":7420,host2=" + l.HostIP(2).String() + ":7420,host3=" + l.HostIP(3).String() + ":7420"
	s2 := strings.Join(v.NodeArgs(Node{Index: 2, Server: true, UnderlayIface: "eth1", Datapath: "system"}), " ")
	for _, want := range []string{"--server ", "--agent ", peers, "--listen=unix:" + filepath.Join(dir, "host2", "api.sock") + "," + l.HostIP(2).String() + ":7420",
		"server-host2.crt", "--node-name=host2"} {
		if !strings.Contains(s2, want) {
			t.Errorf("host2's server flags lack %q:\n%s", want, s2)
		}
	}
	if strings.Contains(s2, "--bootstrap") || strings.Contains(s2, "--raft-addr") {
		t.Errorf("host2 of three servers bootstraps alone or moves raft off the cluster address:\n%s", s2)
	}
	a4 := strings.Join(v.NodeArgs(Node{Index: 4, UnderlayIface: "eth1", Datapath: "system"}), " ")
	if want := "--servers=" + strings.Join(l.HostServerAddrs(), ","); !strings.Contains(a4, want) || len(l.HostServerAddrs()) != 3 {
		t.Errorf("host4's flags lack %q:\n%s", want, a4)
	}
	if _, err := OpenNode("n3", dir, "/opt/sdn/bin", 4, 1); err == nil {
		t.Error("OpenNode with 1 server on a lab prepared with 3: no error")
	}
	if _, err := Prepare(Config{Name: "n4", Hosts: 2, HostServers: 3, Dir: t.TempDir()}); err == nil {
		t.Error("Prepare: 3 servers of 2 hosts: no error")
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}
