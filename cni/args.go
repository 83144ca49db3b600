package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// argsError is a CNI "invalid environment variables" error about CNI_ARGS.
func argsError(format string, args ...any) *types.Error {
	return types.NewError(types.ErrInvalidEnvironmentVariables, "sdn: CNI_ARGS: "+fmt.Sprintf(format, args...), "")
}

// Args is what the plugin takes from CNI_ARGS.
type Args struct {
	Network string // SDN_NETWORK
	Name    string // SDN_NAME
	IP      string // IP, without a prefix length
	MAC     string // MAC
	// NamedPorts from SDN_NAMED_PORTS ("http:tcp/8080,dns:udp/53"); nil
	// when absent.
	NamedPorts []*sdnv1.NamedPort
	PodNS      string // K8S_POD_NAMESPACE
	Pod        string // K8S_POD_NAME
	PodUID     bool   // K8S_POD_UID is present: a Kubernetes pod
	// NomadAlloc, NomadTask, NomadGroup: NOMAD_ALLOC_ID, NOMAD_TASK_NAME,
	// NOMAD_GROUP_NAME, for the workload's name.
	NomadAlloc, NomadTask, NomadGroup string
	Labels                            map[string]string
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
	pairs, ignoreUnknown, err := splitArgs(s)
	if err != nil {
		return nil, err
	}
	a := &Args{Labels: map[string]string{}}
	var nomadJobID string
	for _, p := range pairs {
		switch k, v := p.k, p.v; {
		case k == "NOMAD_JOB_ID":
			nomadJobID = v
		case sdnArg[k] != nil:
			if err := sdnArg[k](a, v); err != nil {
				return nil, argsError("%s=%q%v", k, v, err)
			}
		case k == "K8S_POD_NAMESPACE":
			a.PodNS = v
			a.label(labelK8sNamespace, k, v)
		case k == "K8S_POD_NAME":
			a.Pod = v
			a.label(labelK8sPod, k, v)
		case nomadLabels[k] != "":
			a.label(nomadLabels[k], k, v)
			a.nomad(k, v)
		case strings.HasPrefix(k, "K8S_"), strings.HasPrefix(k, "NOMAD_"):
			// Runtime metadata: K8S_POD_INFRA_CONTAINER_ID, ...
		default:
			if err := plainLabel(k, v); err != nil {
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

// argPair is one KEY=VALUE of CNI_ARGS.
type argPair struct{ k, v string }

// splitArgs splits CNI_ARGS into its pairs, IgnoreUnknown taken out.
func splitArgs(s string) (pairs []argPair, ignoreUnknown bool, err error) {
	for part := range strings.SplitSeq(s, ";") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || k == "" {
			return nil, false, argsError("%q is not KEY=VALUE", part)
		}
		if !strings.EqualFold(k, "IgnoreUnknown") {
			pairs = append(pairs, argPair{k, v})
			continue
		}
		switch strings.ToLower(v) {
		case "1", "true":
			ignoreUnknown = true
		case "0", "false", "":
		default:
			return nil, false, argsError("IgnoreUnknown=%q: want 1, true, 0 or false", v)
		}
	}
	return pairs, ignoreUnknown, nil
}

// sdnArg parses the CNI_ARGS sdn itself defines into Args; an error reads
// well right after `KEY="VALUE"` (" is not …", ": …").
var sdnArg = map[string]func(a *Args, v string) error{
	"SDN_NETWORK": func(a *Args, v string) error {
		if err := model.ValidateName(v); err != nil {
			return fmt.Errorf(" is not a valid sdn network name: %v", err)
		}
		a.Network = v
		return nil
	},
	"SDN_NAME": func(a *Args, v string) error {
		if err := model.ValidateName(v); err != nil {
			return fmt.Errorf(" is not a valid workload name: %v", err)
		}
		a.Name = v
		return nil
	},
	"IP": func(a *Args, v string) (err error) {
		if a.IP, err = parseIP(v); err != nil {
			return fmt.Errorf(": %v", err)
		}
		return nil
	},
	"MAC": func(a *Args, v string) error {
		mac, err := net.ParseMAC(v)
		if err != nil || len(mac) != 6 {
			return errors.New(" is not an Ethernet MAC address (e.g. 0a:58:0a:80:00:09)")
		}
		a.MAC = mac.String()
		return nil
	},
	"K8S_POD_UID": func(a *Args, v string) error {
		a.PodUID = v != ""
		return nil
	},
	"SDN_NAMED_PORTS": func(a *Args, v string) (err error) {
		if a.NamedPorts, err = parseNamedPortList(v); err != nil {
			return fmt.Errorf(": %v", err)
		}
		return nil
	},
}

// plainLabel checks a CNI_ARGS pair sdn does not know as a label.
func plainLabel(k, v string) error {
	if err := model.ValidateLabelKey(k); err != nil {
		return err
	}
	if err := model.ValidateLabelValue(v); err != nil {
		return fmt.Errorf("value %q: %v", v, err)
	}
	return nil
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

// nomad keeps the Nomad args the workload's name is made of.
func (a *Args) nomad(k, v string) {
	switch k {
	case "NOMAD_ALLOC_ID":
		a.NomadAlloc = v
	case "NOMAD_TASK_NAME":
		a.NomadTask = v
	case "NOMAD_GROUP_NAME":
		a.NomadGroup = v
	}
}

// parseIP reads a requested address, "10.128.0.9" or "10.128.0.9/23" (the
// CNI conventions allow a prefix length; the host's block decides it).
func parseIP(s string) (string, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("not an IP address (e.g. 10.128.0.9 or 10.128.0.9/23)")
	}
	return a.String(), nil
}

// workloadName names the workload (package comment, "Names"): SDN_NAME;
// a Kubernetes pod (K8S_POD_NAMESPACE and K8S_POD_NAME differ, or
// K8S_POD_UID is present) "<namespace>-<pod>"; a Podman container (only
// K8S_POD_NAME, or namespace and name equal) its name, unique only on its
// host, so perHost asks the agent to append "-<host>"; a Nomad allocation
// "<task or group>-<first 8 of NOMAD_ALLOC_ID>"; otherwise the first 12
// characters of the container id. Made a valid DNS label.
func workloadName(containerID string, a *Args) (name string, perHost bool) {
	switch {
	case a.Name != "":
		return a.Name, false
	case a.Pod != "" && a.PodNS != "" && (a.PodNS != a.Pod || a.PodUID):
		return dnsLabel(a.PodNS + "-" + a.Pod), false
	case a.Pod != "" && a.PodUID:
		return dnsLabel(a.Pod), false
	case a.Pod != "":
		return dnsLabel(a.Pod), true
	case a.NomadAlloc != "":
		who := a.NomadTask
		if who == "" {
			who = a.NomadGroup
		}
		id := a.NomadAlloc
		if len(id) > 8 {
			id = id[:8]
		}
		if who == "" {
			return dnsLabel("alloc-" + id), false
		}
		return dnsLabel(who + "-" + id), false
	}
	id := containerID
	if len(id) > 12 {
		id = id[:12]
	}
	return dnsLabel(id), false
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
