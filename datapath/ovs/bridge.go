package ovs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// BridgeConfig is an OVS bridge this package manages.
type BridgeConfig struct {
	Name string
	// DatapathType is "netdev" (userspace; needs no kernel module) or
	// "system" (the openvswitch kernel module). Empty means "system", as
	// in OVS.
	DatapathType string
}

// Protocols are the OpenFlow versions our bridges speak: 1.3 for groups,
// 1.4+ for bundles, 1.5 for what ovs-ofctl -O OpenFlow15 sends.
const Protocols = "OpenFlow13,OpenFlow14,OpenFlow15"

// maxIfName is IFNAMSIZ-1: bridges and internal ports become Linux devices.
const maxIfName = 15

// EnsureBridge creates the bridge if it is missing and (re)sets what we rely
// on: datapath type, fail_mode=secure (never fall back to a learning
// switch when no controller or flows say otherwise), our OpenFlow
// versions, and no in-band control flows. Idempotent.
func (i *Instance) EnsureBridge(ctx context.Context, cfg BridgeConfig) error {
	if err := checkIfName("bridge", cfg.Name); err != nil {
		return err
	}
	dp := cfg.DatapathType
	if dp == "" {
		dp = "system"
	}
	if dp != "system" && dp != "netdev" {
		return fmt.Errorf("bridge %q: datapath type %q is neither \"system\" nor \"netdev\"", cfg.Name, dp)
	}
	_, err := i.Vsctl(ctx,
		"--", "--may-exist", "add-br", cfg.Name,
		"--", "set", "Bridge", cfg.Name,
		"datapath_type="+dp,
		"fail_mode=secure",
		"protocols="+Protocols,
		"other_config:disable-in-band=true")
	if err != nil {
		return fmt.Errorf("ensure bridge %q: %w", cfg.Name, err)
	}
	return nil
}

// EnsurePort adds port to bridge if it is missing, applies ofportRequest (0:
// let OVS choose) and extra Interface settings in ovs-vsctl syntax, and
// returns the OpenFlow port number OVS assigned. Examples of extra:
//
//	"type=internal"
//	"type=vxlan", "options:remote_ip=flow", "options:key=flow", "options:local_ip=198.18.0.1"
//
// Idempotent: the settings are re-applied each call.
func (i *Instance) EnsurePort(ctx context.Context, bridge, port string, ofportRequest int, extra ...string) (int, error) {
	if err := checkIfName("port", port); err != nil {
		return 0, err
	}
	args := []string{"--", "--may-exist", "add-port", bridge, port}
	set := append([]string(nil), extra...)
	if ofportRequest > 0 {
		set = append(set, "ofport_request="+strconv.Itoa(ofportRequest))
	}
	if len(set) > 0 {
		args = append(append(args, "--", "set", "Interface", port), set...)
	}
	if _, err := i.Vsctl(ctx, args...); err != nil {
		return 0, fmt.Errorf("ensure port %q on bridge %q: %w", port, bridge, err)
	}
	out, err := i.Vsctl(ctx, "--", "get", "Interface", port, "ofport", "--", "get", "Interface", port, "error")
	if err != nil {
		return 0, fmt.Errorf("ensure port %q on bridge %q: %w", port, bridge, err)
	}
	lines := strings.SplitN(strings.TrimSpace(out), "\n", 2)
	ofport, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || ofport <= 0 {
		why := ""
		if len(lines) == 2 {
			why = strings.Trim(strings.TrimSpace(lines[1]), `"`)
		}
		return 0, fmt.Errorf("ensure port %q on bridge %q: OVS gave it no OpenFlow port (ofport %q, error %q); see ovs-vswitchd.log in %s",
			port, bridge, strings.TrimSpace(lines[0]), why, i.LogDir)
	}
	if ofportRequest > 0 && ofport != ofportRequest {
		return 0, fmt.Errorf("ensure port %q on bridge %q: asked for OpenFlow port %d, got %d (is %d taken by another port?)",
			port, bridge, ofportRequest, ofport, ofportRequest)
	}
	return ofport, nil
}

// DeletePort removes port from bridge; a missing port is not an error.
func (i *Instance) DeletePort(ctx context.Context, bridge, port string) error {
	if _, err := i.Vsctl(ctx, "--if-exists", "del-port", bridge, port); err != nil {
		return fmt.Errorf("delete port %q from bridge %q: %w", port, bridge, err)
	}
	return nil
}

// Ports returns the bridge's interfaces (not the bridge's own internal
// port) by name with their OpenFlow port numbers; -1 means OVS could not
// set the interface up.
func (i *Instance) Ports(ctx context.Context, bridge string) (map[string]int, error) {
	out, err := i.Vsctl(ctx, "list-ifaces", bridge)
	if err != nil {
		return nil, fmt.Errorf("list ports of bridge %q: %w", bridge, err)
	}
	names := strings.Fields(out)
	ports := make(map[string]int, len(names))
	if len(names) == 0 {
		return ports, nil
	}
	args := []string{"--format=csv", "--data=bare", "--no-headings", "--columns=name,ofport", "list", "Interface"}
	out, err = i.Vsctl(ctx, append(args, names...)...)
	if err != nil {
		return nil, fmt.Errorf("list ports of bridge %q: %w", bridge, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, num, ok := strings.Cut(line, ",")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil {
			n = -1 // not yet assigned
		}
		ports[strings.Trim(name, `"`)] = n
	}
	return ports, nil
}

func checkIfName(what, name string) error {
	if name == "" || len(name) > maxIfName || strings.ContainsAny(name, "/ \t\n") {
		return fmt.Errorf("%s name %q: must be 1-%d characters without '/' or spaces (it becomes a Linux device name)", what, name, maxIfName)
	}
	return nil
}
