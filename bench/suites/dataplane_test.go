package suites

import (
	"strings"
	"testing"
	"time"
)

func TestParseIperf(t *testing.T) {
	got, err := parseIperf([]byte(`{"start":{},"end":{"sum_sent":{"bits_per_second":9.9e9},"sum_received":{"bytes":1250000000,"bits_per_second":2.5e9}}}`))
	if err != nil || got.gbps != 2.5 || got.bytes != 1250000000 {
		t.Errorf("parseIperf = %+v, %v; want 2.5 Gbit/s, 1.25e9 bytes", got, err)
	}
	if _, err := parseIperf([]byte(`{"start":{},"end":{},"error":"unable to connect to server: Connection refused"}`)); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("iperf3 error: got %v", err)
	}
	if _, err := parseIperf([]byte(`{"end":{}}`)); err == nil {
		t.Error("no received bits: want an error")
	}
	if _, err := parseIperf([]byte("iperf3: error")); err == nil {
		t.Error("not JSON: want an error")
	}
}

// sockperfOut is sockperf 3.7's ping-pong output, colour escapes included.
const sockperfOut = "sockperf: \x1b[2;35m== version #3.7-no.git == \x1b[0m\n" +
	"sockperf: Summary: Round trip is 469.711 usec\n" +
	"sockperf: \x1b[2;35mTotal 1170 observations\x1b[0m; each percentile contains 11.70 observations\n" +
	"sockperf: ---> <MAX> observation = 7562.318\n" +
	"sockperf: ---> percentile 99.000 = 1186.107\n" +
	"sockperf: ---> percentile 50.000 =  410.153\n" +
	"sockperf: ---> <MIN> observation =  200.844\n"

func TestParseSockperf(t *testing.T) {
	if got, err := parseSockperf([]byte(sockperfOut)); err != nil || got != 410.153 {
		t.Errorf("parseSockperf = %v, %v; want 410.153", got, err)
	}
	refused := "sockperf: \x1b[2;35m== version #3.7-no.git == \x1b[0m\nsockperf: ERROR: Can`t connect socket (errno=111 Connection refused)\n"
	if _, err := parseSockperf([]byte(refused)); err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("refused: got %v, want sockperf's error", err)
	}
	if _, err := parseSockperf([]byte("sockperf: Test ended\n")); err == nil {
		t.Error("no percentile: want an error")
	}
}

func TestParseWrk(t *testing.T) {
	ok := `Running 3s test @ http://10.128.2.4:8080/
  1 threads and 16 connections
  7670 requests in 3.00s, 1.01MB read
Requests/sec:   2552.65
Transfer/sec:    343.10KB
`
	if got, err := parseWrk([]byte(ok)); err != nil || got != 2552.65 {
		t.Errorf("parseWrk = %v, %v; want 2552.65", got, err)
	}
	sockErr := strings.Replace(ok, "Requests/sec", "  Socket errors: connect 16, read 0, write 0, timeout 0\nRequests/sec", 1)
	if _, err := parseWrk([]byte(sockErr)); err == nil || !strings.Contains(err.Error(), "connect 16") {
		t.Errorf("socket errors: got %v", err)
	}
	non2xx := strings.Replace(ok, "Requests/sec", "  Non-2xx or 3xx responses: 5\nRequests/sec", 1)
	if _, err := parseWrk([]byte(non2xx)); err == nil {
		t.Error("non-2xx: want an error")
	}
	if _, err := parseWrk([]byte("unable to connect to 10.0.0.1:8080 Connection refused\n")); err == nil {
		t.Error("no rate: want an error")
	}
}

func TestProcCPU(t *testing.T) {
	// A comm with spaces and parentheses, as /proc allows.
	stat := "4242 (ovs (vswitchd)) S 1 4242 4242 0 -1 4194624 1000 0 0 0 150 75 0 0 20 0 5 0 12345 1000000 500 18446744073709551615\n"
	got, err := procCPU([]byte(stat))
	if err != nil || got != 2250*time.Millisecond {
		t.Errorf("procCPU = %v, %v; want 2.25s (150+75 ticks)", got, err)
	}
	if _, err := procCPU([]byte("4242 (x) S 1")); err == nil {
		t.Error("short stat: want an error")
	}
}

func TestKernelNetsInProjectRange(t *testing.T) {
	seen := map[string]bool{}
	for k := range 2 {
		v, a, b, c, d := kernelNets(k)
		for _, n := range []string{v, a, b, c, d} {
			if !strings.HasPrefix(n, "198.18.") && !strings.HasPrefix(n, "198.19.") || seen[n] {
				t.Errorf("kernelNets(%d): %s outside 198.18.0.0/15 or used twice", k, n)
			}
			seen[n] = true
		}
	}
}
