package fsm

import (
	"fmt"
	"maps"
	"slices"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The naming rules are model's, so that sdnctl's local checks (spec), the
// CNI plugin's and the server's can never disagree.

// checkName validates a network, workload or node name.
func checkName(what model.Kind, name string) string {
	validate := model.ValidateName
	if what == model.KindNode {
		validate = model.ValidateNodeName
	}
	if err := validate(name); err != nil {
		return fmt.Sprintf("%s name %q: %v", what, name, err)
	}
	return ""
}

// checkLabels validates Kubernetes-style label keys and values.
func checkLabels(labels map[string]string) string {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if err := model.ValidateLabelKey(k); err != nil {
			return fmt.Sprintf("label key %q: %v", k, err)
		}
		if err := model.ValidateLabelValue(labels[k]); err != nil {
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
		if _, err := model.ParseIPv4("ip", w.Ip); err != nil {
			return "ip", err.Error()
		}
	}
	if w.Mac != "" {
		m, err := model.ParseMAC("mac", w.Mac)
		if err != nil {
			return "mac", err.Error()
		}
		w.Mac = m
	}
	return "", ""
}
