package api

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/fsm"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// The state check (docs/design.md, "Integrity of the raft log"): every
// server applies the same log to the same deterministic FSM, so at one
// raft index they must hold the same records. The leader hashes its state
// at the index it applied and asks every other server for its hash at
// that index (StateHash, which waits until the server gets there); a server whose
// hash differs holds a state the others do not (a damaged state.db that
// still reads, a bug), and Status and Members say so, loudly, with what to
// do. A hash reads every record (about 11 ms of CPU for 100,000 objects
// and 10,000 revisions of history; state.BenchmarkHash100k), so it runs
// only every --state-check-interval (5 minutes) on the leader, when asked
// (`sdnctl status --check-state`: one at a time, and requests that
// waited for one to end share the next), and once when a server starts
// following a leader.

const (
	// checkWait bounds how long the leader waits for a server to reach
	// its revision and hash it.
	checkWait = 10 * time.Second
	// checkTries is how many comparisons one check makes while servers
	// pass the leader's index before they can hash it (a busy cluster).
	checkTries = 3
	// formatProbe is how often a leader asks the others which command
	// format they read, until all read format 2.
	formatProbe = 5 * time.Second
	// DefaultStateCheckInterval is sdnd's --state-check-interval.
	DefaultStateCheckInterval = 5 * time.Minute
)

// stateChecks is the leader's latest comparison; one runs at a time.
type stateChecks struct {
	mu   sync.Mutex
	last atomic.Pointer[sdnv1.StateCheckReport]
}

// StateHash is this server's hash of its state, now or at a raft index.
func (s *Server) StateHash(ctx context.Context, req *sdnv1.StateHashRequest) (*sdnv1.StateHashResponse, error) {
	start := time.Now()
	h, err := s.cluster.FSM().StateHash(ctx, req.AppliedIndex)
	var passed *fsm.IndexPassedError
	switch {
	case errors.As(err, &passed):
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	case err != nil && ctx.Err() != nil:
		return nil, status.Error(codes.DeadlineExceeded, err.Error())
	case err != nil:
		return nil, status.Errorf(codes.Internal, "hash the state: %v", err)
	}
	return &sdnv1.StateHashResponse{ServerId: s.cluster.ID(), Revision: h.Revision, AppliedIndex: h.AppliedIndex,
		SchemaVersion: h.Schema, HashVersion: state.HashVersion, Hash: h.Sum[:], Records: h.Records,
		TookMs: time.Since(start).Milliseconds()}, nil
}

// checkStates compares every server's state with this leader's, and
// keeps the result. One runs at a time: a request made at asked that
// waited for another to end gets the one that began after it, if any.
func (s *Server) checkStates(ctx context.Context, asked time.Time) (*sdnv1.StateCheckReport, error) {
	s.checks.mu.Lock()
	defer s.checks.mu.Unlock()
	if last := s.checks.last.Load(); last != nil && last.CheckedUnixMs > asked.UnixMilli() {
		return last, nil
	}
	var rep *sdnv1.StateCheckReport
	for range checkTries {
		var err error
		if rep, err = s.compareStates(ctx); err != nil {
			return nil, err
		}
		if !anyPassed(rep) {
			break
		}
	}
	s.checks.last.Store(rep)
	s.logCheck(rep)
	return rep, nil
}

// anyPassed reports whether a server went past the leader's index before
// it could hash it (worth another try).
func anyPassed(rep *sdnv1.StateCheckReport) bool {
	for _, sc := range rep.Servers {
		if sc.Result == sdnv1.StateCheckResult_STATE_CHECK_RESULT_NOT_COMPARED && strings.HasPrefix(sc.Detail, "went past") {
			return true
		}
	}
	return false
}

