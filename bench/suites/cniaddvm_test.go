package suites

import (
	"strings"
	"testing"
)

// The figures say they are a TCG VM's, and name concurrency and load as
// cniadd's do; the goals' figures exist in both batches.
func TestCNIVMFigureNames(t *testing.T) {
	s := CNIAddVM()
	if len(s.Batches) != 2 {
		t.Fatalf("%d batches, want unloaded and loaded", len(s.Batches))
	}
	want := cniFigure("ADD latency p99", 10, true) + " (1 VM, OVS kernel datapath, "
	found := false
	for _, b := range s.Batches {
		for _, f := range b.Figures {
			if !strings.Contains(f.Name, "OVS kernel datapath") || len(f.Ratios) != 1 || f.Ratios[0] != [2]string{"sdn", "bridge"} {
				t.Errorf("figure %q, ratios %v", f.Name, f.Ratios)
			}
			found = found || strings.HasPrefix(f.Name, want)
		}
	}
	if !found {
		t.Errorf("no figure %q…", want)
	}
	if !strings.Contains(cniVMFigure("attachments/s", 1, false, 0), "no other workload") {
		t.Errorf("unloaded figure: %q", cniVMFigure("attachments/s", 1, false, 0))
	}
}

// The sizes are cniadd's: the full load is the 3,000, the quick
// one 100.
func TestCNIVMSizes(t *testing.T) {
	if fullCNISizes.load != 3000 || fullCNISizes.round[1] != 40 || fullCNISizes.round[10] != 100 {
		t.Errorf("full sizes %+v", fullCNISizes)
	}
	if quickCNISizes.load != 100 || quickCNISizes.round[1] != 8 || quickCNISizes.round[10] != 20 {
		t.Errorf("quick sizes %+v", quickCNISizes)
	}
}

func TestCNIVMDriveCommand(t *testing.T) {
	d := &cniVMDriver{name: "bridge", prefix: "b", flags: "-driver bridge -host-ns cnibr"}
	got := cniVMDriveCommand(d, 41, 100, 10, true)
	want := "/opt/sdn/bin/cnidrive -driver bridge -host-ns cnibr -prefix b -first 41 -n 100 -c 10 -del"
	if got != want {
		t.Errorf("command\n%s\nwant\n%s", got, want)
	}
	if strings.HasSuffix(cniVMDriveCommand(d, 1, 250, 10, false), "-del") {
		t.Error("a load run DELs its containers")
	}
}

func TestLastStages(t *testing.T) {
	log := `level=INFO msg="workload added" ip=10.128.0.5 took=40ms stages="veth 10ms, port 20ms"
level=INFO msg="other"
level=INFO msg="workload added" ip=10.128.0.6 took=41ms stages="veth 11ms, port 21ms"
level=INFO msg="workload added" ip=10.128.0.7 took=42ms stages="veth 12ms, port 22ms"
`
	got := lastStages(log, 2)
	if len(got) != 2 || got[1] != `took=42ms stages="veth 12ms, port 22ms"` || !strings.HasPrefix(got[0], "took=41ms") {
		t.Errorf("lastStages: %q", got)
	}
}

func TestVMLoadState(t *testing.T) {
	if got := vmLoadState("900 MiB used, 1000 MiB available\n3002\n"); got != "900 MiB used, 1000 MiB available, 3002 kernel datapath ports" {
		t.Errorf("vmLoadState: %q", got)
	}
}

func TestLastRealize(t *testing.T) {
	log := `time=T level=INFO msg="realized desired state" revision=23 result="20 local workloads; ports: 1 added; took flows 259ms"
time=T level=INFO msg="workload added" took=389ms stages="veth 56ms"
time=T level=INFO msg="realized desired state" revision=24 result="21 local workloads; br-int flows: 4 added; ports: 1 added, 0 deleted; took flows 291ms"
time=T level=INFO msg="realized desired state" revision=25 result="20 local workloads; br-int flows: 0 added, 4 deleted; ports: 0 added, 1 deleted; took flows 200ms"
`
	if got := lastRealize(log); got != "21 local workloads; br-int flows: 4 added; ports: 1 added, 0 deleted; took flows 291ms" {
		t.Errorf("lastRealize: %q", got)
	}
	if got := lastRealize("no such line"); got != "" {
		t.Errorf("lastRealize without a realize: %q", got)
	}
}

// SDNBENCH_CNIVM_LOAD sets the load, and the loaded figures say it.
func TestCNIVMLoadEnv(t *testing.T) {
	if n, err := cniVMLoadEnv(""); n != 0 || err != nil {
		t.Errorf(`cniVMLoadEnv(""): %d, %v`, n, err)
	}
	if n, err := cniVMLoadEnv("500"); n != 500 || err != nil {
		t.Errorf(`cniVMLoadEnv("500"): %d, %v`, n, err)
	}
	for _, v := range []string{"0", "-3", "3k"} {
		if _, err := cniVMLoadEnv(v); err == nil {
			t.Errorf("cniVMLoadEnv(%q): no error", v)
		}
	}
	if got := cniVMFigure("ADD latency p99", 10, true, 500); !strings.HasPrefix(got, "ADD latency p99, concurrency 10, 500 workloads on the host (1 VM") {
		t.Errorf("figure with a load of 500: %q", got)
	}
	if got := cniVMFigure("ADD latency p99", 10, false, 500); !strings.Contains(got, "no other workload") {
		t.Errorf("unloaded figure with a load of 500: %q", got)
	}
}
