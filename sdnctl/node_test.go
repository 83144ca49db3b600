package main

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestNodeCommands: what `sdnctl node` sends and how it renders the
// answers (against the test double).
func TestNodeCommands(t *testing.T) {
	f := &fakeSDND{
		drainResp: &sdnv1.DrainNodeResponse{Revision: 12, Changed: true, Workloads: 3},
		removeResp: &sdnv1.RemoveNodeResponse{Revision: 14, Subnet: "10.128.2.0/23", Changes: []*sdnv1.Change{
			{Op: sdnv1.ChangeOp_CHANGE_OP_DELETE, Kind: "workload", Name: "proj1/a"},
			{Op: sdnv1.ChangeOp_CHANGE_OP_DELETE, Kind: "workload", Name: "proj1/b"},
			{Op: sdnv1.ChangeOp_CHANGE_OP_UPDATE, Kind: "workload", Name: "proj1/static"},
			{Op: sdnv1.ChangeOp_CHANGE_OP_DELETE, Kind: "node", Name: "host2"},
		}},
		listResp: &sdnv1.ListResponse{Nodes: []*sdnv1.Node{{Name: "host1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500, Drained: true}}},
	}
	addr := serve(t, f)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "drain", "host2"}, "host host2 drained (revision 12): new workloads are refused there; workloads already there (3) keep running\n"},
		{[]string{"node", "undrain", "host2"}, "host host2 undrained (revision 12): it takes new workloads again\n"},
		{[]string{"node", "remove", "host2"}, "removed host host2 (revision 14): subnet 10.128.2.0/23 released, 2 workloads removed, 1 workload declared in HCL pending until it registers again\n"},
		{[]string{"node", "remove", "host2", "--force"}, "removed host host2 (revision 14): subnet 10.128.2.0/23 released, 2 workloads removed, 1 workload declared in HCL pending until it registers again\n"},
		{[]string{"node", "list", "--stale"}, "NAME    UNDERLAY-IP   MTU    SUBNET   GATEWAY   STATUS    HEARTBEAT\nhost1   198.18.0.1    1500   -        -         drained   -\n"},
	} {
		r := sdnctl(t, addr, tc.args...)
		if r.code != 0 || r.stdout != tc.want {
			t.Errorf("%s: code %d\n%s\nwant:\n%s\nstderr: %s", strings.Join(tc.args, " "), r.code, r.stdout, tc.want, r.stderr)
		}
	}
	if got, want := strings.Join(f.nodeReqs, "; "), "drain host2 true; drain host2 false; remove host2 force=false; remove host2 force=true"; got != want {
		t.Errorf("requests: %s\nwant: %s", got, want)
	}
	if got := f.listReqs[0]; got.Kind != "nodes" || !got.Stale {
		t.Errorf("node list sent %v", got)
	}

	f.drainResp = &sdnv1.DrainNodeResponse{Revision: 12, Workloads: 1}
	if r := sdnctl(t, addr, "node", "drain", "host2"); r.stdout != "host host2 was already drained (1 workload there)\n" {
		t.Errorf("drain again: %q", r.stdout)
	}
	// A refusal reaches the user as sdnd wrote it.
	f.nodeErr = status.Error(codes.FailedPrecondition, "host host2 is up (last heartbeat 1s ago): ... or remove it anyway with --force")
	if r := sdnctl(t, addr, "node", "remove", "host2"); r.code != 1 || !strings.Contains(r.stderr, "remove it anyway with --force") {
		t.Errorf("refused remove: code %d stderr %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"node"}, {"node", "drain"}, {"node", "remove", "a", "b"}, {"node", "undrain", ""}} {
		if r := sdnctl(t, addr, args...); r.code != 2 {
			t.Errorf("%v: code %d, stderr %q; want a usage error", args, r.code, r.stderr)
		}
	}
}

// TestWaitSkipsDownHosts: apply --wait says which down hosts it did not
// wait for.
func TestWaitSkipsDownHosts(t *testing.T) {
	f := &fakeSDND{progress: []*sdnv1.WaitRealizedProgress{{Realized: 2, Total: 2, Done: true, Down: []string{"host3"}}}}
	addr := serve(t, f)
	c, err := (&app{server: addr}).connect()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out strings.Builder
	a := &app{server: addr, stdout: &out, stderr: &out, timeout: 5e9}
	if err := a.waitRealized(t.Context(), c, 9, 5e9); err != nil {
		t.Fatal(err)
	}
	if want := "revision 9 realized on all 2 hosts that are up; not waited for, down: host3 (they catch up when they come back)\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	f.progress = []*sdnv1.WaitRealizedProgress{{Done: true, Down: []string{"host1", "host2"}}}
	out.Reset()
	if err := a.waitRealized(t.Context(), c, 9, 5e9); err != nil || !strings.HasPrefix(out.String(), "every host is down (host1, host2)") {
		t.Errorf("all down: %v %q", err, out.String())
	}
}
