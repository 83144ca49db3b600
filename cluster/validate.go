package cluster

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var (
	dnsLabel     = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	labelName    = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// checkName validates a network, workload or node name: a DNS label.
func checkName(what, name string) string {
	if name == "" {
		return what + " name is empty"
	}
	if len(name) > 63 || !dnsLabel.MatchString(name) {
		return fmt.Sprintf("%s name %q is not a DNS label (lowercase letters, digits and '-', starting with a letter, at most 63 characters)", what, name)
	}
	return ""
}

// checkLabels validates Kubernetes-style label keys and values.
func checkLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if i := strings.LastIndex(k, "/"); i >= 0 {
			prefix := k[:i]
			name = k[i+1:]
			if len(prefix) > 253 || !dnsSubdomain.MatchString(prefix) {
				return fmt.Sprintf("label key %q: prefix %q is not a DNS subdomain", k, prefix)
			}
		}
		if len(name) > 63 || !labelName.MatchString(name) {
			return fmt.Sprintf("label key %q: name part must be 1-63 characters of [A-Za-z0-9._-], starting and ending alphanumeric", k)
		}
		if v := labels[k]; v != "" && (len(v) > 63 || !labelName.MatchString(v)) {
			return fmt.Sprintf("label %s=%q: value must be at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric", k, v)
		}
	}
	return ""
}
