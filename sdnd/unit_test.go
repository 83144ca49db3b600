package main

import (
	"os"
	"strings"
	"testing"
)

// TestExampleConfig: the example installed beside the systemd unit
// (/etc/sdn/sdnd.hcl.example) is a valid agent configuration, and the unit
// runs sdnd with the config file it documents.
func TestExampleConfig(t *testing.T) {
	src, err := os.ReadFile("sdnd.hcl.example")
	if err != nil {
		t.Fatal(err)
	}
	const path = "/etc/sdn/sdnd.hcl"
	o, err := parseFlags([]string{"--config", path}, testEnv(map[string]string{path: string(src)}))
	if err != nil {
		t.Fatalf("sdnd --config %s (the example): %v", path, err)
	}
	if !o.agent || o.server || o.cniSocket != defaultCNISocket || o.nodeName != "host1" {
		t.Errorf("the example: agent %v, server %v, cni socket %q, node %q; want an agent host1 on %s",
			o.agent, o.server, o.cniSocket, o.nodeName, defaultCNISocket)
	}
	unit, err := os.ReadFile("sdnd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=@BINDIR@/sdnd --config " + path + " $SDND_ARGS", "ConditionPathExists=" + path, "RuntimeDirectory=sdn"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("sdnd.service lacks %q", want)
		}
	}
	if !strings.HasPrefix(defaultCNISocket, "/run/sdn/") {
		t.Errorf("the default CNI socket %s is not under the unit's RuntimeDirectory /run/sdn", defaultCNISocket)
	}
}
