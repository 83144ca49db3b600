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

// NetConf is the plugin's network configuration (stdin). Fields the runtime
// adds (runtimeConfig, prevResult, args, ...) are ignored.
type NetConf struct {
	types.PluginConf
	// Network is the sdn network to join; CNI_ARGS SDN_NETWORK= overrides it.
	Network string `json:"network,omitempty"`
	// Socket is the agent's unix socket.
	Socket string `json:"socket,omitempty"`
	// NamedPorts are the workload's named ports, name to "tcp/8080",
	// "udp/53" or "8080" (tcp); CNI_ARGS SDN_NAMED_PORTS= replaces them.
	NamedPorts []*sdnv1.NamedPort `json:"-"`
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

// argsError is a CNI "invalid environment variables" error about CNI_ARGS.
func argsError(format string, args ...any) *types.Error {
	return types.NewError(types.ErrInvalidEnvironmentVariables, "sdn: CNI_ARGS: "+fmt.Sprintf(format, args...), "")
}

// Args is what the plugin takes from CNI_ARGS.
type Args struct {
	Network string // SDN_NETWORK
	Name    string // SDN_NAME
	IP      string // IP
	// NamedPorts from SDN_NAMED_PORTS ("http:tcp/8080,dns:udp/53"); nil
	// when absent.
	NamedPorts []*sdnv1.NamedPort
	PodNS      string // K8S_POD_NAMESPACE
	Pod        string // K8S_POD_NAME
	Labels     map[string]string
	// Dropped lists runtime metadata that could not become a label (a
	// value that is not a valid label value), for the plugin's stderr.
	Dropped []string
}

// nomadLabels maps the Nomad CNI_ARGS to labels. NOMAD_JOB_ID stands in
// for NOMAD_JOB_NAME when that is absent.
var nomadLabels = map[string]string{
	"NOMAD_ALLOC_ID":   "nomad.alloc-id",
	"NOMAD_JOB_NAME":   "nomad.job",
	"NOMAD_GROUP_NAME": "nomad.group",
	"NOMAD_TASK_NAME":  "nomad.task",
	"NOMAD_NAMESPACE":  "nomad.namespace",
	"NOMAD_REGION":     "nomad.region",
}

// Label keys for the Kubernetes pod identity.
const (
	labelK8sNamespace = "k8s.namespace"
	labelK8sPod       = "k8s.pod"
)

// parseArgs parses CNI_ARGS ("K1=V1;K2=V2"). Known keys: IgnoreUnknown,
// SDN_NETWORK, SDN_NAME, IP, K8S_POD_NAMESPACE, K8S_POD_NAME and the NOMAD_*
// keys above become settings and labels; other K8S_* and NOMAD_* keys are
// runtime metadata and ignored. Every other pair is a label. A pair whose
// key or value is not valid label syntax is an error, unless
// IgnoreUnknown=1|true is present, in which case it is skipped: the CNI
// convention for args a plugin does not understand.
func parseArgs(s string) (*Args, error) {
	a := &Args{Labels: map[string]string{}}
	type kv struct{ k, v string }
	var pairs []kv
	ignoreUnknown := false
	for part := range strings.SplitSeq(s, ";") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || k == "" {
			return nil, argsError("%q is not KEY=VALUE", part)
		}
		if strings.EqualFold(k, "IgnoreUnknown") {
			switch strings.ToLower(v) {
			case "1", "true":
				ignoreUnknown = true
			case "0", "false", "":
			default:
				return nil, argsError("IgnoreUnknown=%q: want 1, true, 0 or false", v)
			}
			continue
		}
		pairs = append(pairs, kv{k, v})
	}
	var nomadJobID string
	for _, p := range pairs {
		switch k, v := p.k, p.v; {
		case k == "SDN_NETWORK":
			if err := model.ValidateName(v); err != nil {
				return nil, argsError("SDN_NETWORK=%q is not a valid sdn network name: %v", v, err)
			}
			a.Network = v
		case k == "SDN_NAME":
			if err := model.ValidateName(v); err != nil {
				return nil, argsError("SDN_NAME=%q is not a valid workload name: %v", v, err)
			}
			a.Name = v
		case k == "IP":
			a.IP = v
		case k == "SDN_NAMED_PORTS":
			ports, err := parseNamedPortList(v)
			if err != nil {
				return nil, argsError("SDN_NAMED_PORTS=%q: %v", v, err)
			}
			a.NamedPorts = ports
		case k == "K8S_POD_NAMESPACE":
			a.PodNS = v
			a.label(labelK8sNamespace, k, v)
		case k == "K8S_POD_NAME":
			a.Pod = v
			a.label(labelK8sPod, k, v)
		case nomadLabels[k] != "":
			a.label(nomadLabels[k], k, v)
		case k == "NOMAD_JOB_ID":
			nomadJobID = v
		case strings.HasPrefix(k, "K8S_"), strings.HasPrefix(k, "NOMAD_"):
			// Runtime metadata: K8S_POD_UID, K8S_POD_INFRA_CONTAINER_ID, ...
		default:
			err := model.ValidateLabelKey(k)
			if err == nil {
				if verr := model.ValidateLabelValue(v); verr != nil {
					err = fmt.Errorf("value %q: %v", v, verr)
				}
			}
			if err != nil {
				if ignoreUnknown {
					continue
				}
				return nil, argsError("%s=%s: not a label (%v) and not an arg sdn knows; fix it, or pass IgnoreUnknown=1 to skip such args", k, v, err)
			}
			a.Labels[k] = v
		}
	}
	if _, ok := a.Labels["nomad.job"]; !ok && nomadJobID != "" {
		a.label("nomad.job", "NOMAD_JOB_ID", nomadJobID)
	}
	return a, nil
}

