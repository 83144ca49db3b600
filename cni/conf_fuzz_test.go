package main

// FuzzConf feeds the plugin's parsers arbitrary network configurations,
// CNI_ARGS and container ids. `make fuzz` runs it for long, `make test`
// briefly; the corpus is under testdata/fuzz/FuzzConf.

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// FuzzConf checks, for any input: parseConf, parseArgs and request never
// panic; what they refuse is a CNI error with the spec's code (7 for the
// network configuration, 4 for CNI_ARGS) and a message that starts with
// "sdn: "; what they accept is what the agent takes: an absolute socket
// path that fits a unix socket address, valid names and labels, and a
// workload name that is a valid DNS label for any container id. DEL is
// never blocked by CNI_ARGS or a bad network (prepare gives it empty args).
func FuzzConf(f *testing.F) {
	for _, c := range []struct{ conf, args, cid string }{
		{`{"cniVersion":"1.0.0","name":"sdn-proj1","type":"sdn","network":"proj1","socket":"/run/x.sock"}`, "SDN_NETWORK=proj2;SDN_NAME=web1;IP=10.128.0.9", "0123456789abcdef0123"},
		{`{"cniVersion":"1.0.0","name":"n","type":"sdn","network":"p","runtimeConfig":{"x":1},"prevResult":{}}`, "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1-2", "e2e0123456789"},
		{`{"cniVersion":"1.0.0","name":"n","type":"sdn"}`, "IgnoreUnknown=true;NOMAD_ALLOC_ID=3f2a9c1e-8b7d-4c1a-9e2f-0123456789ab;NOMAD_GROUP_NAME=cache;NOMAD_JOB_ID=redis;NOMAD_NAMESPACE=default;NOMAD_TASK_NAME=redis;NOMAD_OTHER=x", "ABC_def.GH"},
		{`{"cniVersion":`, "app=web;team.example.com/tier=db;empty=", ""},
		{`{"name":"n","network":5}`, "NOMAD_JOB_ID=batch/periodic-1;NOMAD_JOB_NAME=batch", "x"},
		{`{"name":"n","network":"p","socket":"cni.sock"}`, "bad key=1;IgnoreUnknown=1;app=web", "short"},
		{`{"cniVersion":"1.1.0","name":"sdn-x","type":"sdn","network":"x","socket":"/tmp/sdn-cni-test/cni.sock"}`, "app=web app", "9"},
		{`{"cniVersion":"1.0.0","name":"n","type":"sdn","network":"Proj_1"}`, "IgnoreUnknown=maybe;K8S_POD_NAME=" + strings.Repeat("p", 70), "Ünïcode"},
		{`null`, "app=web;oops", strings.Repeat("x-", 50)},
	} {
		f.Add([]byte(c.conf), c.args, c.cid)
	}
	f.Fuzz(func(t *testing.T, stdin []byte, cniArgs, containerID string) {
		conf, err := parseConf(stdin)
		if err != nil {
			checkCNIError(t, "parseConf", err, types.ErrInvalidNetworkConfig)
			return
		}
		if !strings.HasPrefix(conf.Socket, "/") || len(conf.Socket) > maxSocketPath {
			t.Fatalf("accepted socket %q", conf.Socket)
		}
		args, argsErr := parseArgs(cniArgs)
		if argsErr != nil {
			checkCNIError(t, "parseArgs", argsErr, types.ErrInvalidEnvironmentVariables)
		} else {
			checkArgs(t, args)
		}
		for _, cmd := range []string{"ADD", "CHECK", "DEL"} {
			a := args
			if argsErr != nil {
				if cmd != "DEL" {
					continue
				}
				a = &Args{} // as prepare does
			}
			req, err := request(cmd, containerID, "/run/netns/x", "eth0", conf, a)
			if err != nil {
				if cmd == "DEL" {
					t.Fatalf("DEL refused: %v", err)
				}
				checkCNIError(t, "request", err, types.ErrInvalidNetworkConfig)
				continue
			}
			checkRequest(t, cmd, req)
		}
	})
}

// checkCNIError fails t unless err is a CNI error with code and a message
// naming the plugin.
func checkCNIError(t *testing.T, what string, err error, code uint) {
	t.Helper()
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != code || !strings.HasPrefix(ce.Msg, "sdn: ") {
		t.Fatalf("%s: %#v; want a CNI error with code %d and a message starting \"sdn: \"", what, err, code)
	}
}

func checkArgs(t *testing.T, a *Args) {
	t.Helper()
	if a.Labels == nil {
		t.Fatal("parseArgs returned nil labels")
	}
	for what, name := range map[string]string{"SDN_NETWORK": a.Network, "SDN_NAME": a.Name} {
		if name != "" {
			if err := model.ValidateName(name); err != nil {
				t.Fatalf("accepted %s=%q: %v", what, name, err)
			}
		}
	}
	checkLabels(t, a.Labels)
}

func checkRequest(t *testing.T, cmd string, req *sdnv1.CNIRequest) {
	t.Helper()
	if err := model.ValidateName(req.Name); err != nil {
		t.Fatalf("%s: workload name %q: %v", cmd, req.Name, err)
	}
	if req.Network != "" || cmd != "DEL" {
		if err := model.ValidateName(req.Network); err != nil {
			t.Fatalf("%s: network %q: %v", cmd, req.Network, err)
		}
	}
	checkLabels(t, req.Labels)
}

func checkLabels(t *testing.T, labels map[string]string) {
	t.Helper()
	for k, v := range labels {
		if err := model.ValidateLabelKey(k); err != nil {
			t.Fatalf("label key %q: %v", k, err)
		}
		if err := model.ValidateLabelValue(v); err != nil {
			t.Fatalf("label %s=%q: %v", k, v, err)
		}
	}
}
