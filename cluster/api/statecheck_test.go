package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/cluster/command"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestStateCheckLoop runs RunStateChecks on three in-process servers: the
// leader learns that every server reads command format 2 and writes it,
// and compares the servers' states on its own every interval (Status
// shows the comparison, Members each server's part).
func TestStateCheckLoop(t *testing.T) {
	ms := startCluster(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, m := range ms {
		go m.api.RunStateChecks(ctx, time.Second)
	}
	l := leaderOf(t, ms)
	deadline := time.Now().Add(15 * time.Second)
	for l.raft.CommandFormat() != command.Format2 {
		if time.Now().After(deadline) {
			t.Fatal("the leader never learned that every server reads command format 2")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := sdnv1.NewConfigServiceClient(l.conn).Apply(tctx(t), &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "proj1"}}}); err != nil {
		t.Fatal(err)
	}
	var rep *sdnv1.StateCheckReport
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := sdnv1.NewStatusServiceClient(l.conn).Status(tctx(t), &sdnv1.StatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if rep = st.StateCheck; rep != nil && rep.Revision >= 1 && rep.Advice == "" && len(rep.Servers) == 2 &&
			rep.Servers[0].Result == sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES && rep.Servers[1].Result == sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no comparison of the applied state with every server agreeing: %v", rep)
		}
	}
	mr, err := sdnv1.NewClusterServiceClient(l.conn).Members(tctx(t), &sdnv1.MembersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range mr.Servers {
		if sv.GetStateCheck().GetResult() != sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES || sv.CommandFormat != uint32(command.Format2) {
			t.Errorf("member %s: state check %v, command format %d", sv.Id, sv.GetStateCheck(), sv.CommandFormat)
		}
	}
}

// TestCheckAdvice: whom to rebuild is whom most servers disagree with.
func TestCheckAdvice(t *testing.T) {
	a, b := []byte("aaaa"), []byte("bbbb")
	ms := []cluster.Member{{ID: "s1", Address: "h1:7420"}, {ID: "s2", Address: "h2:7420"}, {ID: "s3", Address: "h3:7420"}}
	agrees, differs := sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES, sdnv1.StateCheckResult_STATE_CHECK_RESULT_DIFFERS
	for _, c := range []struct {
		name    string
		servers []*sdnv1.ServerStateCheck
		want    string
	}{
		{"all agree", []*sdnv1.ServerStateCheck{{Id: "s2", Result: agrees, Hash: a}, {Id: "s3", Result: agrees, Hash: a}}, ""},
		{"a follower differs", []*sdnv1.ServerStateCheck{{Id: "s2", Result: agrees, Hash: a}, {Id: "s3", Result: differs, Hash: b}},
			"s3 holds a state the leader s1 and 1 other server(s) do not; its agents and stale reads may see a wrong network. Rebuild it from the others: stop it, move its data directory aside, `sdnctl cluster remove s3`, then start it with an empty data directory (without --peers, --bootstrap or --bootstrap-expect) and run `sdnctl cluster join h3:7420`"},
		{"the leader differs", []*sdnv1.ServerStateCheck{{Id: "s2", Result: differs, Hash: b}, {Id: "s3", Result: differs, Hash: b}},
			"the leader s1 holds a state that s2, s3 (which agree with each other) do not: hand leadership to one of them (`sdnctl cluster transfer-leader s2`), then rebuild s1"},
		{"no majority", []*sdnv1.ServerStateCheck{{Id: "s2", Result: differs, Hash: b}},
			"no majority of servers agrees on one state (s1, the leader, differs from s2)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := checkAdvice(&sdnv1.StateCheckReport{LeaderId: "s1", LeaderHash: a, Servers: c.servers}, ms)
			if c.want == "" && got != "" || !strings.HasPrefix(got, c.want) {
				t.Fatalf("got %q\nwant %q", got, c.want)
			}
		})
	}
}
