package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

func TestRuntimeFields(t *testing.T) {
	const base = `{"cniVersion":"1.1.0","name":"n","type":"sdn","network":"proj1",`
	for _, tc := range []struct {
		name, conf, args string
		check            func(*sdnv1.CNIRequest) bool
		wantErr          string
	}{
		{name: "all capabilities",
			conf: base + `"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"TCP","hostIP":"0.0.0.0"},{"hostPort":53,"containerPort":53,"protocol":"udp","hostIP":"198.18.0.1"}],` +
				`"bandwidth":{"ingressRate":1000000,"ingressBurst":100000,"egressRate":2000000,"egressBurst":200000},"ips":["10.128.0.9/23"],"mac":"0A:58:0A:80:00:09"}}`,
			check: func(r *sdnv1.CNIRequest) bool {
				pm := r.PortMappings
				return len(pm) == 2 && pm[0].HostPort == 8080 && pm[0].Protocol == "tcp" && pm[0].HostIp == "" && pm[1].HostIp == "198.18.0.1" &&
					r.Bandwidth.GetEgressBurst() == 200000 && r.Ip == "10.128.0.9" && r.Mac == "0a:58:0a:80:00:09"
			}},
		{name: "capabilities over CNI_ARGS", args: "IP=10.128.0.7;MAC=0a:58:0a:80:00:07",
			conf: base + `"args":{"cni":{"ips":["10.128.0.8"],"labels":[{"key":"tier","value":"db"},{"key":"app","value":"ignored"}]}},"runtimeConfig":{"mac":"0a:58:0a:80:00:09"}}`,
			check: func(r *sdnv1.CNIRequest) bool {
				return r.Ip == "10.128.0.8" && r.Mac == "0a:58:0a:80:00:09" && r.Labels["tier"] == "db" && r.Labels["app"] == "web"
			}},
		{name: "CNI_ARGS alone", args: "IP=10.128.0.7;MAC=0a:58:0a:80:00:07", conf: base + `"runtimeConfig":{}}`,
			check: func(r *sdnv1.CNIRequest) bool {
				return r.Ip == "10.128.0.7" && r.Mac == "0a:58:0a:80:00:07" && r.PortMappings == nil && r.Bandwidth == nil
			}},
		{name: "two ips", conf: base + `"runtimeConfig":{"ips":["10.128.0.8","10.128.0.9"]}}`, wantErr: `"runtimeConfig.ips": 2 addresses requested (10.128.0.8, 10.128.0.9); sdn gives a workload one address`},
		{name: "bad port", conf: base + `"runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80}]}}`, wantErr: `"runtimeConfig.portMappings": entry 1: hostPort 0`},
		{name: "sctp", conf: base + `"runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80,"protocol":"sctp"}]}}`, wantErr: `protocol "sctp" is not tcp or udp`},
		{name: "bad bandwidth", conf: base + `"runtimeConfig":{"bandwidth":{"ingressRate":1000000}}}`, wantErr: `"runtimeConfig.bandwidth": ingress rate 1000000 and burst 0`},
		{name: "bad mac", conf: base + `"runtimeConfig":{"mac":"nope"}}`, wantErr: `"runtimeConfig.mac": "nope" is not an Ethernet MAC address`},
		{name: "not an object", conf: base + `"runtimeConfig":{"portMappings":7}}`, wantErr: `"runtimeConfig"`},
	} {
		conf, err := parseConf([]byte(tc.conf))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		args, err := parseArgs("app=web;" + tc.args)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		req, err := request("ADD", "c1", "/n", "eth0", conf, args)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = runtimeFields(req, conf)
		if tc.wantErr != "" {
			var ce *types.Error
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &ce) || ce.Code != types.ErrInvalidNetworkConfig {
				t.Errorf("%s: %v; want code 7 and %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !tc.check(req) {
			t.Errorf("%s: %v, request %v", tc.name, err, req)
		}
	}
}

func TestValidAttachments(t *testing.T) {
	for _, tc := range []struct {
		conf string
		want string
		ok   bool
	}{
		{`{"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"},{"containerID":"b","ifname":"eth1"}]}`, "a/eth0,b/eth1", true},
		{`{"cni.dev/attachments":[{"containerID":"a","ifname":"eth0"}]}`, "a/eth0", true},
		{`{"cni.dev/valid-attachments":[]}`, "", true},
		{`{"cni.dev/valid-attachments":null}`, "", true},
		{`{"name":"n"}`, "", false},
	} {
		conf, err := parseConf([]byte(tc.conf))
		if err != nil {
			t.Fatal(err)
		}
		list, ok, err := validAttachments(conf)
		var got []string
		for _, a := range list {
			got = append(got, a.ContainerId+"/"+a.Ifname)
		}
		if err != nil || ok != tc.ok || strings.Join(got, ",") != tc.want {
			t.Errorf("%s: %v %v %v", tc.conf, got, ok, err)
		}
	}
	conf, _ := parseConf([]byte(`{"cni.dev/valid-attachments":{"x":1}}`))
	if _, _, err := validAttachments(conf); err == nil || !strings.Contains(err.Error(), `"cni.dev/valid-attachments"`) {
		t.Errorf("a broken list: %v", err)
	}
}
