package suites

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// toolSettings are the clients' parameters: how long each runs.
type toolSettings struct {
	iperfSeconds    int // iperf3 -t
	sockperfSeconds int // sockperf -t
	wrkSeconds      int // wrk -d
	wrkConns        int // wrk -c: connections kept open at once
	sockperfMsg     int // sockperf -m: message size, bytes
	quick           bool
}

var (
	fullTools  = toolSettings{iperfSeconds: 4, sockperfSeconds: 3, wrkSeconds: 3, wrkConns: 16, sockperfMsg: 64}
	quickTools = toolSettings{iperfSeconds: 1, sockperfSeconds: 1, wrkSeconds: 1, wrkConns: 16, sockperfMsg: 64, quick: true}
)

func (t toolSettings) describe() string {
	quickNote := ""
	if t.quick {
		quickNote = " Quick run: the round trip (sockperf sleeps 2 s after its warm-up whatever -t says), kernel-vxlan-offload and kernel-veth are measured in the first round only."
	}
	return fmt.Sprintf("throughput: `iperf3 -c SERVER -t %d -J` (one TCP stream, default settings; figure = end.sum_received.bits_per_second); "+
		"round trip: `sockperf ping-pong --tcp -i SERVER -t %d -m %d --full-rtt` against `sockperf server --tcp` (one connection, one %d-byte message each way at a time; figure = sockperf's percentile 50.000 of the round-trip times, after its 400 ms warm-up); "+
		"connections/s: `wrk -t1 -c%d -d%ds -H 'Connection: close' http://SERVER:%d/` against `sdnprobe http-serve` (Go net/http, 3-byte body; every request a new TCP connection; figure = wrk's Requests/sec, failing on any socket error or non-2xx answer); "+
		"CPU per GB: utime+stime of both hosts' ovs-vswitchd (/proc/PID/stat, all threads) across the iperf3 run ÷ its bytes received. "+
		"One server of each per variant and MTU, started at setup.%s",
		t.iperfSeconds, t.sockperfSeconds, t.sockperfMsg, t.sockperfMsg, t.wrkConns, t.wrkSeconds, httpPort, quickNote)
}

// transfer is one iperf3 run's result.
type transfer struct {
	gbps  float64
	bytes int64
}

