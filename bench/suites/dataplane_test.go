package suites

import (
	"strings"
	"testing"
)

func TestIperfGbps(t *testing.T) {
	got, err := iperfGbps([]byte(`{"start":{},"end":{"sum_sent":{"bits_per_second":9.9e9},"sum_received":{"bits_per_second":2.5e9}}}`))
	if err != nil || got != 2.5 {
		t.Errorf("iperfGbps = %v, %v; want 2.5", got, err)
	}
	if _, err := iperfGbps([]byte(`{"start":{},"end":{},"error":"unable to connect to server: Connection refused"}`)); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("iperf3 error: got %v", err)
	}
	if _, err := iperfGbps([]byte(`{"end":{}}`)); err == nil {
		t.Error("no received bits: want an error")
	}
	if _, err := iperfGbps([]byte("iperf3: error")); err == nil {
		t.Error("not JSON: want an error")
	}
}
