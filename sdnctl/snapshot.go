package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"github.com/sdn-dev/sdn/snapshot"
)

// snapshotCommand groups backup and restore of the whole desired state.
func (a *app) snapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot save|restore|inspect FILE",
		Short: "Save the whole state to a file, restore it, inspect a file",
		Long: "snapshot saves the cluster's whole desired state (networks, hosts, workloads,\n" +
			"allocations) to a file and restores it, for backups and disaster recovery.\n" +
			"A file carries a header and a SHA-256 of its contents, checked before a restore\n" +
			"changes anything. docs/design.md (\"Snapshots and disaster recovery\") has the\n" +
			"file format and the recovery procedure.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			return usagef("snapshot needs a subcommand: save, restore or inspect")
		}),
	}
	cmd.AddCommand(a.snapshotSaveCommand(), a.snapshotRestoreCommand(), a.snapshotInspectCommand())
	return cmd
}

func (a *app) snapshotSaveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "save FILE",
		Short: "Save a consistent copy of the whole state to FILE",
		Long: "save asks the leader for a consistent copy of the state holding every write\n" +
			"acknowledged before it, and writes it to FILE atomically (a temporary file beside\n" +
			"it, checked, then renamed): FILE is either the whole new snapshot or untouched.\n" +
			"--timeout bounds the whole transfer.",
		Args: exactArgs(1, "save needs the FILE to write"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.saveSnapshot(cmd.Context(), args[0])
		}),
	}
}

