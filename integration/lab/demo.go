package lab

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/pki"
)

// AttachDefaults attaches, on every host, one workload to each network of
// the applied HCL, named after the network (so "<lab>-host1-proj1" is
// host1's workload in proj1), then waits until every host has realized the
// result. Workloads already attached are kept.
func (l *Lab) AttachDefaults(ctx context.Context) ([]*Workload, error) {
	networks, _, err := l.Networks()
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range networks {
			if !yield(n) {
				return
			}
		}
	})
	var (
		mu sync.Mutex
		ws []*Workload
	)
	err = l.eachHost(func(i int) error {
		for _, n := range names {
			w, kept, err := l.attach(HostName(i), n, n, DemoLabels(HostName(i), n), nil)
			if err != nil {
				return err
			}
			verb := "attached"
			if kept {
				verb = "kept"
			}
			l.logf("%s: %s %s: %s in %s (netns %s)", w.Host, verb, w.SDNName(), w.Address, w.Network, w.NS)
			mu.Lock()
			ws = append(ws, w)
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	SortWorkloads(ws)
	if err := l.WaitRealized(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	return ws, nil
}

// DemoLabels are the labels AttachDefaults gives host's workload in
// network: lab=demo, and in proj1 app=web on host1, app=foo on host2 and
// app=bar on host3, the workloads examples/policy/hello-web.hcl tells apart.
func DemoLabels(host, network string) map[string]string {
	labels := map[string]string{"lab": "demo"}
	if network == "proj1" {
		if app := map[string]string{"host1": "web", "host2": "foo", "host3": "bar"}[host]; app != "" {
			labels["app"] = app
		}
	}
	return labels
}

// ApplyFile applies one more HCL file or directory (e.g. a policy of
// examples/policy/) with `sdnctl apply --wait` and returns sdnctl's output.
func (l *Lab) ApplyFile(path string) (string, error) {
	return l.Sdnctl("apply", "-f", path, "--wait")
}

// CheckMatrix pings every pair of ws, writes the table to w, compares it
// with what the model (the servers' PolicyService.Verdict for each pair)
// says and returns an error naming every pair that differs. A cell the
// model says a policy denies names the policy. Servers without the Verdict
// RPC are compared with what the isolation mode promises instead.
func (l *Lab) CheckMatrix(w io.Writer, ws []*Workload) error {
	networks, isolation, err := l.Networks()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want, err := l.ModelMatrix(ctx, ws)
	source := "the model (sdnctl verdict)"
	if status.Code(err) == codes.Unimplemented {
		want, source, err = Expected(isolation, ws, networks), isolation+" isolation", nil
	}
	if err != nil {
		return fmt.Errorf("asking the model for the expected matrix: %w", err)
	}
	start := time.Now()
	got := l.Matrix(ws)
	fmt.Fprintf(w, "connectivity (%s isolation, %d workloads, %d pings in %.1fs):\n",
		isolation, len(ws), len(ws)*(len(ws)-1), time.Since(start).Seconds())
	fmt.Fprint(w, got.Explained(want))
	diff := Diff(got, want)
	if len(diff) > 0 {
		// Ping the differing pairs again: a pair that answers now lost only
		// its first packet, which says where to look.
		byID := map[string]*Workload{}
		for _, x := range ws {
			byID[x.ID()] = x
		}
		var k int
		for _, a := range want.IDs {
			for _, b := range want.IDs {
				if a != b && got.Reach[a][b] != want.Reach[a][b] {
					diff[k] += fmt.Sprintf(" (pinged again: %s)", reachWord(l.Ping(byID[a], byID[b].IP)))
					if r := want.Reason[a][b]; r != "" {
						diff[k] += "; the model: " + r
					}
					k++
				}
			}
		}
		return fmt.Errorf("connectivity differs from what %s says in %d pairs:\n  %s",
			source, len(diff), strings.Join(diff, "\n  "))
	}
	fmt.Fprintf(w, "matches %s: every network reaches itself%s%s\n", source, admins(isolation, networks), policyNote(want))
	return nil
}

// policyNote says how many pairs policies denied, if any.
func policyNote(m Matrix) string {
	n := 0
	for _, a := range m.IDs {
		for _, b := range m.IDs {
			if a != b && !m.Reach[a][b] && m.Why[a][b] != "" {
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", except %d pairs policies deny (x:NAME)", n)
}

func admins(isolation string, networks map[string]bool) string {
	switch isolation {
	case "flat":
		return " and every other"
	case "policy":
		return ", and no other"
	}
	for n, admin := range networks {
		if admin {
			return fmt.Sprintf(", %s (admin) reaches and is reached by all, the rest are isolated", n)
		}
	}
	return ", the rest are isolated"
}

// Hints tells how to poke at the lab.
func (l *Lab) Hints(w io.Writer, ws []*Workload) {
	fmt.Fprintf(w, "\nLab %q is up (%d hosts, underlay %s, files in %s).\n", l.Name, l.Hosts, Subnet(l.Name), l.Dir)
	tlsf := pki.PathsFor(l.TLSDir(), pki.RoleClient, "admin")
	fmt.Fprintf(w, "  security:   mutual TLS, the lab's CA and certificates in %s (docs/security.md); for sdnctl:\n", l.TLSDir())
	fmt.Fprintf(w, "              export SDN_TLS_CA=%s SDN_TLS_CERT=%s SDN_TLS_KEY=%s\n", tlsf.CA, tlsf.Cert, tlsf.Key)
	fmt.Fprintf(w, "  sdnctl:     %s/sdnctl --server %s get workloads\n", l.Bin, l.SdnctlServer())
	fmt.Fprintf(w, "              %s/sdnctl --server %s status\n", l.Bin, l.SdnctlServer())
	if len(ws) > 1 {
		a, b := ws[0], ws[len(ws)-1]
		for _, x := range ws {
			if x.Host != a.Host && x.Network == a.Network {
				b = x
				break
			}
		}
		fmt.Fprintf(w, "  workloads:  ip netns exec %s ping -c 3 %s      # %s -> %s\n", a.NS, b.IP, a.ID(), b.ID())
		fmt.Fprintf(w, "              ip netns list | grep '^%s-host'\n", l.Name)
	}
	fmt.Fprintf(w, "  policies:   %s/sdnctl --server %s get policies\n", l.Bin, l.SdnctlServer())
	fmt.Fprintf(w, "              %s/sdnctl --server %s verdict --from proj1/host3-proj1 --to proj1/host1-proj1 --port icmp\n", l.Bin, l.SdnctlServer())
	fmt.Fprintf(w, "  services:   %s/sdnctl --server %s get services -o wide\n", l.Bin, l.SdnctlServer())
	fmt.Fprintf(w, "  hosts:      ip netns exec %s ip addr; env OVS_RUNDIR=%s ovs-vsctl show\n", l.HostNS(1), l.ovsDir(1))
	fmt.Fprintf(w, "              env OVS_RUNDIR=%s ovs-ofctl -O OpenFlow15 dump-flows br-int\n", l.ovsDir(1))
	fmt.Fprintf(w, "  logs:       %s/host*/sdnd.log, %s/host*/ovs/ovs-vswitchd.log\n", l.Dir, l.Dir)
	fmt.Fprintf(w, "  matrix:     go run ./integration/cmd/sdnlab matrix --name %s --dir %s\n", l.Name, l.Dir)
	fmt.Fprintf(w, "  tear down:  make lab-down   (= go run ./integration/cmd/sdnlab down --name %s --dir %s)\n", l.Name, l.Dir)
}
