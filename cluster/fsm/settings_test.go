package fsm

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The FSM refuses the reserved ranges model.CheckUsableRange names, with
// the same words the HCL decoder uses, so a client other than sdnctl cannot
// set them either.
func TestReservedRangesRefused(t *testing.T) {
	tf := newTestFSM(t)
	for _, tc := range []struct {
		cidr, svc, want string
	}{
		{"127.0.0.0/8", "", "cidr 127.0.0.0/8 is in the loopback range 127.0.0.0/8"},
		{"224.0.0.0/4", "", "cidr 224.0.0.0/4 is in the multicast range 224.0.0.0/4"},
		{"", "169.254.0.0/16", "service_cidr 169.254.0.0/16 is in the link-local range 169.254.0.0/16"},
		{"", "240.0.0.0/4", "service_cidr 240.0.0.0/4 is in the reserved range (class E) 240.0.0.0/4"},
		{"0.0.0.0/8", "", `cidr 0.0.0.0/8 is in "this network" 0.0.0.0/8`},
	} {
		r := tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: tc.cidr, ServiceCidr: tc.svc}})
		if r.Err == nil || !strings.Contains(r.Err.Error(), tc.want) {
			t.Errorf("cidr %q service_cidr %q: got %v, want an error containing %q", tc.cidr, tc.svc, r.Err, tc.want)
		}
	}
	for _, line := range tf.dump() {
		if strings.HasPrefix(line, "settings/") {
			t.Errorf("refused settings were stored: %s", line)
		}
	}
}

// A cluster that holds a reserved range from before the rule keeps working:
// applying its settings again (what every `sdnctl apply` of its files does)
// is not refused, but moving to another reserved range is.
func TestReservedRangeKeptFromBefore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := state.Open(path, state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	old := &sdnv1.ClusterSettings{Cidr: "240.0.0.0/14", HostPrefix: 23, ServiceCidr: "172.30.0.0/16", VxlanPort: 4789,
		Isolation: sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT}
	if err := db.Update(func(tx *state.Tx) error { return tx.PutCluster(old) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f, err := OpenFSM(path, state.Options{NoSync: true}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tf := &testFSM{t: t, f: f, path: path}
	tf.mustApply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "240.0.0.0/14", HostPrefix: 23}})
	r := tf.apply(command.ApplyConfig, &sdnv1.ApplyRequest{Cluster: &sdnv1.ClusterSettings{Cidr: "240.4.0.0/14", HostPrefix: 23}})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "class E") {
		t.Errorf("moving to another reserved range: got %v, want a refusal naming class E", r.Err)
	}
}
