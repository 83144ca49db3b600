package model

import (
	"fmt"
	"strings"
	"time"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Defaults for the cluster settings a cluster block (or the API) omits.
const (
	DefaultCIDR        = "10.128.0.0/14"
	DefaultHostPrefix  = 23
	DefaultServiceCIDR = "172.30.0.0/16"
	DefaultVXLANPort   = 4789
	DefaultIsolation   = "multitenant"
	// DefaultNodeReleaseAfter is how long a host marked down keeps its
	// subnet and workload addresses when node_release_after is not set.
	DefaultNodeReleaseAfter = 24 * time.Hour
	// DefaultDNSDomain is the domain services and workloads are named
	// under (SERVICE.NETWORK.sdn.local) when dns_domain is not set.
	DefaultDNSDomain = "sdn.local"
)

// DNSDomain is the cluster's DNS domain, the default when unset.
func DNSDomain(c *sdnv1.ClusterSettings) string {
	if d := c.GetDnsDomain(); d != "" {
		return d
	}
	return DefaultDNSDomain
}

// NodePortRange is the cluster's node-port range, the default when unset.
func NodePortRange(c *sdnv1.ClusterSettings) (min, max uint32) {
	if c.GetNodePortMin() == 0 || c.GetNodePortMax() == 0 {
		return DefaultNodePortMin, DefaultNodePortMax
	}
	return c.GetNodePortMin(), c.GetNodePortMax()
}

// DefaultIsolationMode is DefaultIsolation in the API's terms.
const DefaultIsolationMode = sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT

// NeverReleaseNodes is node_release_after's value for "never" in the API
// (node_release_after_seconds).
const NeverReleaseNodes = -1

// isolationModes maps the HCL spelling of an isolation mode to the API's.
var isolationModes = map[string]sdnv1.IsolationMode{
	"flat":        sdnv1.IsolationMode_ISOLATION_MODE_FLAT,
	"multitenant": sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT,
	"policy":      sdnv1.IsolationMode_ISOLATION_MODE_POLICY,
}

// IsolationNames lists the isolation modes as HCL spells them, in order.
var IsolationNames = []string{"flat", "multitenant", "policy"}

// ParseIsolation returns the API's isolation mode for its HCL spelling.
func ParseIsolation(name string) (sdnv1.IsolationMode, bool) {
	m, ok := isolationModes[name]
	return m, ok
}

// IsolationName is the HCL spelling of an isolation mode ("flat",
// "multitenant", "policy"), or "" for an unspecified one.
func IsolationName(m sdnv1.IsolationMode) string {
	for name, mode := range isolationModes {
		if mode == m {
			return name
		}
	}
	return ""
}

// ParseNodeReleaseAfter reads node_release_after: a duration of at least
// a second ("24h", "90m") or "never", as the API's seconds (never is
// NeverReleaseNodes).
func ParseNodeReleaseAfter(s string) (int64, error) {
	if s == "never" {
		return NeverReleaseNodes, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("want a duration of at least 1s, like \"24h\" or \"90m\", or \"never\" (a host marked down keeps its subnet and workload addresses this long, then they are released)")
	}
	return int64(d / time.Second), nil
}

// FormatNodeReleaseAfter renders node_release_after_seconds as HCL spells
// it: "24h", "2h30m", "90s" ("1m30s"), "never"; 0 is the default.
func FormatNodeReleaseAfter(secs int64) string {
	d := time.Duration(secs) * time.Second
	switch {
	case secs < 0:
		return "never"
	case secs == 0:
		d = DefaultNodeReleaseAfter
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
