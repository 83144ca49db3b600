package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestThreeServerHostsFormACluster runs the flags NodeArgs gives three
// server hosts (what `sdnlab node-args --server` prints in the VM labs) as
// real sdnds in the netns lab's hosts: they elect a leader from one --peers
// list over mutual TLS with the hosts' certificates, the HCL applies, and
// with host2's sdnd killed the other two still take writes.
func TestThreeServerHostsFormACluster(t *testing.T) {
	needHost(t)
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "lab")
	cfg := Config{Name: "th" + suffix(), Hosts: 3, Dir: dir, Bin: bin, Logger: testWriter{t}, UnderlayOnly: true}
	downAtEnd(t, cfg.Name, dir)
	logsOnFailure(t, newLab(cfg))
	l, err := Up(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.cfg.HostServers = 3
	if err := l.ensureTLS(0); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := os.MkdirAll(l.dataDir(i), 0o700); err != nil {
			t.Fatal(err)
		}
		args := l.NodeArgs(Node{Index: i, Server: true, UnderlayIface: "ul0", Datapath: "netdev", OVSDir: l.ovsDir(i)})
		if _, err := l.sdnd(i).start(l.HostNS(i), l.sdndLog(i), filepath.Join(bin, "sdnd"), args...); err != nil {
			t.Fatal(err)
		}
	}
	// Two voters (ROLE) and a leader (ROLE and STATE): 4.
	members := waitSdnctl(ctx, t, l, func(out string) bool {
		return strings.Count(out, " voter ")+strings.Count(out, " leader ") == 4
	}, "cluster", "members")
	t.Logf("\n%s", members)
	for i := 1; i <= 3; i++ {
		if !strings.Contains(members, HostName(i)) {
			t.Errorf("cluster members lack %s:\n%s", HostName(i), members)
		}
	}
	hcl, err := l.prepareHCL()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := l.Sdnctl("apply", "-f", hcl, "--wait"); err != nil {
		t.Fatalf("apply with three servers: %v\n%s", err, out)
	}

	// host2 may have led: the other two elect a leader and take writes.
	if err := l.KillSDND(2); err != nil {
		t.Fatal(err)
	}
	waitSdnctl(ctx, t, l, func(string) bool { return true }, "node", "drain", "host3")
	waitSdnctl(ctx, t, l, func(out string) bool { return strings.Contains(out, "drained") }, "node", "list")
}

// waitSdnctl runs sdnctl on host1 until its output satisfies ok.
func waitSdnctl(ctx context.Context, t *testing.T, l *Lab, ok func(string) bool, args ...string) string {
	t.Helper()
	var out string
	var err error
	for ctx.Err() == nil {
		if out, err = l.Sdnctl(args...); err == nil && ok(out) {
			return out
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("sdnctl %s: not as wanted in time: %v\n%s", strings.Join(args, " "), err, out)
	return ""
}