// label sets a label from runtime metadata, or notes that its value cannot
// be one (e.g. a pod name longer than 63 characters); the workload's name
// still carries it.
func (a *Args) label(key, arg, v string) {
	if err := model.ValidateLabelValue(v); err != nil {
		a.Dropped = append(a.Dropped, fmt.Sprintf("%s=%q (not a valid label value: %v)", arg, v, err))
		return
	}
	a.Labels[key] = v
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
	req.Name = workloadName(containerID, args)
	if len(args.Labels) > 0 {
		req.Labels = maps.Clone(args.Labels)
	}
	req.NamedPorts = conf.NamedPorts
	if args.NamedPorts != nil {
		req.NamedPorts = args.NamedPorts
	}
	return req, nil
}

// workloadName is SDN_NAME, else "<namespace>-<pod>" (just "<pod>" when
// both are equal, as Podman passes its container name as both), else the
// first 12 characters of the container id; made a valid DNS label.
func workloadName(containerID string, a *Args) string {
	switch {
	case a.Name != "":
		return a.Name
	case a.Pod != "" && a.PodNS != "" && a.PodNS != a.Pod:
		return dnsLabel(a.PodNS + "-" + a.Pod)
	case a.Pod != "":
		return dnsLabel(a.Pod)
	}
	id := containerID
	if len(id) > 12 {
		id = id[:12]
	}
	return dnsLabel(id)
}

// dnsLabel turns s into a valid sdn name (a DNS label): lowercase, runs of
// other characters become '-', a leading non-letter gets the prefix "w-",
// and a name longer than 63 characters is cut to 54 and suffixed with 8 hex
// digits of its hash, so distinct long names stay distinct.
func dnsLabel(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if out == "" || out[0] < 'a' || out[0] > 'z' {
		out = "w-" + out
		out = strings.TrimRight(out, "-")
	}
	if len(out) > 63 {
		out = strings.TrimRight(out[:54], "-") + "-" + shortHash(s)
	}
	return out
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
