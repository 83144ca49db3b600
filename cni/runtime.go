package main

import (
	"encoding/json"
	"net"
	"net/netip"
	"strings"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// runtimeConfig is what a runtime passes for the capabilities the network
// config declares (the CNI conventions, "Well-known Capabilities",
// https://www.cni.dev/docs/conventions/): only the ones sdn implements are
// read; libcni passes only declared ones.
type runtimeConfig struct {
	PortMappings []portMapping `json:"portMappings"`
	Bandwidth    *bandwidth    `json:"bandwidth"`
	IPs          []string      `json:"ips"`
	MAC          string        `json:"mac"`
}

// portMapping is one "portMappings" entry as runtimes send it (CNI's
// portmap plugin's format; containerd's go-cni, Podman and Nomad alike).
type portMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP"`
}

// bandwidth is the "bandwidth" capability: rates in bits/s, bursts in bits.
type bandwidth struct {
	IngressRate  uint64 `json:"ingressRate"`
	IngressBurst uint64 `json:"ingressBurst"`
	EgressRate   uint64 `json:"egressRate"`
	EgressBurst  uint64 `json:"egressBurst"`
}

// argsCNI is the network config's "args": {"cni": {...}} (the CNI
// conventions, "args in network config"): requested addresses and labels.
type argsCNI struct {
	CNI struct {
		IPs    []string `json:"ips"`
		Labels []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"labels"`
	} `json:"cni"`
}

// runtimeFields fills the ADD request's capabilities from the network
// config: "ips" (one address; runtimeConfig's, else args.cni's, else
// CNI_ARGS IP=, as the conventions rank them), "mac" (over CNI_ARGS MAC=),
// "portMappings", "bandwidth", and args.cni labels (CNI_ARGS win on a
// clash). What does not parse is "invalid network config" (7).
func runtimeFields(req *sdnv1.CNIRequest, conf *NetConf) error {
	var rc runtimeConfig
	if len(conf.rawRuntime) > 0 && string(conf.rawRuntime) != "null" {
		if err := json.Unmarshal(conf.rawRuntime, &rc); err != nil {
			return confError("runtimeConfig", "%v", err)
		}
	}
	var ac argsCNI
	if len(conf.rawArgs) > 0 && string(conf.rawArgs) != "null" {
		if err := json.Unmarshal(conf.rawArgs, &ac); err != nil {
			return confError("args", "%v", err)
		}
	}
	for _, l := range ac.CNI.Labels {
		if err := model.ValidateLabelKey(l.Key); err != nil {
			return confError("args.cni.labels", "key %q: %v", l.Key, err)
		}
		if err := model.ValidateLabelValue(l.Value); err != nil {
			return confError("args.cni.labels", "%s=%q: %v", l.Key, l.Value, err)
		}
		if _, set := req.Labels[l.Key]; !set {
			if req.Labels == nil {
				req.Labels = map[string]string{}
			}
			req.Labels[l.Key] = l.Value
		}
	}
	for _, src := range []struct {
		field string
		ips   []string
	}{{"args.cni.ips", ac.CNI.IPs}, {"runtimeConfig.ips", rc.IPs}} {
		if err := applyIPs(req, src.field, src.ips); err != nil {
			return err
		}
	}
	if rc.MAC != "" {
		mac, err := net.ParseMAC(rc.MAC)
		if err != nil || len(mac) != 6 {
			return confError("runtimeConfig.mac", "%q is not an Ethernet MAC address", rc.MAC)
		}
		req.Mac = mac.String()
	}
	pms, err := portMappings(rc.PortMappings)
	if err != nil {
		return err
	}
	req.PortMappings = pms
	if b := rc.Bandwidth; b != nil {
		req.Bandwidth = &sdnv1.Bandwidth{IngressRate: b.IngressRate, IngressBurst: b.IngressBurst, EgressRate: b.EgressRate, EgressBurst: b.EgressBurst}
		if err := model.ValidateBandwidth(req.Bandwidth); err != nil {
			return confError("runtimeConfig.bandwidth", "%v", err)
		}
	}
	return nil
}

// applyIPs sets the requested address from an "ips" list: sdn gives a
// workload one address, so at most one.
func applyIPs(req *sdnv1.CNIRequest, field string, ips []string) error {
	switch len(ips) {
	case 0:
		return nil
	case 1:
	default:
		return confError(field, "%d addresses requested (%s); sdn gives a workload one address", len(ips), strings.Join(ips, ", "))
	}
	ip, err := parseIP(ips[0])
	if err != nil {
		return confError(field, "%q: %v", ips[0], err)
	}
	req.Ip = ip
	return nil
}

// portMappings converts and checks the "portMappings" capability. The
// protocol is lowercased ("" is tcp); a host address that is unspecified
// (0.0.0.0, ::) means every address, as "" does.
func portMappings(in []portMapping) ([]*sdnv1.PortMapping, error) {
	var out []*sdnv1.PortMapping
	for i, pm := range in {
		if pm.HostPort < 1 || pm.HostPort > 65535 || pm.ContainerPort < 1 || pm.ContainerPort > 65535 {
			return nil, confError("runtimeConfig.portMappings", "entry %d: hostPort %d, containerPort %d: ports are 1-65535", i+1, pm.HostPort, pm.ContainerPort)
		}
		hostIP := pm.HostIP
		if a, err := netip.ParseAddr(hostIP); err == nil && a.IsUnspecified() {
			hostIP = ""
		}
		out = append(out, &sdnv1.PortMapping{HostPort: uint32(pm.HostPort), ContainerPort: uint32(pm.ContainerPort),
			Protocol: strings.ToLower(pm.Protocol), HostIp: hostIP})
	}
	if err := model.ValidatePortMappings(out); err != nil {
		return nil, confError("runtimeConfig.portMappings", "%v", err)
	}
	return out, nil
}

// validAttachments reads GC's "cni.dev/valid-attachments" (libcni also
// sends it as "cni.dev/attachments", the spec's first spelling). ok is
// false when neither key is present: then GC must not assume that nothing
// is valid.
func validAttachments(conf *NetConf) ([]*sdnv1.CNIAttachment, bool, error) {
	raw := conf.rawValid
	field := "cni.dev/valid-attachments"
	if raw == nil {
		raw, field = conf.rawValidOld, "cni.dev/attachments"
	}
	if raw == nil {
		return nil, false, nil
	}
	var list []struct {
		ContainerID string `json:"containerID"`
		IfName      string `json:"ifname"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, false, confError(field, "want a list of {\"containerID\", \"ifname\"}: %v", err)
	}
	out := make([]*sdnv1.CNIAttachment, 0, len(list))
	for _, a := range list {
		out = append(out, &sdnv1.CNIAttachment{ContainerId: a.ContainerID, Ifname: a.IfName})
	}
	return out, true, nil
}
