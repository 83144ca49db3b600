package cnisrv

import (
	"slices"
	"testing"
)

// TestDNSFor: the result's DNS follows the cluster's dns_domain, and a
// host without a gateway gives none.
func TestDNSFor(t *testing.T) {
	f := newFakeCluster()
	f.dnsDomain = "corp.example"
	s := New(Config{Node: testNode, Agent: f})
	d := s.dnsFor("proj2", "10.128.2.1")
	if !slices.Equal(d.GetNameservers(), []string{"10.128.2.1"}) || !slices.Equal(d.GetSearch(), []string{"proj2.corp.example", "corp.example"}) {
		t.Fatalf("DNS in domain corp.example: %v", d)
	}
	if d := s.dnsFor("proj2", ""); d != nil {
		t.Fatalf("DNS without a gateway: %v; want none", d)
	}
}
