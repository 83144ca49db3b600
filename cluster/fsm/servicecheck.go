package fsm

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// services checks the stored services as an apply would (network, ports,
// selector, VIP in the service CIDR, no VIP or node port held twice), and
// their endpoints against what the workloads make of them.
func (c *stateCheck) services() {
	settings := effectiveSettings(c.tx)
	cidr, _ := netip.ParsePrefix(settings.ServiceCidr)
	lo, hi := model.NodePortRange(settings)
	vips, nodePorts := map[string]string{}, map[uint32]string{}
	svcs := c.tx.Services("")
	for _, v := range svcs {
		key := model.ServiceKey(v)
		c.service(key, v, cidr, lo, hi)
		if other, dup := vips[v.Vip]; dup {
			c.bad("service %q: vip %s is service %q's too", key, v.Vip, other)
		}
		vips[v.Vip] = key
		for _, p := range v.Ports {
			if other, dup := nodePorts[p.NodePort]; dup && p.NodePort != 0 {
				c.bad("service %q: node port %d is service %q's too", key, p.NodePort, other)
			}
			nodePorts[p.NodePort] = key
		}
	}
	c.endpoints(svcs)
}

// service checks one stored service on its own.
func (c *stateCheck) service(key string, v *sdnv1.Service, cidr netip.Prefix, lo, hi uint32) {
	if _, ok := c.nets[v.Network]; !ok {
		c.bad("service %q: its network %q does not exist", key, v.Network)
	}
	if err := policy.CheckSelector("selector", v.Selector); err != nil {
		c.bad("service %q: %v", key, err)
	}
	for _, err := range model.ValidateServicePorts(v.Ports, lo, hi) {
		c.bad("service %q: %v", key, err)
	}
	if v.Vip == "" {
		c.bad("service %q: has no vip", key)
	} else if err := model.ValidateVIP(v.Vip, cidr.Masked()); err != nil {
		c.bad("service %q: %v", key, err)
	}
}

// endpoints compares the stored endpoints with those derived anew.
func (c *stateCheck) endpoints(svcs []*sdnv1.Service) {
	have := map[string]*sdnv1.ServiceEndpoints{}
	for _, ep := range c.tx.AllServiceEndpoints("") {
		have[ep.Service] = ep
	}
	for _, want := range DeriveEndpoints(svcs, c.tx.Workloads(""), c.tx.Nodes()) {
		old, ok := have[want.Service]
		delete(have, want.Service)
		switch {
		case !ok && len(want.Endpoints) > 0:
			c.bad("service %q: its endpoints are missing (%d workloads are)", want.Service, len(want.Endpoints))
		case ok && !sameEndpoints(old, want):
			c.bad("service %q: its endpoints are not what its selector and the workloads make of them (%s)", want.Service, endpointsDiff(old, want))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(have)) {
		c.bad("endpoints of %q: no such service", key)
	}
}

// endpointsDiff says how many endpoints are stored and derived.
func endpointsDiff(have, want *sdnv1.ServiceEndpoints) string {
	return fmt.Sprintf("%d stored, %d derived", len(have.Endpoints), len(want.Endpoints))
}
