package fsm

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// checkRuntimeFields checks a new workload's host ports and rate limits
// (CNI "portMappings" and "bandwidth"), returning the field at fault and
// why. Releases before these fields never stored any, so replaying an old
// log meets none of these refusals (CONTRIBUTING.md, Shape: no format gate
// needed).
func checkRuntimeFields(in *sdnv1.Workload) (string, string) {
	if err := model.ValidatePortMappings(in.PortMappings); err != nil {
		return "port_mappings", err.Error()
	}
	if err := model.ValidateBandwidth(in.Bandwidth); err != nil {
		return "bandwidth", err.Error()
	}
	return "", ""
}

// hostPortHolder finds a workload of the same host that already maps one
// of in's host ports (the same port and protocol on an overlapping
// address): two workloads of a host cannot both receive a port's traffic.
// It returns a refusal naming the holder, or "". Only workloads with host
// ports pay for the scan.
func hostPortHolder(e *exec, in *sdnv1.Workload) string {
	if len(in.PortMappings) == 0 {
		return ""
	}
	for _, w := range e.tx.Workloads("") {
		if w.Node != in.Node || len(w.PortMappings) == 0 {
			continue
		}
		for _, want := range in.PortMappings {
			for _, have := range w.PortMappings {
				if model.HostPortsOverlap(want, have) {
					return fmt.Sprintf("host port %d/%s of host %s is already mapped by workload %s (%s); choose another host port or remove that workload",
						want.HostPort, model.PortMappingProtocol(want), in.Node, model.WorkloadKey(w.Network, w.Name), model.PortMappingText(have))
				}
			}
		}
	}
	return ""
}

// normalPortMappings stores port mappings with the protocol spelled out,
// in a stable order (host address, port, protocol).
func normalPortMappings(in []*sdnv1.PortMapping) []*sdnv1.PortMapping {
	if len(in) == 0 {
		return nil
	}
	out := make([]*sdnv1.PortMapping, len(in))
	for i, pm := range in {
		c := proto.Clone(pm).(*sdnv1.PortMapping)
		c.Protocol = model.PortMappingProtocol(c)
		out[i] = c
	}
	slices.SortFunc(out, func(a, b *sdnv1.PortMapping) int {
		if c := strings.Compare(a.HostIp, b.HostIp); c != 0 {
			return c
		}
		if a.HostPort != b.HostPort {
			return int(a.HostPort) - int(b.HostPort)
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
	return out
}

// normalBandwidth stores no Bandwidth when it limits nothing.
func normalBandwidth(b *sdnv1.Bandwidth) *sdnv1.Bandwidth {
	if b == nil || proto.Equal(b, &sdnv1.Bandwidth{}) {
		return nil
	}
	return proto.Clone(b).(*sdnv1.Bandwidth)
}
