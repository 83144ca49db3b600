package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The human-readable details of a change (sdnv1.Change.details), as plan
// and apply print them.

// networkDetails lists what changed in a network.
func networkDetails(old, cur *sdnv1.Network) []string {
	var d []string
	d = append(d, labelDetails(old.Labels, cur.Labels)...)
	if old.GetOrigin().GetFile() != cur.GetOrigin().GetFile() {
		d = append(d, fmt.Sprintf("file: %q -> %q", old.GetOrigin().GetFile(), cur.GetOrigin().GetFile()))
	}
	return d
}

func workloadDetails(old, cur *sdnv1.Workload) []string {
	var d []string
	for _, f := range []struct{ name, a, b string }{
		{"node", old.Node, cur.Node}, {"ip", old.Ip, cur.Ip}, {"mac", old.Mac, cur.Mac}, {"pending", old.Pending, cur.Pending},
	} {
		if f.a != f.b {
			d = append(d, fmt.Sprintf("%s: %q -> %q", f.name, f.a, f.b))
		}
	}
	d = append(d, labelDetails(old.Labels, cur.Labels)...)
	if a, b := namedPortsText(old.NamedPorts), namedPortsText(cur.NamedPorts); a != b {
		d = append(d, fmt.Sprintf("named_ports: %s -> %s", a, b))
	}
	if old.GetOrigin().GetFile() != cur.GetOrigin().GetFile() {
		d = append(d, fmt.Sprintf("file: %q -> %q", old.GetOrigin().GetFile(), cur.GetOrigin().GetFile()))
	}
	return d
}

func labelDetails(old, cur map[string]string) []string {
	var d []string
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		a, hadA := old[k]
		b, hasB := cur[k]
		switch {
		case !hadA:
			d = append(d, fmt.Sprintf("labels.%s: (none) -> %q", k, b))
		case !hasB:
			d = append(d, fmt.Sprintf("labels.%s: %q -> (none)", k, a))
		case a != b:
			d = append(d, fmt.Sprintf("labels.%s: %q -> %q", k, a, b))
		}
	}
	return d
}

func originName(o *sdnv1.Origin) string {
	switch o.GetKind() {
	case sdnv1.OriginKind_ORIGIN_KIND_HCL:
		return "HCL"
	case sdnv1.OriginKind_ORIGIN_KIND_CNI:
		return "CNI"
	case sdnv1.OriginKind_ORIGIN_KIND_AGENT:
		return "an agent"
	case sdnv1.OriginKind_ORIGIN_KIND_API:
		return "the API"
	case sdnv1.OriginKind_ORIGIN_KIND_ATTACH:
		return "sdnctl attach"
	case sdnv1.OriginKind_ORIGIN_KIND_DOCKER:
		return "the Docker driver"
	}
	return "an unknown origin"
}

func summarize(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(", and %d more", len(items)-n)
}
