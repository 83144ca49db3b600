package suites

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/integration/lab"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The change figure: one static workload's label changes through
// PolicyService.LabelWorkload, in cycles of three on the same workload
// (an endpoint of its home service H):
//
//  1. svc = H's neighbour N (the service svcLabNetworks further, in the
//     same network): H loses an endpoint, N gains one (2 groups);
//  2. svc removed: N loses it (1 group);
//  3. svc = H again: H gets it back (1 group);
//
// so the load is as declared after every cycle. Each change is timed
// from just before the call until StatusService.WaitRealized says every
// host realized the call's revision.

// changeState is what the change figure keeps across rounds.
type changeState struct {
	made    int             // changes so far, over every round
	all     []time.Duration // every change's time so far
	results []string        // the reconciler's results of the first cycle
}

// changeStep names the three changes of a cycle.
var changeStep = [3]string{"moved to another service", "label removed", "label put back"}

// changeRound makes sizes.changes changes and returns the round's p50
// and p99.
func (s *svcBench) changeRound(ctx context.Context, env *bench.Env) (map[string]float64, error) {
	var r loadResult
	for range s.sizes.changes {
		k := s.made
		took, rev, err := s.change(ctx, k)
		if err != nil {
			return nil, err
		}
		s.made++
		r.Latency = append(r.Latency, took)
		if k < len(changeStep) {
			s.noteReconciler(env, k, rev, took)
		}
	}
	s.all = append(s.all, r.Latency...)
	all := loadResult{Latency: s.all}
	env.Note("endpoint changes, all rounds", fmt.Sprintf("%d changes: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		len(s.all), all.Percentile(50), all.Percentile(99), all.Percentile(100)))
	env.Logf("endpoint changes: p50 %.1f ms, p99 %.1f ms, max %.1f ms", r.Percentile(50), r.Percentile(99), r.Percentile(100))
	return map[string]float64{figSvcChange50: r.Percentile(50), figSvcChange99: r.Percentile(99)}, nil
}

// changeTarget is change k's workload (a different one each cycle, spread
// over every service), its home service and the label change.
func (s *svcBench) changeTarget(k int) (network, name string, req *sdnv1.LabelWorkloadRequest) {
	n := s.sizes.services * s.sizes.endpoints
	j := (k / len(changeStep)) * 7919 % n // 7919 is prime: distinct workloads for n cycles
	home := j / s.sizes.endpoints
	req = &sdnv1.LabelWorkloadRequest{Network: svcNetwork(home % svcLabNetworks), Name: svcWorkload(j)}
	switch k % len(changeStep) {
	case 0:
		req.Set = map[string]string{"svc": svcName((home + svcLabNetworks) % s.sizes.services)}
	case 1:
		req.Remove = []string{"svc"}
	default:
		req.Set = map[string]string{"svc": svcName(home)}
	}
	return req.Network, req.Name, req
}

// change makes change k and returns how long until every host realized
// it, and its revision.
func (s *svcBench) change(ctx context.Context, k int) (time.Duration, uint64, error) {
	network, name, req := s.changeTarget(k)
	t0 := time.Now()
	res, err := sdnv1.NewPolicyServiceClient(s.conn).LabelWorkload(ctx, req)
	if err != nil {
		return 0, 0, fmt.Errorf("change %d (%s): label %s/%s: %w", k, changeStep[k%len(changeStep)], network, name, err)
	}
	if err := waitRealized(ctx, s.conn, res.GetRevision()); err != nil {
		return 0, 0, fmt.Errorf("change %d (%s) of %s/%s: %w", k, changeStep[k%len(changeStep)], network, name, err)
	}
	return time.Since(t0), res.GetRevision(), nil
}

// noteReconciler notes what each host's reconciler did for change k
// (revision rev), as its agent logged it.
func (s *svcBench) noteReconciler(env *bench.Env, k int, rev uint64, took time.Duration) {
	network, name, _ := s.changeTarget(k)
	var hosts []string
	for i := 1; i <= svcLabHosts; i++ {
		log, err := os.ReadFile(filepath.Join(s.lab.HostDir(i), "sdnd.log"))
		res := realizedResult(log, rev)
		if err != nil {
			res = err.Error()
		}
		hosts = append(hosts, fmt.Sprintf("%s: %s", lab.HostName(i), res))
	}
	s.results = append(s.results, fmt.Sprintf("%s/%s %s (revision %d, realized everywhere in %.1f ms): %s",
		network, name, changeStep[k%len(changeStep)], rev, float64(took)/float64(time.Millisecond), strings.Join(hosts, "; ")))
	env.Note("reconciler, first changes", strings.Join(s.results, " | "))
	env.Logf("change %d: %s", k, s.results[len(s.results)-1])
}

// realizedResult is the result the agent logged for its realize of
// revision rev (node/agent through datapath/host: msg="realized desired
// state" revision=N result="..."), or why there is none.
func realizedResult(log []byte, rev uint64) string {
	want := fmt.Sprintf(" revision=%d ", rev)
	for _, line := range strings.Split(string(log), "\n") {
		if !strings.Contains(line, `msg="realized desired state"`) || !strings.Contains(line+" ", want) {
			continue
		}
		i := strings.Index(line, " result=")
		if i < 0 {
			return "no result in " + line
		}
		q, err := strconv.QuotedPrefix(line[i+len(" result="):])
		if err != nil {
			return "unreadable result in " + line
		}
		text, _ := strconv.Unquote(q)
		return text
	}
	return fmt.Sprintf("no realize of revision %d logged (realized with a later one, or nothing changed)", rev)
}
