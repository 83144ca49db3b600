package suites

import "testing"

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tsdnd\nVmPeak:\t 2000000 kB\nVmHWM:\t   123456 kB\nVmRSS:\t  100000 kB\n"
	if kb, err := parseVmHWM([]byte(status)); err != nil || kb != 123456 {
		t.Errorf("parseVmHWM = %d, %v; want 123456", kb, err)
	}
	for _, bad := range []string{"Name:\tsdnd\n", "VmHWM:\t12 MB\n", "VmHWM:\tx kB\n"} {
		if _, err := parseVmHWM([]byte(bad)); err == nil {
			t.Errorf("parseVmHWM(%q) succeeded", bad)
		}
	}
}

func TestMemPlacementSpreads(t *testing.T) {
	const n = memHosts * memNetworks * 4
	perHost := map[int]int{}
	pairs := map[[2]int]int{}
	for i := range n {
		h, nw := memPlacement(i)
		if h < 0 || h >= memHosts || nw < 0 || nw >= memNetworks {
			t.Fatalf("memPlacement(%d) = %d, %d out of range", i, h, nw)
		}
		perHost[h]++
		pairs[[2]int{h, nw}]++
	}
	if len(perHost) != memHosts || len(pairs) != memHosts*memNetworks {
		t.Errorf("%d hosts and %d host/network pairs used, want %d and %d", len(perHost), len(pairs), memHosts, memHosts*memNetworks)
	}
	for p, c := range pairs {
		if c != 4 {
			t.Errorf("pair %v got %d workloads, want 4", p, c)
		}
	}
}
