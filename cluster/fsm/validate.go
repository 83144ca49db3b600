package fsm

import (
	"fmt"
	"maps"
	"slices"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"github.com/sdn-dev/sdn/spec"
)

// The naming rules are spec's, so that sdnctl's local checks and the
// server's checks can never disagree.

// checkName validates a network, workload or node name.
func checkName(what, name string) string {
	validate := spec.ValidateName
	if what == "node" {
		validate = spec.ValidateNodeName
	}
	if err := validate(name); err != nil {
		return fmt.Sprintf("%s name %q: %v", what, name, err)
	}
	return ""
}

// checkLabels validates Kubernetes-style label keys and values.
func checkLabels(labels map[string]string) string {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if err := spec.ValidateLabelKey(k); err != nil {
			return fmt.Sprintf("label key %q: %v", k, err)
		}
		if err := spec.ValidateLabelValue(labels[k]); err != nil {
			return fmt.Sprintf("label %s=%q: %v", k, labels[k], err)
		}
	}
	return ""
}

// checkAddrs validates a workload's requested address and MAC, and puts the
// MAC in canonical (lowercase colon) form. It returns the field at fault and
// why.
func checkAddrs(w *sdnv1.Workload) (string, string) {
	if w.Ip != "" {
		if _, err := spec.ParseIPv4("ip", w.Ip); err != nil {
			return "ip", err.Error()
		}
	}
	if w.Mac != "" {
		m, err := spec.ParseMAC("mac", w.Mac)
		if err != nil {
			return "mac", err.Error()
		}
		w.Mac = m
	}
	return "", ""
}