// compareStates hashes this leader's state now and asks every other
// server for its hash at the same raft index.
func (s *Server) compareStates(ctx context.Context) (*sdnv1.StateCheckReport, error) {
	if !s.cluster.IsLeader() {
		return nil, status.Error(codes.Unavailable, "this server stopped leading before it compared the servers' states; ask again")
	}
	mine, err := s.cluster.FSM().StateHash(ctx, 0)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "hash this server's state: %v", err)
	}
	ms, err := s.cluster.Members()
	if err != nil {
		return nil, toStatus(err)
	}
	rep := &sdnv1.StateCheckReport{CheckedUnixMs: s.now().UnixMilli(), LeaderId: s.cluster.ID(), Revision: mine.Revision,
		AppliedIndex: mine.AppliedIndex, LeaderHash: mine.Sum[:], Records: mine.Records}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, m := range ms {
		if m.ID == s.cluster.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := s.compareOne(ctx, m, mine)
			mu.Lock()
			rep.Servers = append(rep.Servers, sc)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(rep.Servers, func(i, j int) bool { return rep.Servers[i].Id < rep.Servers[j].Id })
	rep.Advice = checkAdvice(rep, ms)
	return rep, nil
}

// compareOne asks one server for its hash at the leader's raft index.
func (s *Server) compareOne(ctx context.Context, m cluster.Member, mine state.Hash) *sdnv1.ServerStateCheck {
	sc := &sdnv1.ServerStateCheck{Id: m.ID, Result: sdnv1.StateCheckResult_STATE_CHECK_RESULT_NOT_COMPARED}
	c, err := s.peers.Cluster(m.Address)
	if err != nil {
		sc.Detail = "unreachable: " + err.Error()
		return sc
	}
	wait := checkWait
	if d, ok := ctx.Deadline(); ok && time.Until(d)-time.Second < wait {
		wait = max(time.Until(d)-time.Second, 100*time.Millisecond) // answer the caller in time
	}
	cctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	r, err := c.StateHash(cctx, &sdnv1.StateHashRequest{AppliedIndex: mine.AppliedIndex})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unimplemented:
		sc.Detail = "it runs an sdnd release without the state check; upgrade it"
		return sc
	case codes.FailedPrecondition:
		sc.Detail = fmt.Sprintf("went past raft index %d before it could hash it (%s); the next check compares again", mine.AppliedIndex, status.Convert(err).Message())
		return sc
	case codes.DeadlineExceeded:
		sc.Detail = fmt.Sprintf("did not reach raft index %d within %s (it lags behind the leader, or is unreachable)", mine.AppliedIndex, wait.Round(time.Millisecond))
		return sc
	default:
		sc.Detail = fmt.Sprintf("unreachable at %s: %s", m.Address, status.Convert(err).Message())
		return sc
	}
	sc.Revision, sc.Hash = r.Revision, r.Hash
	switch {
	case r.SchemaVersion != mine.Schema || r.HashVersion != state.HashVersion:
		sc.Detail = fmt.Sprintf("its state has schema %d and hash version %d, the leader's %d and %d (a mix of releases): not comparable", r.SchemaVersion, r.HashVersion, mine.Schema, state.HashVersion)
	case r.AppliedIndex != mine.AppliedIndex:
		sc.Detail = fmt.Sprintf("it hashed at raft index %d, not %d", r.AppliedIndex, mine.AppliedIndex)
	case string(r.Hash) == string(mine.Sum[:]):
		sc.Result, sc.Detail = sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES, ""
	default:
		sc.Result = sdnv1.StateCheckResult_STATE_CHECK_RESULT_DIFFERS
		sc.Detail = fmt.Sprintf("its state at raft index %d (revision %d) differs from the leader's (hash %s, the leader's %s)", mine.AppliedIndex, r.Revision, shortHash(r.Hash), shortHash(mine.Sum[:]))
	}
	return sc
}

// shortHash is the start of a hash, enough to tell two apart.
func shortHash(h []byte) string {
	s := hex.EncodeToString(h)
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}

