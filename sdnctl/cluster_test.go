package main

import (
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestRenderMembers(t *testing.T) {
	now := time.Now()
	f := &fakeSDND{members: &sdnv1.MembersResponse{LeaderId: "s1", Servers: []*sdnv1.Server{
		{Id: "s3", Address: "10.0.0.3:7420", Voter: true, State: "unreachable", Error: "no answer from 10.0.0.3:7420: connection refused"},
		{Id: "s1", Address: "10.0.0.1:7420", Voter: true, Leader: true, State: "leader", Term: 4, LastIndex: 120, AppliedIndex: 120},
		{Id: "s2", Address: "10.0.0.2:7420", Voter: true, State: "follower", Term: 4, LastIndex: 120, AppliedIndex: 117, LastContactUnixMs: now.Add(-2 * time.Second).UnixMilli()},
	}}}
	addr := serve(t, f)
	r := sdnctl(t, addr, "cluster", "members")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	for i, want := range []string{
		`^s1\s+10.0.0.1:7420\s+leader\s+leader\s+4\s+120\s+120\s+0\s+-\s+-\s+-$`,
		`^s2\s+10.0.0.2:7420\s+voter\s+follower\s+4\s+120\s+117\s+3\s+\ds ago\s+-\s+-$`,
		`^s3\s+10.0.0.3:7420\s+voter\s+unreachable\s+-\s+-\s+-\s+-\s+-\s+-\s+no answer from 10.0.0.3:7420: connection refused$`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("row %d %q does not match %s", i+1, lines[i+1], want)
		}
	}
	r = sdnctl(t, addr, "cluster", "members", "--stale", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"leaderId": "s1"`) {
		t.Fatalf("json: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if got := f.clusterReq; len(got) != 2 || got[1] != "members stale=true" {
		t.Fatalf("requests %v", got)
	}
	f.members = &sdnv1.MembersResponse{Servers: f.members.Servers[:1]}
	r = sdnctl(t, addr, "cluster", "members")
	if !strings.Contains(r.stdout, "no leader: fewer than a quorum") {
		t.Fatalf("no leader not said:\n%s", r.stdout)
	}

	// The leader's latest state comparison: a column, and what to do
	// below the table when a server differs.
	f.members = &sdnv1.MembersResponse{LeaderId: "s1", StateCheckAdvice: "s3 holds a state the leader s1 and 1 other server(s) do not; rebuild it", Servers: []*sdnv1.Server{
		{Id: "s1", Address: "10.0.0.1:7420", Voter: true, Leader: true, State: "leader", Term: 4, LastIndex: 120, AppliedIndex: 120,
			StateCheck: &sdnv1.ServerStateCheck{Id: "s1", Result: sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES, Revision: 77}},
		{Id: "s3", Address: "10.0.0.3:7420", Voter: true, State: "follower", Term: 4, LastIndex: 120, AppliedIndex: 120,
			StateCheck: &sdnv1.ServerStateCheck{Id: "s3", Result: sdnv1.StateCheckResult_STATE_CHECK_RESULT_DIFFERS, Revision: 77}},
	}}
	r = sdnctl(t, addr, "cluster", "members")
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^s1\s.*\sagrees @77\s+-$`).MatchString(lines[1]) || !regexp.MustCompile(`^s3\s.*\sDIFFERS @77\s+-$`).MatchString(lines[2]) ||
		lines[3] != "STATE CHECK FAILED: the servers do not all hold the same state (see STATE-CHECK); what to do: s3 holds a state the leader s1 and 1 other server(s) do not; rebuild it" {
		t.Fatalf("members with a failed state check:\n%s", r.stdout)
	}
}

func TestClusterChanges(t *testing.T) {
	f := &fakeSDND{joinResp: &sdnv1.JoinResponse{Id: "s4", Address: "10.0.0.4:7420", Added: true}}
	addr := serve(t, f)
	for _, tt := range []struct {
		args []string
		out  string
		req  string
	}{
		{[]string{"cluster", "join", "10.0.0.4:7420"}, "added s4 at 10.0.0.4:7420 as a voter\n", "join 10.0.0.4:7420 id="},
		{[]string{"cluster", "join", "10.0.0.4:7420", "--id", "s4"}, "added s4", "join 10.0.0.4:7420 id=s4"},
		{[]string{"cluster", "remove", "s3"}, "removed s3\n", "remove s3"},
		{[]string{"cluster", "transfer-leader"}, "s2 leads now\n", "transfer "},
		{[]string{"cluster", "transfer-leader", "s2"}, "s2 leads now\n", "transfer s2"},
	} {
		f.clusterReq = nil
		r := sdnctl(t, addr, tt.args...)
		if r.code != 0 || !strings.Contains(r.stdout, tt.out) || len(f.clusterReq) != 1 || f.clusterReq[0] != tt.req {
			t.Errorf("%v: exit %d out %q err %q requests %v", tt.args, r.code, r.stdout, r.stderr, f.clusterReq)
		}
	}
	f.joinResp.Added = false
	if r := sdnctl(t, addr, "cluster", "join", "10.0.0.4:7420"); !strings.Contains(r.stdout, "a voter already; nothing changed") {
		t.Errorf("join of a member: %q", r.stdout)
	}
	f.clusterErr = status.Error(codes.FailedPrecondition, "s1 is the last voter; a cluster cannot lose its last voter")
	if r := sdnctl(t, addr, "cluster", "remove", "s1"); r.code != 1 || r.stderr != "sdnctl: s1 is the last voter; a cluster cannot lose its last voter\n" {
		t.Errorf("refused remove: %d %q", r.code, r.stderr)
	}
	f.clusterErr = status.Error(codes.Unavailable, "no raft leader is known after 5s (an election is in progress)")
	if r := sdnctl(t, addr, "cluster", "remove", "s1"); r.code != 1 || !strings.Contains(r.stderr, "sdnctl: sdnd at "+addr+": no raft leader is known") {
		t.Errorf("no leader: %d %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"cluster"}, {"cluster", "join"}, {"cluster", "join", "nohostport"}, {"cluster", "remove"}, {"cluster", "transfer-leader", "a", "b"}} {
		if r := sdnctl(t, addr, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage): %s", args, r.code, r.stderr)
		}
	}
}

// TestSeveralServers: with --server a,b the first that answers serves.
func TestSeveralServers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	f := &fakeSDND{members: &sdnv1.MembersResponse{LeaderId: "s1", Servers: []*sdnv1.Server{{Id: "s1", Leader: true, Voter: true, State: "leader"}}}}
	addr := serve(t, f)
	r := sdnctl(t, dead+","+addr, "cluster", "members")
	if r.code != 0 || !strings.Contains(r.stdout, "s1") {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r := sdnctl(t, "unix:///x.sock,"+addr, "cluster", "members"); r.code != 2 || !strings.Contains(r.stderr, "several servers are host:port each") {
		t.Fatalf("unix among several: %d %s", r.code, r.stderr)
	}
}
