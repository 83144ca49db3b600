//go:build sdn_unsafe_reads

// Run with the tag, as `make test` does:
//
//	go test -tags sdn_unsafe_reads -run UnsafeFollowerReads ./cluster/api

package api

import (
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The test-only switch sends linearizable reads nowhere but the local state,
// and nothing else: writes still go to the leader.
func TestUnsafeFollowerReadsRoutes(t *testing.T) {
	list := sdnv1.ConfigService_List_FullMethodName
	apply := sdnv1.ConfigService_Apply_FullMethodName
	if unsafeFollowerReads {
		t.Fatalf("%s is set in the test's environment", UnsafeFollowerReadsEnv)
	}
	if r := routeOf(list, &sdnv1.ListRequest{}); r != toLeader {
		t.Fatalf("a linearizable List goes to route %d, want toLeader", r)
	}
	unsafeFollowerReads = true
	defer func() { unsafeFollowerReads = false }()
	if r := routeOf(list, &sdnv1.ListRequest{}); r != local {
		t.Fatalf("with the switch on, a linearizable List goes to route %d, want local", r)
	}
	if r := routeOf(apply, &sdnv1.ApplyRequest{}); r != toLeader {
		t.Fatalf("with the switch on, Apply goes to route %d, want toLeader", r)
	}
}