// checkAdvice says what to do when servers differ: which side the others
// take, and how to rebuild the odd ones out.
func checkAdvice(rep *sdnv1.StateCheckReport, ms []cluster.Member) string {
	addr := map[string]string{}
	for _, m := range ms {
		addr[m.ID] = m.Address
	}
	byHash, differ := hashGroups(rep)
	if len(differ) == 0 {
		return ""
	}
	rebuild := func(ids []string) string {
		var steps []string
		for _, id := range ids {
			steps = append(steps, fmt.Sprintf("`sdnctl cluster remove %s`, then start it with an empty data directory (without --peers, --bootstrap or --bootstrap-expect) and run `sdnctl cluster join %s`", id, addr[id]))
		}
		return "stop it, move its data directory aside, " + strings.Join(steps, "; for the next, ")
	}
	best, bestN := majority(byHash, string(rep.LeaderHash))
	switch {
	case best != string(rep.LeaderHash):
		return fmt.Sprintf("the leader %s holds a state that %s (which agree with each other) do not: hand leadership to one of them (`sdnctl cluster transfer-leader %s`), then rebuild %s from the others: %s",
			rep.LeaderId, strings.Join(byHash[best], ", "), byHash[best][0], rep.LeaderId, rebuild([]string{rep.LeaderId}))
	case bestN == 1:
		return fmt.Sprintf("no majority of servers agrees on one state (%s, the leader, differs from %s): compare what each serves (`sdnctl --server ADDRESS get networks --stale`), and rebuild the wrong ones from a server you trust: %s",
			rep.LeaderId, strings.Join(differ, ", "), rebuild(differ))
	}
	return fmt.Sprintf("%s hold%s a state the leader %s and %d other server(s) do not; its agents and stale reads may see a wrong network. Rebuild it from the others: %s",
		strings.Join(differ, ", "), map[bool]string{true: "s", false: ""}[len(differ) == 1], rep.LeaderId, bestN-1, rebuild(differ))
}

// hashGroups groups the compared servers (the leader included) by hash,
// and lists those that differ from the leader.
func hashGroups(rep *sdnv1.StateCheckReport) (byHash map[string][]string, differ []string) {
	byHash = map[string][]string{string(rep.LeaderHash): {rep.LeaderId}}
	for _, sc := range rep.Servers {
		switch sc.Result {
		case sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES:
			byHash[string(rep.LeaderHash)] = append(byHash[string(rep.LeaderHash)], sc.Id)
		case sdnv1.StateCheckResult_STATE_CHECK_RESULT_DIFFERS:
			byHash[string(sc.Hash)] = append(byHash[string(sc.Hash)], sc.Id)
			differ = append(differ, sc.Id)
		}
	}
	return byHash, differ
}

// majority is the hash most servers hold (the leader's on a tie) and how
// many hold it.
func majority(byHash map[string][]string, leaderHash string) (string, int) {
	best, bestN := leaderHash, len(byHash[leaderHash])
	for h, ids := range byHash {
		if len(ids) > bestN {
			best, bestN = h, len(ids)
		}
	}
	return best, bestN
}

// logCheck logs a comparison: an error when a server differs.
func (s *Server) logCheck(rep *sdnv1.StateCheckReport) {
	agree, notCompared := 0, 0
	for _, sc := range rep.Servers {
		switch sc.Result {
		case sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES:
			agree++
		case sdnv1.StateCheckResult_STATE_CHECK_RESULT_NOT_COMPARED:
			notCompared++
		}
	}
	if rep.Advice != "" {
		s.log.Error("STATE CHECK FAILED: servers hold different states at the same raft index", "raft_index", rep.AppliedIndex, "revision", rep.Revision, "advice", rep.Advice)
		return
	}
	s.log.Info("state check", "raft_index", rep.AppliedIndex, "revision", rep.Revision, "hash", shortHash(rep.LeaderHash), "records", rep.Records, "agree", agree+1, "not_compared", notCompared)
}

// RunStateChecks runs, until ctx ends, what the state check needs besides
// requests: while this server leads, a comparison every `every` (0: none)
// and the probe that lets it write commands with checksums once every
// server reads them (cluster.Server.UseCommandFormat2); while it follows,
// one comparison of its own state with the leader's once it has caught
// up (startCheck).
func (s *Server) RunStateChecks(ctx context.Context, every time.Duration) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var leaderSince, lastCheck, lastProbe time.Time
	startChecked := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.now()
		if !s.cluster.IsLeader() {
			leaderSince = time.Time{}
			if !startChecked {
				startChecked = s.startCheck(ctx)
			}
			continue
		}
		if leaderSince.IsZero() {
			leaderSince, lastCheck = now, now
		}
		if s.cluster.CommandFormat() < command.Format2 && now.Sub(lastProbe) >= formatProbe {
			lastProbe = now
			s.probeCommandFormat(ctx)
		}
		if every > 0 && now.Sub(lastCheck) >= every {
			lastCheck = now
			if _, err := s.checkStates(ctx, s.now()); err != nil && ctx.Err() == nil {
				s.log.Warn("state check did not run", "err", err)
			}
		}
	}
}

