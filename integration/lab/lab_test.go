package lab

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestSubnetIsStableAndInside19818(t *testing.T) {
	within := netip.MustParsePrefix("198.18.0.0/15")
	seen := map[netip.Prefix]string{}
	for _, name := range []string{"lab", "t1", "t2", "a", "zzzzzzzzzzzz"} {
		p := Subnet(name)
		if p != Subnet(name) {
			t.Fatalf("Subnet(%q) not stable", name)
		}
		if p.Bits() != 24 || !within.Contains(p.Addr()) || p.Masked() != p {
			t.Errorf("Subnet(%q) = %v; want a /24 in %v", name, p, within)
		}
		seen[p] = name
	}
	if len(seen) < 4 {
		t.Errorf("five names share %d subnets: %v", len(seen), seen)
	}
}

func TestNamespaceNamesBelongToOneLab(t *testing.T) {
	for _, tt := range []struct {
		lab, ns string
		want    bool
	}{
		{"lab", "lab-ul", true},
		{"lab", "lab-out", true}, // the outside (AddOutside): once left behind by Down
		{"lab", "lab-h1", true},
		{"lab", "lab-h12", true},
		{"lab", "lab-host1-proj1", true},
		{"lab", "lab-host1-", false},
		{"lab", "lab-hx", false},
		{"lab", "lab2-ul", false},
		{"lab", "lab-ul2", false},
		{"lab", "other", false},
		{"lab", "lab-hosta-x", false},
	} {
		if got := nsOfLab(tt.lab, tt.ns); got != tt.want {
			t.Errorf("nsOfLab(%q, %q) = %v, want %v", tt.lab, tt.ns, got, tt.want)
		}
	}
}

func TestConfigRejectsBadNames(t *testing.T) {
	for _, name := range []string{"Lab", "a-b", "1lab", "abcdefghijklm", "a/b"} {
		c := Config{Name: name}
		if err := c.setDefaults(); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}

func TestExpectedMultitenant(t *testing.T) {
	var ws []*Workload
	for _, h := range []string{"host1", "host2"} {
		for _, n := range []string{"infra", "proj1", "proj2"} {
			ws = append(ws, &Workload{Host: h, Name: n, Network: n})
		}
	}
	nets := map[string]bool{"infra": true, "proj1": false, "proj2": false}
	m := Expected("multitenant", ws, nets)
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"host1/proj1", "host2/proj1", true},
		{"host1/proj1", "host2/proj2", false},
		{"host1/proj2", "host1/proj1", false},
		{"host1/infra", "host2/proj2", true},
		{"host2/proj2", "host1/infra", true},
	} {
		if got := m.Reach[tt.a][tt.b]; got != tt.want {
			t.Errorf("%s -> %s: %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	flat := Expected("flat", ws, nets)
	d := Diff(m, flat)
	// 6 workloads: proj1 and proj2 pairs across networks, both ways: 2*2*2.
	if len(d) != 8 {
		t.Errorf("multitenant vs flat: %d differing pairs, want 8:\n%s", len(d), strings.Join(d, "\n"))
	}
	if !strings.Contains(m.String(), "h2/proj2") {
		t.Errorf("table lacks the short column header:\n%s", m)
	}
}

func TestWithIsolation(t *testing.T) {
	src := "# c\ncluster {\n  cidr = \"10.0.0.0/8\"\n  isolation = \"multitenant\" # keep\n}\nnetwork \"a\" {}\n"
	got, found, err := withIsolation("c.hcl", []byte(src), "flat")
	if err != nil || !found {
		t.Fatal(found, err)
	}
	if want := strings.Replace(src, `"multitenant"`, `"flat"`, 1); string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	got, found, _ = withIsolation("c.hcl", []byte("cluster {}\n"), "policy")
	if !found || string(got) != "cluster {\n  isolation = \"policy\"\n}\n" {
		t.Errorf("inserted: %q", got)
	}
}

// needHost skips unless the test can make namespaces and run OVS.
func needHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, veths)")
	}
	for _, p := range []string{"ovsdb-server", "ovs-vswitchd", "ovs-vsctl"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs Open vSwitch (%s not found); `make deps` installs it", p)
		}
	}
	for _, p := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s not found; `make deps` installs it", p)
		}
	}
}

// world is what a lab may leave behind: namespaces, links of the root
// namespace, lab daemons naming the lab's directory, and the directory.
type world struct {
	netns, rootLinks []string
	procs            []int
	dirExists        bool
}

