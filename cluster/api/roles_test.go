package api

import (
	"testing"

	"google.golang.org/grpc"
)

// TestEveryMethodHasARole: a method added to the API (or a service
// registered beside it) must say which certificates may call it; without
// an entry it is refused to all.
func TestEveryMethodHasARole(t *testing.T) {
	g := grpc.NewServer()
	New(nil, discard, Options{}).Install(g)
	n := 0
	for svc, info := range g.GetServiceInfo() {
		for _, m := range info.Methods {
			n++
			full := "/" + svc + "/" + m.Name
			if _, ok := methodAccess[full]; !ok {
				t.Errorf("%s has no entry in methodAccess (roles.go): say which certificates may call it", full)
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d methods served", n)
	}
	for a := anyRole; a <= serverOnly; a++ {
		if len(accessRoles[a]) == 0 || accessWhat[a] == "" {
			t.Errorf("access %d has no roles or no description", a)
		}
	}
}