// probeCommandFormat asks every voter which command format it reads; when
// all read format 2, this leader writes it.
func (s *Server) probeCommandFormat(ctx context.Context) {
	ms, err := s.cluster.Members()
	if err != nil {
		return
	}
	for _, m := range ms {
		if m.ID == s.cluster.ID() || !m.Voter {
			continue
		}
		sv, err := s.remoteInfo(ctx, m.Address)
		if err != nil || sv.GetCommandFormat() < uint32(command.Format2) {
			return
		}
	}
	s.cluster.UseCommandFormat2()
}

// startCheck compares this follower's state with the leader's once: the
// leader's hash now, then this server's at the same raft index when it
// gets there. It reports whether it is done (compared, or the leader cannot
// say); a mismatch is logged as an error with what to do.
func (s *Server) startCheck(ctx context.Context) bool {
	lid, laddr := s.cluster.Leader()
	if laddr == "" || lid == s.cluster.ID() {
		return false
	}
	c, err := s.peers.Cluster(laddr)
	if err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, checkWait)
	defer cancel()
	theirs, err := c.StateHash(cctx, &sdnv1.StateHashRequest{})
	if status.Code(err) == codes.Unimplemented {
		return true
	}
	if err != nil {
		return false
	}
	mine, err := s.cluster.FSM().StateHash(cctx, theirs.AppliedIndex)
	if err != nil {
		return false // not there in time, or went past it: try again
	}
	switch {
	case theirs.SchemaVersion != mine.Schema || theirs.HashVersion != state.HashVersion:
		s.log.Info("state not compared with the leader's: another state schema or hash version", "leader", lid)
	case string(theirs.Hash) == string(mine.Sum[:]):
		s.log.Info("state matches the leader's", "leader", lid, "raft_index", mine.AppliedIndex, "revision", mine.Revision, "hash", shortHash(mine.Sum[:]), "records", mine.Records)
	default:
		s.log.Error(fmt.Sprintf("STATE CHECK FAILED: this server's state at raft index %d (revision %d) differs from the leader %s's (hash %s here, %s there): it holds a state the others do not, and its agents and stale reads may see a wrong network. Rebuild it from the others: stop it, move its data directory aside, run `sdnctl cluster remove %s` against the leader, start it with an empty data directory (without --peers, --bootstrap or --bootstrap-expect) and run `sdnctl cluster join %s`",
			mine.AppliedIndex, mine.Revision, lid, shortHash(mine.Sum[:]), shortHash(theirs.Hash), s.cluster.ID(), s.cluster.Addr()))
	}
	return true
}

// stateCheckOf is a server's entry in the latest comparison (the leader
// agrees with itself, unless most servers hold another state).
func (s *Server) stateCheckOf(id string) *sdnv1.ServerStateCheck {
	rep := s.checks.last.Load()
	if rep == nil {
		return nil
	}
	if id == rep.LeaderId {
		sc := &sdnv1.ServerStateCheck{Id: id, Result: sdnv1.StateCheckResult_STATE_CHECK_RESULT_AGREES, Revision: rep.Revision, Hash: rep.LeaderHash}
		byHash, differ := hashGroups(rep)
		if best, _ := majority(byHash, string(rep.LeaderHash)); len(differ) > 0 && best != string(rep.LeaderHash) {
			sc.Result, sc.Detail = sdnv1.StateCheckResult_STATE_CHECK_RESULT_DIFFERS, "the leader's state differs from the one most servers hold"
		}
		return sc
	}
	for _, sc := range rep.Servers {
		if sc.Id == id {
			return sc
		}
	}
	return nil
}