// iperf runs one iperf3 client from e's client namespace. A refused
// connection (the server still starting, or busy with the previous
// client's end) is retried for a few seconds.
func (t toolSettings) iperf(ctx context.Context, e endpoints) (transfer, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Duration(t.iperfSeconds+15)*time.Second)
		out, err := exec.CommandContext(cctx, "ip", "netns", "exec", e.clientNS,
			"iperf3", "-c", e.serverIP, "-p", strconv.Itoa(iperfPort), "-t", strconv.Itoa(t.iperfSeconds), "-J").Output()
		cancel()
		tr, perr := parseIperf(out)
		if perr == nil && err == nil {
			return tr, nil
		}
		if perr == nil {
			perr = err
		}
		if time.Now().After(deadline) || !strings.Contains(perr.Error(), "refused") || ctx.Err() != nil {
			return transfer{}, fmt.Errorf("iperf3 -c %s in %s: %w", e.serverIP, e.clientNS, perr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// parseIperf reads iperf3 -J output: end.sum_received's rate and bytes, or
// iperf3's own error.
func parseIperf(out []byte) (transfer, error) {
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				Bytes         int64   `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return transfer{}, fmt.Errorf("iperf3 output is not JSON: %v: %.200q", err, out)
	}
	if r.Error != "" {
		return transfer{}, errors.New(r.Error)
	}
	if r.End.SumReceived.BitsPerSecond <= 0 || r.End.SumReceived.Bytes <= 0 {
		return transfer{}, fmt.Errorf("iperf3 reported no received bits: %.200q", out)
	}
	return transfer{gbps: r.End.SumReceived.BitsPerSecond / 1e9, bytes: r.End.SumReceived.Bytes}, nil
}

// sockperf runs one sockperf ping-pong client over TCP from e's client
// namespace and returns the median round trip in µs.
func (t toolSettings) sockperf(ctx context.Context, e endpoints) (float64, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Duration(t.sockperfSeconds+15)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "ip", "netns", "exec", e.clientNS, "sockperf", "ping-pong", "--tcp",
		"-i", e.serverIP, "-p", strconv.Itoa(sockperfPort), "-t", strconv.Itoa(t.sockperfSeconds),
		"-m", strconv.Itoa(t.sockperfMsg), "--full-rtt").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("sockperf ping-pong to %s in %s: %w: %s", e.serverIP, e.clientNS, err, lastLines(out, 5))
	}
	v, err := parseSockperf(out)
	if err != nil {
		return 0, fmt.Errorf("sockperf ping-pong to %s in %s: %w", e.serverIP, e.clientNS, err)
	}
	return v, nil
}

var (
	sockperfP50   = regexp.MustCompile(`percentile 50\.000 =\s*([0-9.]+)`)
	sockperfError = regexp.MustCompile(`ERROR:[^\n]*`)
)

// parseSockperf returns the "percentile 50.000" of sockperf's output (µs),
// or its ERROR line (sockperf exits 0 even when it cannot connect).
func parseSockperf(out []byte) (float64, error) {
	if m := sockperfError.Find(out); m != nil {
		return 0, errors.New(string(m))
	}
	m := sockperfP50.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no \"percentile 50.000\" in its output: %s", lastLines(out, 5))
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("percentile 50.000 = %q", m[1])
	}
	return v, nil
}

// wrk runs wrk from e's client namespace, every request on a new
// connection, and returns the requests (= connections) per second.
func (t toolSettings) wrk(ctx context.Context, e endpoints) (float64, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Duration(t.wrkSeconds+15)*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s:%d/", e.serverIP, httpPort)
	out, err := exec.CommandContext(cctx, "ip", "netns", "exec", e.clientNS, "wrk", "-t1", "-c"+strconv.Itoa(t.wrkConns),
		"-d"+strconv.Itoa(t.wrkSeconds)+"s", "-H", "Connection: close", url).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk %s in %s: %w: %s", url, e.clientNS, err, lastLines(out, 5))
	}
	v, err := parseWrk(out)
	if err != nil {
		return 0, fmt.Errorf("wrk %s in %s: %w", url, e.clientNS, err)
	}
	return v, nil
}

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s*([0-9.]+)`)
	wrkSocket  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSummary = regexp.MustCompile(`(\d+) requests in`)
)

// parseWrk returns wrk's Requests/sec; socket errors or non-2xx answers
// make it an error (the rate would not be one of completed connections).
func parseWrk(out []byte) (float64, error) {
	if m := wrkSocket.FindSubmatch(out); m != nil {
		return 0, fmt.Errorf("socket errors (connect %s, read %s, write %s, timeout %s)", m[1], m[2], m[3], m[4])
	}
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		return 0, fmt.Errorf("%s non-2xx answers", m[1])
	}
	m := wrkRate.FindSubmatch(out)
	if m == nil || wrkSummary.Find(out) == nil {
		return 0, fmt.Errorf("no \"Requests/sec\" in its output: %s", lastLines(out, 5))
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("Requests/sec %q", m[1])
	}
	return v, nil
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU returns utime+stime (fields 14 and 15) of a /proc/PID/stat line.
func procCPU(stat []byte) (time.Duration, error) {
	j := bytes.LastIndexByte(stat, ')')
	if j < 0 {
		return 0, fmt.Errorf("/proc stat %.80q: no \")\"", stat)
	}
	f := strings.Fields(string(stat[j+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat %.80q: too few fields", stat)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: utime/stime: %w", err)
	}
	return time.Duration(u+s) * clockTick, nil
}

// lastLines is the last n lines of out, trimmed, without sockperf's colour
// escapes.
func lastLines(out []byte, n int) string {
	s := strings.ReplaceAll(strings.TrimSpace(string(out)), "\x1b[0m", "")
	s = regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(s, "")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