func (a *app) saveSnapshot(ctx context.Context, path string) error {
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := a.callContext(ctx)
	defer cancel()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write the snapshot beside %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	st, err := sdnv1.NewSnapshotServiceClient(c.conn).Save(ctx, &sdnv1.SaveSnapshotRequest{})
	if err != nil {
		return a.rpcError(ctx, err)
	}
	var total, got int64
	for {
		chunk, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return a.rpcError(ctx, err)
		}
		if h := chunk.GetHeader(); h != nil {
			total = int64(h.PayloadSize)
			fmt.Fprintf(a.stderr, "saving the state at revision %d (raft index %d, %s)\n", h.Revision, h.RaftIndex, formatBytes(total))
		}
		if _, err := tmp.Write(chunk.Data); err != nil {
			return fmt.Errorf("write %s: %w", tmp.Name(), err)
		}
		got += int64(len(chunk.Data))
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h, err := snapshot.Verify(tmp)
	if err != nil {
		return fmt.Errorf("the snapshot received from sdnd does not verify (%v); %s was not written, try again", err, path)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	done = true
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	fmt.Fprintf(a.stdout, "saved %s: revision %d, raft index %d, %d networks, %d hosts, %d workloads, %s, sha256 %s\n",
		path, h.Revision, h.RaftIndex, h.Networks, h.Nodes, h.Workloads, formatBytes(got), snapshot.Checksum(h))
	return nil
}

func (a *app) snapshotRestoreCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "restore FILE [--force]",
		Short: "Replace the whole cluster's state with the snapshot in FILE",
		Long: "restore checks FILE (format, header, SHA-256) here, sends it to the leader, which\n" +
			"checks it again and the state inside it (readable, no address, subnet or VNID\n" +
			"twice), then installs it on every server. Nothing changes when a check fails.\n" +
			"Without --force only a cluster with no networks and no workloads is restored\n" +
			"into (hosts that registered meanwhile are replaced); with it, whatever the\n" +
			"cluster holds is replaced. The cluster continues at a revision past any it or the\n" +
			"snapshot's cluster reached, so every agent receives the restored state in full.\n" +
			"--timeout bounds the whole transfer and installation.",
		Args: exactArgs(1, "restore needs the snapshot FILE"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.restoreSnapshot(cmd.Context(), args[0], force)
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace a cluster that holds networks or workloads")
	return cmd
}

func (a *app) restoreSnapshot(ctx context.Context, path string, force bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h, err := verifyFile(ctx, f)
	if err != nil {
		return fmt.Errorf("%s cannot be restored, nothing was changed: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "%s: revision %d saved %s by %s, %d networks, %d hosts, %d workloads, checksum verified\n",
		path, h.Revision, formatTime(h.CreatedUnixMs), h.ServerId, h.Networks, h.Nodes, h.Workloads)
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := a.callContext(ctx)
	defer cancel()
	st, err := sdnv1.NewSnapshotServiceClient(c.conn).Restore(ctx)
	if err != nil {
		return a.rpcError(ctx, err)
	}
	buf := make([]byte, 256<<10)
	var sent int64
	lastSaid := time.Now()
	for first := true; ; first = false {
		n, rerr := io.ReadFull(f, buf)
		if n > 0 || first {
			if err := st.Send(&sdnv1.RestoreSnapshotRequest{Force: force && first, Data: buf[:n]}); err != nil {
				break // the server ended the call; CloseAndRecv says why
			}
			sent += int64(n)
			if time.Since(lastSaid) > time.Second {
				fmt.Fprintf(a.stderr, "sent %s of %s\n", formatBytes(sent), formatBytes(fi.Size()))
				lastSaid = time.Now()
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				break
			}
			return fmt.Errorf("read %s: %w", path, rerr)
		}
	}
	fmt.Fprintf(a.stderr, "sent %s; the leader is checking it and installing it on every server\n", formatBytes(sent))
	res, err := st.CloseAndRecv()
	if err != nil {
		return a.rpcError(ctx, err)
	}
	fmt.Fprintf(a.stdout, "restored %s: %d networks, %d hosts, %d workloads; replaced %d networks, %d hosts, %d workloads; the cluster continues at revision %d (raft index %d)\n",
		path, h.Networks, h.Nodes, h.Workloads, res.ReplacedNetworks, res.ReplacedNodes, res.ReplacedWorkloads, res.Revision, res.RaftIndex)
	return nil
}

func (a *app) snapshotInspectCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "inspect FILE [-o table|json]",
		Short: "Show a snapshot file's header after verifying its checksum (no server needed)",
		Args:  exactArgs(1, "inspect needs the snapshot FILE"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			h, err := verifyFile(cmd.Context(), f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if output == formatJSON {
				b, err := marshalJSON(h)
				if err != nil {
					return err
				}
				_, err = a.stdout.Write(b)
				return err
			}
			return writeSnapshotHeader(a.stdout, args[0], h)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table or json")
	return cmd
}

// verifyFile is snapshot.Verify, which reads the whole file, stopped at
// once by an interruption.
func verifyFile(ctx context.Context, f *os.File) (*sdnv1.SnapshotHeader, error) {
	type verified struct {
		h   *sdnv1.SnapshotHeader
		err error
	}
	v, err := untilDone(ctx, "checking the snapshot file", func() verified {
		h, err := snapshot.Verify(f)
		return verified{h, err}
	})
	if err != nil {
		return nil, err
	}
	return v.h, v.err
}

func writeSnapshotHeader(w io.Writer, path string, h *sdnv1.SnapshotHeader) error {
	t := newTable(w)
	cluster := h.ClusterId
	if cluster == "" {
		cluster = "-"
	}
	for _, r := range [][2]string{
		{"FILE", path},
		{"FORMAT", fmt.Sprintf("%d (%s, schema %d)", h.FormatVersion, h.PayloadKind, h.SchemaVersion)},
		{"CREATED", formatTime(h.CreatedUnixMs)},
		{"BY", fmt.Sprintf("%s (sdn %s)", h.ServerId, h.SdnVersion)},
		{"CLUSTER", cluster},
		{"REVISION", fmt.Sprint(h.Revision)},
		{"RAFT", fmt.Sprintf("index %d, term %d", h.RaftIndex, h.RaftTerm)},
		{"OBJECTS", fmt.Sprintf("%d networks, %d hosts, %d workloads", h.Networks, h.Nodes, h.Workloads)},
		{"SIZE", formatBytes(int64(h.PayloadSize))},
		{"SHA256", snapshot.Checksum(h) + " (verified)"},
	} {
		row(t, r[0], r[1])
	}
	return t.Flush()
}

func formatTime(unixMs int64) string {
	if unixMs == 0 {
		return "-"
	}
	return time.UnixMilli(unixMs).UTC().Format(time.RFC3339)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// exactArgs is cobra.ExactArgs with a message that says what is missing.
func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s (got %d arguments)", msg, len(args))
		}
		return nil
	}
}
