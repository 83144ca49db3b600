package api

import (
	"context"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// policyCounters adds the hosts' per-rule counters to the policies of resp
// (PolicyStatus.counters, counter_errors). A placeholder until the
// datapath's counters are read (the trace work replaces this file): it
// adds nothing.
func (s *Server) policyCounters(ctx context.Context, resp *sdnv1.ListPoliciesResponse) error {
	return nil
}
