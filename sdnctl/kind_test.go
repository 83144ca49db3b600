package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/model"
)

func TestParseKind(t *testing.T) {
	all := []model.Kind{model.KindCluster, model.KindNode, model.KindNetwork, model.KindWorkload}
	tests := []struct {
		in   string
		want model.Kind
	}{
		{"cluster", "cluster"},
		{"node", "node"},
		{"nodes", "node"},
		{"network", "network"},
		{"networks", "network"},
		{"Networks", "network"},
		{"workload", "workload"},
		{"workloads", "workload"},
	}
	for _, tt := range tests {
		got, err := parseKind(tt.in, all...)
		if err != nil || got != tt.want {
			t.Errorf("parseKind(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"nets", "clusters", "net", "", "pods"} {
		_, err := parseKind(bad, all...)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("parseKind(%q) = %v; want a usage error", bad, err)
			continue
		}
		if want := "valid kinds: cluster, nodes, networks, workloads"; !strings.Contains(err.Error(), want) {
			t.Errorf("parseKind(%q) error %q does not list the valid kinds (%q)", bad, err, want)
		}
	}
}

func TestParseDeleteTarget(t *testing.T) {
	tests := []struct {
		kind, name string
		wantKind   model.Kind
		wantErr    string
	}{
		{kind: "network", name: "proj2", wantKind: "network"},
		{kind: "networks", name: "proj2", wantKind: "network"},
		{kind: "node", name: "host3", wantKind: "node"},
		{kind: "workload", name: "proj1/db1", wantKind: "workload"},
		{kind: "workload", name: "db1", wantErr: "network/name"},
		{kind: "workload", name: "proj1/", wantErr: "network/name"},
		{kind: "workload", name: "a/b/c", wantErr: "network/name"},
		{kind: "cluster", name: "x", wantErr: "valid kinds: networks, workloads, nodes"},
		{kind: "network", name: "", wantErr: "empty network name"},
	}
	for _, tt := range tests {
		kind, name, err := parseDeleteTarget(tt.kind, tt.name)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseDeleteTarget(%q, %q) error = %v; want one containing %q", tt.kind, tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || kind != tt.wantKind || name != tt.name {
			t.Errorf("parseDeleteTarget(%q, %q) = %q, %q, %v; want %q, %q", tt.kind, tt.name, kind, name, err, tt.wantKind, tt.name)
		}
	}
}
