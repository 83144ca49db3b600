package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// DefaultSocket is where sdnd --agent serves the agent service by default.
const DefaultSocket = "/run/sdn/cni.sock"

// maxSocketPath is the longest path a unix socket address holds on Linux
// (108 bytes of sun_path, the last one a NUL).
const maxSocketPath = 107

// NetConf is the plugin's network configuration (stdin). Of the fields the
// runtime adds, runtimeConfig, args and GC's valid attachments are kept
// for runtimeFields and validAttachments; prevResult is ignored (sdn is the
// interface's maker, first in its chain).
type NetConf struct {
	types.PluginConf
	// Network is the sdn network to join; CNI_ARGS SDN_NETWORK= overrides it.
	Network string `json:"network,omitempty"`
	// Socket is the agent's unix socket.
	Socket string `json:"socket,omitempty"`
	// NamedPorts are the workload's named ports, name to "tcp/8080",
	// "udp/53" or "8080" (tcp); CNI_ARGS SDN_NAMED_PORTS= replaces them.
	NamedPorts []*sdnv1.NamedPort `json:"-"`

	rawRuntime, rawArgs, rawValid, rawValidOld json.RawMessage
}

// parseConf decodes the network configuration and checks the socket; the
// network is checked by request, as DEL does not need one.
func parseConf(stdin []byte) (*NetConf, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdin, &raw); err != nil {
		return nil, confError("", "network configuration is not a JSON object: %v", err)
	}
	c := &NetConf{}
	// Decode field by field so that the error names the field at fault.
	for _, f := range []struct {
		name string
		dst  any
	}{{"cniVersion", &c.CNIVersion}, {"name", &c.Name}, {"type", &c.Type}, {"network", &c.Network}, {"socket", &c.Socket}} {
		v, ok := raw[f.name]
		if !ok || string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return nil, confError(f.name, "want a string, got %s", v)
		}
	}
	if v, ok := raw["named_ports"]; ok && string(v) != "null" {
		var m map[string]string
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, confError("named_ports", "want an object of name to \"tcp/8080\", \"udp/53\" or \"8080\", got %s", v)
		}
		for _, name := range slices.Sorted(maps.Keys(m)) {
			np, err := parseNamedPort(name, m[name])
			if err != nil {
				return nil, confError("named_ports", "%v", err)
			}
			c.NamedPorts = append(c.NamedPorts, np)
		}
	}
	c.rawRuntime, c.rawArgs = raw["runtimeConfig"], raw["args"]
	c.rawValid, c.rawValidOld = raw["cni.dev/valid-attachments"], raw["cni.dev/attachments"]
	if c.Socket == "" {
		c.Socket = DefaultSocket
	} else if !strings.HasPrefix(c.Socket, "/") {
		return nil, confError("socket", "%q is not an absolute path (e.g. %s)", c.Socket, DefaultSocket)
	} else if len(c.Socket) > maxSocketPath {
		return nil, confError("socket", "%q is %d bytes long; a unix socket path has at most %d (e.g. %s)", c.Socket, len(c.Socket), maxSocketPath, DefaultSocket)
	}
	return c, nil
}

// confError is a CNI "invalid network config" error naming the field.
func confError(field, format string, args ...any) *types.Error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = fmt.Sprintf("network config field %q: %s", field, msg)
	}
	return types.NewError(types.ErrInvalidNetworkConfig, "sdn: "+msg, "")
}

// request builds the agent request for a CNI command. DEL needs no network.
func request(cmd string, containerID, netns, ifname string, conf *NetConf, args *Args) (*sdnv1.CNIRequest, error) {
	req := &sdnv1.CNIRequest{ContainerId: containerID, Netns: netns, Ifname: ifname, Ip: args.IP}
	switch {
	case args.Network != "":
		req.Network = args.Network
	case cmd == "DEL":
		// DEL finds the workload by its owner; a bad network does not matter.
	case conf.Network == "":
		return nil, confError("network", "missing: say which sdn network to join with \"network\" in the network config or SDN_NETWORK= in CNI_ARGS")
	default:
		if err := model.ValidateName(conf.Network); err != nil {
			return nil, confError("network", "%q is not a valid sdn network name: %v", conf.Network, err)
		}
		req.Network = conf.Network
	}
	req.Name, req.NamePerHost = workloadName(containerID, args)
	req.Mac = args.MAC
	req.CniVersion = conf.CNIVersion
	if len(args.Labels) > 0 {
		req.Labels = maps.Clone(args.Labels)
	}
	req.NamedPorts = conf.NamedPorts
	if args.NamedPorts != nil {
		req.NamedPorts = args.NamedPorts
	}
	return req, nil
}

// parseNamedPortList reads SDN_NAMED_PORTS: "name:spec" pairs separated by
// commas (CNI_ARGS separates its pairs with ';'), e.g.
// "http:tcp/8080,dns:udp/53".
func parseNamedPortList(s string) ([]*sdnv1.NamedPort, error) {
	out := []*sdnv1.NamedPort{}
	for item := range strings.SplitSeq(s, ",") {
		if item == "" {
			continue
		}
		name, spec, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("%q is not NAME:PROTOCOL/PORT (e.g. http:tcp/8080)", item)
		}
		np, err := parseNamedPort(name, spec)
		if err != nil {
			return nil, err
		}
		out = append(out, np)
	}
	return out, nil
}

// parseNamedPort reads one named port's spec: "tcp/8080", "udp/53", or a
// bare port (tcp). The agent's servers check the name and the rest
// (policy.CheckNamedPorts).
func parseNamedPort(name, spec string) (*sdnv1.NamedPort, error) {
	proto, port, ok := strings.Cut(spec, "/")
	if !ok {
		proto, port = "tcp", spec
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("named port %q: %q is not a port (1-65535); write tcp/8080, udp/53 or 8080", name, spec)
	}
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("named port %q: protocol %q is not tcp or udp", name, proto)
	}
	if name == "" {
		return nil, fmt.Errorf("a named port %q has no name", spec)
	}
	return &sdnv1.NamedPort{Name: name, Protocol: proto, Port: uint32(n)}, nil
}
