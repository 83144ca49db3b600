package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sdn-dev/sdn/cluster/fsm"
	"github.com/sdn-dev/sdn/cluster/state"
)

// Snapshots and log compaction. Raft snapshots the FSM by copying its bbolt
// file (FSM.Snapshot) once SnapshotThreshold entries were committed since
// the last one (checked every SnapshotInterval, randomized up to twice
// that), then deletes the log up to TrailingLogs entries before it. A
// follower that needs an entry already deleted receives the snapshot
// (InstallSnapshot) and continues from the log after it.
const (
	// snapshotThreshold: a snapshot copies the whole state file (tens of
	// MB at the design's 150,000 workloads), so not too often; 8,192
	// entries hold at most 2 million group-committed commands.
	snapshotThreshold = 8192
	snapshotInterval  = 2 * time.Minute
	// trailingLogs is how far behind a follower may fall and still catch
	// up from the log rather than a whole snapshot.
	trailingLogs = 10240
	// snapshotsRetained is how many snapshots raft keeps in raft/snapshots.
	snapshotsRetained = 2
)

// restoreRevisionGap is how far a restore moves the revision past every
// revision the restored state's cluster and this one reached (etcd's
// --bump-revision). An agent or watcher that saw a revision after the
// snapshot was taken (possibly of another cluster) is then still behind the
// restored state and receives it in full, never deltas of another history.
// It must exceed the number of revisions a cluster makes between a backup
// and its restore: 10^9 is 115 days at 100 changes a second.
const restoreRevisionGap = 1_000_000_000

// ImageInfo describes a state image: where it stands and what it holds.
type ImageInfo struct {
	Schema                     uint32
	AppliedIndex, Term         uint64
	Revision                   uint64
	Networks, Nodes, Workloads int
	ClusterID                  string
}

func imageInfo(tx *state.Tx) ImageInfo {
	m := tx.Meta()
	c := tx.Counts()
	return ImageInfo{Schema: m.Schema, AppliedIndex: m.AppliedIndex, Revision: m.Revision,
		Networks: c["networks"], Nodes: c["nodes"], Workloads: c["workloads"], ClusterID: tx.ClusterID()}
}

// SaveState writes a consistent image of the whole state (the bbolt file)
// to w, linearizably: only the leader does, after a read barrier, so the
// image holds every write acknowledged before the call. info, filled from
// the very transaction the image is copied in, is complete once the first
// byte reaches w.
func (s *Server) SaveState(ctx context.Context, w io.Writer, info *ImageInfo) error {
	if err := s.ReadBarrier(ctx); err != nil {
		return err
	}
	term := s.raft.CurrentTerm()
	_, err := s.fsm.WriteImage(w, func(tx *state.Tx) error {
		*info = imageInfo(tx)
		info.Term = term
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy the state: %w", err)
	}
	return nil
}

// RestoreResult says what a restore did.
type RestoreResult struct {
	// Revision the cluster continues from, and the raft index the restore
	// was installed at.
	Revision, RaftIndex uint64
	// Replaced is what the cluster held before; Restored what it holds now.
	Replaced, Restored ImageInfo
}

// RestoreState replaces the whole cluster's state with the state image in
// the file at path (a payload a snapshot file carried, already checked
// against its checksum), on every server: raft installs it as a snapshot of
// its own (Raft.Restore), which the followers receive and restore too.
//
// Nothing changes unless every check passes first: the image must be a
// state store this release reads whose allocations are consistent (no
// address, subnet or VNID twice), and, unless force, the cluster must be
// empty (no networks or workloads; hosts registered meanwhile, and the
// settings the first of them set, are replaced). Writes are refused while
// it runs. The restored state continues at a revision above any this
// cluster or the image's reached (restoreRevisionGap), with its history
// compacted, so every agent and watcher gets the restored state whole.
func (s *Server) RestoreState(ctx context.Context, path string, force bool) (*RestoreResult, error) {
	if s.raft.State() != raft.Leader {
		return nil, s.notLeader()
	}
	if !s.restoring.CompareAndSwap(false, true) {
		return nil, fsm.Refuse(fsm.CodeConflict, "", "", "", "another snapshot restore is in progress; wait for it to finish")
	}
	defer s.restoring.Store(false)

	img, err := os.CreateTemp(s.cfg.DataDir, "restore-image-*.db")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	imgPath := img.Name()
	img.Close()
	defer os.Remove(imgPath)
	if err := copyFile(imgPath, path); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	restored, err := checkImage(imgPath)
	if err != nil {
		return nil, err
	}

	// From here on no write may slip in between the check of what the
	// cluster holds and the restore that replaces it.
	if err := s.proposer.pause(ctx); err != nil {
		return nil, err
	}
	defer s.proposer.resume()
	if err := s.ReadBarrier(ctx); err != nil {
		return nil, err
	}
	var replaced ImageInfo
	if err := s.fsm.View(func(tx *state.Tx) error { replaced = imageInfo(tx); return nil }); err != nil {
		return nil, err
	}
	if !force && (replaced.Networks > 0 || replaced.Workloads > 0) {
		return nil, fsm.Refuse(fsm.CodeConflict, "", "", "", fmt.Sprintf(
			"the cluster is not empty (%d networks, %d workloads, %d hosts, revision %d); a restore replaces all of it: restore into a new cluster, or pass --force to replace this one",
			replaced.Networks, replaced.Workloads, replaced.Nodes, replaced.Revision))
	}
	rev := max(restored.Revision, replaced.Revision) + restoreRevisionGap
	// Raft installs the restore at index max(meta.Index, its last index)
	// + 1, never below last+1: the image says it covers that much, so the
	// entries after it apply and none before it does.
	last := s.raft.LastIndex()
	db, err := state.Open(imgPath, state.Options{})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	err = db.Update(func(tx *state.Tx) error { return tx.Rebase(rev, last+1) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("restore: prepare the state: %w", err)
	}

	f, err := os.Open(imgPath)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	timeout := 2 * time.Minute
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Second)
	}
	s.log.Warn("restoring a snapshot: replacing the whole state on every server", "revision", rev,
		"networks", restored.Networks, "nodes", restored.Nodes, "workloads", restored.Workloads,
		"replacing_networks", replaced.Networks, "replacing_workloads", replaced.Workloads)
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: last, Size: fi.Size()}
	if err := s.raft.Restore(meta, f, timeout); err != nil {
		return nil, fmt.Errorf("restore: install the snapshot through raft: %w", err)
	}
	index, _ := strconv.ParseUint(s.raft.Stats()["last_snapshot_index"], 10, 64)
	restored.Revision, restored.AppliedIndex = rev, index
	s.log.Info("snapshot restored", "revision", rev, "raft_index", index)
	return &RestoreResult{Revision: rev, RaftIndex: index, Replaced: replaced, Restored: restored}, nil
}

