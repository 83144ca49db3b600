package cnisrv

import (
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// dnsFor is the DNS a workload of network is given: the host's DNS server
// (node/dns) on the gateway address, and the search domains
// NETWORK.<domain> then <domain> (a bare name is first a service or
// workload of its own network, then NAME.NETWORK finds another network's).
// nil without a gateway.
func (s *Server) dnsFor(network, gateway string) *sdnv1.CNIDNS {
	if gateway == "" {
		return nil
	}
	var domain string
	s.cfg.Agent.View(func(m *model.Desired) { domain = model.DNSDomain(m.Cluster) })
	return &sdnv1.CNIDNS{Nameservers: []string{gateway}, Search: []string{network + "." + domain, domain}}
}
