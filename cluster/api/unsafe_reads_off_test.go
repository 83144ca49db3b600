//go:build !sdn_unsafe_reads

package api

import (
	"testing"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Without the build tag the test-only switch is off whatever the
// environment says: a linearizable read goes to the leader.
func TestUnsafeFollowerReadsOffWithoutTag(t *testing.T) {
	t.Setenv(UnsafeFollowerReadsEnv, "1")
	if unsafeFollowerReads {
		t.Fatal("the unsafe switch is on in a build without the sdn_unsafe_reads tag")
	}
	if r := routeOf(sdnv1.ConfigService_List_FullMethodName, &sdnv1.ListRequest{}); r != toLeader {
		t.Fatalf("a linearizable List goes to route %d, want toLeader", r)
	}
}