func snapshot(t *testing.T, dir string) world {
	t.Helper()
	var w world
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		w.netns = append(w.netns, e.Name())
	}
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			w.rootLinks = append(w.rootLinks, strings.Split(strings.TrimSuffix(f[1], ":"), "@")[0])
		}
	}
	w.procs = procsUnder(dir)
	_, err = os.Stat(dir)
	w.dirExists = err == nil
	return w
}

// labNS returns the names in list that belong to lab.
func labNS(lab string, list []string) []string {
	var out []string
	for _, ns := range list {
		if nsOfLab(lab, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// ourLinkNames are the links a lab makes inside its namespaces; none may
// ever appear in the root namespace.
var ourLinkNames = []string{"br0", "ul0", "h1", "h2", "ovs-netdev", "br-int", "br-phy"}

func checkClean(t *testing.T, name, dir string, before world) {
	t.Helper()
	after := snapshot(t, dir)
	if ns := labNS(name, after.netns); len(ns) > 0 {
		t.Errorf("namespaces left after Down: %v", ns)
	}
	for _, n := range ourLinkNames {
		if slices.Contains(after.rootLinks, n) && !slices.Contains(before.rootLinks, n) {
			t.Errorf("link %q appeared in the root namespace", n)
		}
	}
	if len(after.procs) > 0 {
		t.Errorf("processes naming %s left after Down: %v", dir, after.procs)
	}
	if after.dirExists {
		t.Errorf("%s left after Down", dir)
	}
}

func TestUnderlayUpIdempotentDownClean(t *testing.T) {
	needHost(t)
	dir := filepath.Join(t.TempDir(), "lab")
	before := snapshot(t, dir)
	cfg := Config{Name: "tu" + suffix(), Hosts: 2, Dir: dir, UnderlayOnly: true, Logger: testWriter{t}}
	downAtEnd(t, cfg.Name, dir)
	l, err := Up(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{l.UnderlayNS(), l.HostNS(1), l.HostNS(2)}
	if got := labNS(l.Name, snapshot(t, dir).netns); !sameSet(got, want) {
		t.Fatalf("namespaces %v, want %v", got, want)
	}
	// Real packets across the underlay, between the host namespaces only.
	if _, err := l.Exec(l.HostNS(1), "ping", "-c", "1", "-W", "2", l.HostIP(2).String()); err != nil {
		t.Errorf("host1 cannot reach host2 over the underlay: %v", err)
	}
	pids := procsUnder(dir)
	if len(pids) != 4 {
		t.Errorf("%d OVS daemons run from %s, want 4 (2 per host)", len(pids), dir)
	}

	// Up again keeps everything: the same daemons, the same links.
	if _, err := Up(context.Background(), cfg); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if again := procsUnder(dir); !sameInts(again, pids) {
		t.Errorf("second Up replaced the daemons: %v, then %v", pids, again)
	}
	if _, err := l.Exec(l.HostNS(2), "ping", "-c", "1", "-W", "2", l.HostIP(1).String()); err != nil {
		t.Errorf("after a second Up, host2 cannot reach host1: %v", err)
	}

	// Repair: a host whose underlay link is gone is made whole again.
	if _, err := l.Exec(l.HostNS(2), "ip", "link", "del", "ul0"); err != nil {
		t.Fatal(err)
	}
	if _, err := Up(context.Background(), cfg); err != nil {
		t.Fatalf("repairing Up: %v", err)
	}
	if _, err := l.Exec(l.HostNS(1), "ping", "-c", "1", "-W", "2", l.HostIP(2).String()); err != nil {
		t.Errorf("after repair, host1 cannot reach host2: %v", err)
	}

	// Down from a fresh handle, as `make lab-down` does, twice.
	fresh, err := Open(cfg.Name, dir, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Down(); err != nil {
		t.Fatalf("Down: %v", err)
	}
	checkClean(t, cfg.Name, dir, before)
	if err := fresh.Down(); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

func TestLabsSideBySide(t *testing.T) {
	needHost(t)
	names := []string{"ta" + suffix(), "tb" + suffix()}
	labs := make([]*Lab, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for k, name := range names {
		dir := filepath.Join(t.TempDir(), name)
		downAtEnd(t, name, dir)
		wg.Add(1)
		go func() {
			defer wg.Done()
			labs[k], errs[k] = Up(context.Background(), Config{Name: name, Hosts: 2, Dir: dir, UnderlayOnly: true})
		}()
	}
	wg.Wait()
	for k := range labs {
		if errs[k] != nil {
			t.Fatal(errs[k])
		}
	}
	a, b := labs[0], labs[1]
	if err := a.Down(); err != nil {
		t.Fatal(err)
	}
	if ns := labNS(a.Name, snapshot(t, a.Dir).netns); len(ns) > 0 {
		t.Errorf("lab %s left %v", a.Name, ns)
	}
	// b is untouched by a's Down.
	if _, err := b.Exec(b.HostNS(2), "ping", "-c", "1", "-W", "2", b.HostIP(1).String()); err != nil {
		t.Errorf("lab %s broken by lab %s's Down: %v", b.Name, a.Name, err)
	}
	if n := len(procsUnder(b.Dir)); n != 4 {
		t.Errorf("lab %s runs %d OVS daemons after %s's Down, want 4", b.Name, n, a.Name)
	}
}

func TestConfigRejectsBadUnderlayMTU(t *testing.T) {
	for _, mtu := range []int{-1, 576, 1279, 9001, 65535} {
		c := Config{UnderlayMTU: mtu}
		if err := c.setDefaults(); err == nil || !strings.Contains(err.Error(), "underlay MTU") {
			t.Errorf("underlay MTU %d: got %v, want an error about it", mtu, err)
		}
	}
	for _, mtu := range []int{0, 1280, 1500, 9000} {
		c := Config{UnderlayMTU: mtu}
		if err := c.setDefaults(); err != nil {
			t.Errorf("underlay MTU %d: %v", mtu, err)
		}
	}
}

// TestUnderlayMTU9000 brings up a jumbo-frame underlay: a 9000-byte
// unfragmented packet crosses it, Up with the MTU omitted keeps it, and Up
// asking for another MTU is refused while the lab runs.
func TestUnderlayMTU9000(t *testing.T) {
	needHost(t)
	dir := filepath.Join(t.TempDir(), "lab")
	cfg := Config{Name: "tm" + suffix(), Hosts: 2, Dir: dir, UnderlayOnly: true, UnderlayMTU: 9000, Logger: testWriter{t}}
	downAtEnd(t, cfg.Name, dir)
	l, err := Up(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := l.Exec(l.HostNS(1), "cat", "/sys/class/net/ul0/mtu"); err != nil || strings.TrimSpace(out) != "9000" {
		t.Errorf("host1's ul0 MTU: %q, %v; want 9000", out, err)
	}
	// 8972 bytes of ICMP payload + 28 of headers = 9000, don't fragment.
	if _, err := l.Exec(l.HostNS(1), "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "8972", l.HostIP(2).String()); err != nil {
		t.Errorf("a 9000-byte packet does not cross the underlay: %v", err)
	}
	again := cfg
	again.UnderlayMTU = 0
	if l2, err := Up(context.Background(), again); err != nil {
		t.Errorf("Up without an MTU on a 9000 lab: %v", err)
	} else if l2.UnderlayMTU() != 9000 {
		t.Errorf("Up without an MTU on a 9000 lab: MTU %d, want 9000 kept", l2.UnderlayMTU())
	}
	if o, err := Open(cfg.Name, dir, nil); err != nil || o.UnderlayMTU() != 9000 {
		t.Errorf("Open: %v; want underlay MTU 9000", err)
	}
	other := cfg
	other.UnderlayMTU = 1500
	if _, err := Up(context.Background(), other); err == nil || !strings.Contains(err.Error(), "underlay MTU 9000, not 1500") {
		t.Errorf("Up with MTU 1500 on a 9000 lab: %v; want a refusal", err)
	}
}

// A cell the model says a policy denies names the policy, and the legend
// says which policy it is and why; a baseline denial stays "-".
func TestExplainedNamesThePolicy(t *testing.T) {
	var ws []*Workload
	for _, h := range []string{"host1", "host2"} {
		ws = append(ws, &Workload{Host: h, Name: "proj1", Network: "proj1"}, &Workload{Host: h, Name: "proj2", Network: "proj2"})
	}
	model := Expected("multitenant", ws, map[string]bool{})
	model.set("host2/proj1", "host1/proj1", false)
	model.explain("host2/proj1", "host1/proj1", "proj1/hello-web", "ingress of proj1/host1-proj1 is isolated by proj1/hello-web")
	got := model // the packets agreed
	out := got.Explained(model)
	for _, want := range []string{
		"x:hello-web",
		"  x:hello-web  denied by policy proj1/hello-web, e.g. host2/proj1 -> host1/proj1: ingress of proj1/host1-proj1 is isolated by proj1/hello-web",
		"- isolated by the isolation mode",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(got.String(), "x:") || strings.Contains(got.String(), "denied by") {
		t.Errorf("String without a model names policies:\n%s", got.String())
	}
	if l := DemoLabels("host3", "proj1"); l["app"] != "bar" || l["lab"] != "demo" {
		t.Errorf("DemoLabels(host3, proj1) = %v; hello-web needs app=bar there", l)
	}
}
