package scalesim

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Stats is what hosts received and what failed for them, summed over the
// hosts asked about. Take two and Sub them for what happened in between.
type Stats struct {
	// Events received, by type: snapshot chunks (and, of those, the last
	// chunks: whole snapshots), deltas, progress events, and events of a
	// type this simulator does not know.
	SnapshotChunks, Snapshots, Deltas, Progress, UnknownEvents int64
	// Changes is the object changes received (in snapshots and deltas);
	// Bytes the events' protobuf size.
	Changes, Bytes int64
	// Registrations that succeeded (the first, and every one again after
	// NotFound), reports sent, heartbeats that succeeded, and moves to
	// another server after a failure.
	Registrations, Reports, Heartbeats, Moves int64
	Errors
}

// Errors counts failures by kind.
type Errors struct {
	// HeartbeatTimeouts: no answer within the heartbeat timeout (5 s);
	// HeartbeatFailures: any other error but NotFound.
	HeartbeatTimeouts, HeartbeatFailures int64
	// NotFound: a heartbeat or watch answered that the host is not
	// registered (the host registers again).
	NotFound int64
	// ReportTimeouts and ReportFailures: ReportRealized calls, likewise.
	ReportTimeouts, ReportFailures int64
	// WatchBroken: a watch stream that ended or could not open.
	WatchBroken int64
	// RegisterFailures: a registration that failed.
	RegisterFailures int64
}

// Total is every error counted.
func (e Errors) Total() int64 {
	return e.HeartbeatTimeouts + e.HeartbeatFailures + e.NotFound + e.ReportTimeouts + e.ReportFailures + e.WatchBroken + e.RegisterFailures
}

// String names the kinds that are not zero, e.g. "heartbeat timeouts 12,
// watch broken 300", or "none".
func (e Errors) String() string {
	var parts []string
	for _, k := range []struct {
		name string
		n    int64
	}{
		{"heartbeat timeouts", e.HeartbeatTimeouts}, {"heartbeat failures", e.HeartbeatFailures}, {"not found", e.NotFound},
		{"report timeouts", e.ReportTimeouts}, {"report failures", e.ReportFailures},
		{"watch broken", e.WatchBroken}, {"register failures", e.RegisterFailures},
	} {
		if k.n != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k.name, k.n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Events is every event received.
func (s Stats) Events() int64 { return s.SnapshotChunks + s.Deltas + s.Progress + s.UnknownEvents }

// Sub returns s - o, field by field.
func (s Stats) Sub(o Stats) Stats {
	return Stats{
		SnapshotChunks: s.SnapshotChunks - o.SnapshotChunks, Snapshots: s.Snapshots - o.Snapshots, Deltas: s.Deltas - o.Deltas,
		Progress: s.Progress - o.Progress, UnknownEvents: s.UnknownEvents - o.UnknownEvents,
		Changes: s.Changes - o.Changes, Bytes: s.Bytes - o.Bytes,
		Registrations: s.Registrations - o.Registrations, Reports: s.Reports - o.Reports,
		Heartbeats: s.Heartbeats - o.Heartbeats, Moves: s.Moves - o.Moves,
		Errors: Errors{
			HeartbeatTimeouts: s.HeartbeatTimeouts - o.HeartbeatTimeouts, HeartbeatFailures: s.HeartbeatFailures - o.HeartbeatFailures,
			NotFound: s.NotFound - o.NotFound, ReportTimeouts: s.ReportTimeouts - o.ReportTimeouts, ReportFailures: s.ReportFailures - o.ReportFailures,
			WatchBroken: s.WatchBroken - o.WatchBroken, RegisterFailures: s.RegisterFailures - o.RegisterFailures,
		},
	}
}

// String is a one-line summary for logs and reports.
func (s Stats) String() string {
	return fmt.Sprintf("events %d (snapshot chunks %d in %d snapshots, deltas %d, progress %d, unknown %d), changes %d, %.1f MB; "+
		"registrations %d, reports %d, heartbeats %d, server moves %d; errors: %s",
		s.Events(), s.SnapshotChunks, s.Snapshots, s.Deltas, s.Progress, s.UnknownEvents, s.Changes, float64(s.Bytes)/1e6,
		s.Registrations, s.Reports, s.Heartbeats, s.Moves, s.Errors)
}

// counters is one host's Stats, updated as things happen.
type counters struct {
	snapshotChunks, snapshots, deltas, progress, unknownEvents atomic.Int64
	changes, bytes                                             atomic.Int64
	registrations, reports, heartbeats, moves                  atomic.Int64
	heartbeatTimeouts, heartbeatFailures, notFound             atomic.Int64
	reportTimeouts, reportFailures                             atomic.Int64
	watchBroken, registerFailures                              atomic.Int64
}

// addTo adds the counters to s.
func (c *counters) addTo(s *Stats) {
	s.SnapshotChunks += c.snapshotChunks.Load()
	s.Snapshots += c.snapshots.Load()
	s.Deltas += c.deltas.Load()
	s.Progress += c.progress.Load()
	s.UnknownEvents += c.unknownEvents.Load()
	s.Changes += c.changes.Load()
	s.Bytes += c.bytes.Load()
	s.Registrations += c.registrations.Load()
	s.Reports += c.reports.Load()
	s.Heartbeats += c.heartbeats.Load()
	s.Moves += c.moves.Load()
	s.HeartbeatTimeouts += c.heartbeatTimeouts.Load()
	s.HeartbeatFailures += c.heartbeatFailures.Load()
	s.NotFound += c.notFound.Load()
	s.ReportTimeouts += c.reportTimeouts.Load()
	s.ReportFailures += c.reportFailures.Load()
	s.WatchBroken += c.watchBroken.Load()
	s.RegisterFailures += c.registerFailures.Load()
}

// The kinds of failure whose latest error the simulator keeps as a
// sample (timeouts are only counted: their text says nothing more).
const (
	kindRegister = iota
	kindWatch
	kindHeartbeat
	kindReport
	kinds
)

var kindNames = [kinds]string{"register", "watch", "heartbeat", "report"}

// sample keeps err as the latest error of its kind.
func (s *Sim) sample(kind int, err error) {
	msg := err.Error()
	s.samples[kind].Store(&msg)
}

// ErrorSamples returns the latest error of each kind that failed
// ("register", "watch", "heartbeat", "report"), for reports.
func (s *Sim) ErrorSamples() map[string]string {
	out := map[string]string{}
	for k := range kinds {
		if p := s.samples[k].Load(); p != nil {
			out[kindNames[k]] = *p
		}
	}
	return out
}
