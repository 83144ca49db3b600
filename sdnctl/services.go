package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// writeServicesTable prints services with their VIP, ports and endpoints
// (address@host; with wide, the workload and the target port of each
// service port). A service without endpoints says so: its clients are
// refused (TCP reset, ICMP unreachable), not left waiting.
func writeServicesTable(w io.Writer, resp *sdnv1.ListResponse, wide bool) error {
	eps := map[string]*sdnv1.ServiceEndpoints{}
	for _, e := range resp.GetServiceEndpoints() {
		eps[e.GetService()] = e
	}
	svcs := append([]*sdnv1.Service(nil), resp.GetServices()...)
	sort.SliceStable(svcs, func(i, j int) bool { return model.ServiceKey(svcs[i]) < model.ServiceKey(svcs[j]) })
	tw := newTable(w)
	fmt.Fprintln(tw, "SERVICE\tVIP\tPORTS\tAFFINITY\tENDPOINTS")
	for _, v := range svcs {
		key := model.ServiceKey(v)
		ports := make([]string, len(v.GetPorts()))
		for i, p := range v.GetPorts() {
			ports[i] = model.ServicePortText(p)
		}
		row(tw, key, v.GetVip(), strings.Join(ports, ","), affinity(v), endpointsText(v, eps[key], wide))
	}
	return tw.Flush()
}

func affinity(v *sdnv1.Service) string {
	if s := v.GetSessionAffinity().GetTimeoutSeconds(); s > 0 {
		return fmt.Sprintf("client-ip %ds", s)
	}
	return "-"
}

// endpointsText renders a service's endpoints: "none (...)", or their
// count and the first few as address@host (all of them, with workload and
// ports, when wide).
func endpointsText(v *sdnv1.Service, e *sdnv1.ServiceEndpoints, wide bool) string {
	list := e.GetEndpoints()
	if len(list) == 0 {
		return "none (no placed workload matches the selector; clients are refused)"
	}
	const shown = 3
	var parts []string
	for i, ep := range list {
		if !wide && i == shown {
			parts = append(parts, fmt.Sprintf("… %d more", len(list)-shown))
			break
		}
		s := ep.GetIp() + "@" + ep.GetNode()
		if wide {
			s = fmt.Sprintf("%s=%s%s", ep.GetWorkload(), s, endpointPorts(v, ep))
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("%d: %s", len(list), strings.Join(parts, ", "))
}

// endpointPorts says which service ports an endpoint serves on which port,
// when that is not plain: "(80->8080, 53: none)".
func endpointPorts(v *sdnv1.Service, ep *sdnv1.ServiceEndpoint) string {
	var parts []string
	plain := true
	for i, p := range v.GetPorts() {
		if i >= len(ep.GetPorts()) {
			break
		}
		t := ep.GetPorts()[i]
		switch {
		case t == 0:
			parts, plain = append(parts, fmt.Sprintf("%d: none", p.GetPort())), false
		case t != p.GetPort():
			parts, plain = append(parts, fmt.Sprintf("%d->%d", p.GetPort(), t)), false
		default:
			parts = append(parts, fmt.Sprint(p.GetPort()))
		}
	}
	if plain {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
