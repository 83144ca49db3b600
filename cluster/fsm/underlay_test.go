package fsm

import (
	"slices"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// A host's underlay address is its tunnel endpoint: every other host sends
// VXLAN to it. An address nobody else can reach there (unspecified,
// loopback, multicast, link-local, broadcast) or one the overlay itself
// routes (inside the cluster or service CIDR) is refused with what to do,
// and the refusal changes nothing.
func TestRegisterRefusesUnusableUnderlay(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", ServiceCidr: "172.30.0.0/16"}})
	for _, c := range []struct{ ip, want string }{
		{"0.0.0.0", "underlay address 0.0.0.0 is the unspecified address"},
		{"127.0.0.1", "underlay address 127.0.0.1 is a loopback address"},
		{"127.1.2.3", "underlay address 127.1.2.3 is a loopback address"},
		{"224.0.0.5", "underlay address 224.0.0.5 is a multicast address"},
		{"169.254.10.1", "underlay address 169.254.10.1 is a link-local address"},
		{"255.255.255.255", "underlay address 255.255.255.255 is the broadcast address"},
		{"10.129.4.7", "underlay address 10.129.4.7 is inside the cluster CIDR 10.128.0.0/14"},
		{"172.30.0.9", "underlay address 172.30.0.9 is inside the service CIDR 172.30.0.0/16"},
	} {
		before := tf.dump()
		r := tf.apply(command.RegisterNode, register("h1", c.ip, 1500))
		if r.Err == nil || r.Err.Code != CodeInvalid || !strings.Contains(r.Err.Error(), c.want) ||
			!strings.Contains(r.Err.Error(), "--underlay-iface") {
			t.Errorf("register with underlay %s: %v; want %q and what to do", c.ip, r.Err, c.want)
		} else if v := r.Err.Violations; len(v) != 1 || v[0].Field != "underlay_ip" {
			t.Errorf("register with underlay %s: violations %v, want one on underlay_ip", c.ip, v)
		}
		if after := tf.dump(); !slices.Equal(before, after) {
			t.Fatalf("a refused registration (%s) changed the state", c.ip)
		}
	}
	tf.mustApply(command.RegisterNode, register("h1", "198.18.0.1", 1500))

	// The CIDRs cannot move over a registered host's underlay either.
	r := tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", ServiceCidr: "198.18.0.0/24"}})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "service_cidr 198.18.0.0/24 contains host h1's underlay address 198.18.0.1") {
		t.Fatalf("service CIDR over an underlay: %v", r.Err)
	}
}

// The checks added with envelope format 2 apply to format 2 entries only:
// a format 1 entry (an older release's log, replayed when a state file is
// rebuilt) is applied as that release applied it, or the rebuilt state
// would differ from the other servers'.
func TestFormatOneEntriesKeepTheirRules(t *testing.T) {
	tf := newTestFSM(t)
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", ServiceCidr: "172.30.0.0/16"}})
	strict, _ := command.Encode(command.RegisterNode, register("h1", "127.0.0.1", 1500))
	if r := tf.applyData(strict); r.Err == nil || !strings.Contains(r.Err.Error(), "loopback") {
		t.Fatalf("format 2 registration with a loopback underlay: %+v, want refused", r)
	}
	old, _ := command.Format1.Encode(command.RegisterNode, register("h1", "127.0.0.1", 1500))
	if r := tf.applyData(old); r.Err != nil {
		t.Fatalf("format 1 registration with a loopback underlay (accepted by the release that wrote it): %v", r.Err)
	}
	if n := tf.node("h1"); n == nil || n.UnderlayIp != "127.0.0.1" {
		t.Fatalf("host after the format 1 registration: %v", n)
	}
}