// checkImage checks a state image before it may replace anything: it
// opens it (migrating an older schema, refusing a newer one, and checking
// all of it, state.Open: bbolt's structure, every record against its
// checksum, every bucket against its seal), then checks it object by
// object (fsm.CheckState: every object decodes under its own key and
// passes the model's rules, references hold, no VNID, subnet or address is
// held twice). A refusal says what is wrong.
func checkImage(path string) (ImageInfo, error) {
	refuse := func(format string, a ...any) error {
		return fsm.Refuse(fsm.CodeInvalid, "", "", "", fmt.Sprintf(format, a...)+"; nothing was changed")
	}
	db, err := state.Open(path, state.Options{})
	var ce *state.CorruptError
	switch {
	case errors.As(err, &ce):
		return ImageInfo{}, refuse("the snapshot's state file is damaged: %s", ce.Fault())
	case err != nil:
		return ImageInfo{}, refuse("the snapshot does not hold a state this server can read: %v", err)
	}
	defer db.Close()
	var info ImageInfo
	err = db.View(func(tx *state.Tx) error {
		if err := fsm.CheckState(tx); err != nil {
			return err
		}
		info = imageInfo(tx)
		return nil
	})
	switch {
	case errors.As(err, &ce):
		return ImageInfo{}, refuse("the snapshot's state file is damaged: %s", ce.Fault())
	case err != nil:
		return ImageInfo{}, refuse("the snapshot's state is not valid: %v", err)
	}
	return info, nil
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// DataDir is where the server keeps its files (temporary ones too).
func (s *Server) DataDir() string { return s.cfg.DataDir }

// leftoverPatterns are the temporary files a snapshot save or restore
// writes in the data directory (snapshot.Create and snapshot.Read,
// RestoreState, state.DB.Replace), each removed when it ends.
var leftoverPatterns = []string{"snapshot-*.tmp", "restore-*.tmp", "restore-image-*.db", stateFile + ".restore"}

// removeLeftovers removes those temporary files from dir, as a process
// that died during a save or restore left them; only the process holding
// the data directory may call it.
func removeLeftovers(dir string, log *slog.Logger) {
	for _, pat := range leftoverPatterns {
		paths, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, p := range paths {
			if err := os.Remove(p); err != nil {
				log.Warn("could not remove a temporary file an interrupted snapshot save or restore left", "path", p, "err", err)
				continue
			}
			log.Info("removed a temporary file an interrupted snapshot save or restore left", "path", p)
		}
	}
}
