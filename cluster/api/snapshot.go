package api

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sdn-dev/sdn/cluster"
	"github.com/sdn-dev/sdn/cluster/state"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"github.com/sdn-dev/sdn/snapshot"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// snapshotChunk is how many bytes of a snapshot file one message carries.
const snapshotChunk = 256 << 10

// Save streams a snapshot file of the whole state from the leader: a
// consistent image taken after a read barrier, so it holds every write
// acknowledged before the call. The file is assembled in the data
// directory first (its header needs the payload's length and checksum).
func (s *Server) Save(_ *sdnv1.SaveSnapshotRequest, stream grpc.ServerStreamingServer[sdnv1.SnapshotChunk]) error {
	ctx := stream.Context()
	h := &sdnv1.SnapshotHeader{PayloadKind: snapshot.PayloadState, ServerId: s.cluster.ID(),
		CreatedUnixMs: s.now().UnixMilli(), SdnVersion: snapshot.Version()}
	f, err := snapshot.Create(s.cluster.DataDir(), h, func(w io.Writer) error {
		var info cluster.ImageInfo
		if err := s.cluster.SaveState(ctx, w, &info); err != nil {
			return err
		}
		h.SchemaVersion, h.RaftIndex, h.RaftTerm, h.Revision = info.Schema, info.AppliedIndex, info.Term, info.Revision
		h.Networks, h.Nodes, h.Workloads = uint32(info.Networks), uint32(info.Nodes), uint32(info.Workloads)
		h.ClusterId = info.ClusterID
		return nil
	})
	if err != nil {
		return toStatus(fmt.Errorf("save a snapshot: %w", err))
	}
	defer f.Close()
	cw := &chunkSender{stream: stream, header: f.Header}
	if _, err := f.WriteTo(cw); err != nil {
		return err
	}
	s.log.Info("snapshot saved", "revision", f.Header.Revision, "raft_index", f.Header.RaftIndex, "bytes", f.Size())
	return nil
}

// chunkSender sends what is written to it as SnapshotChunks, the header
// with the first.
type chunkSender struct {
	stream grpc.ServerStreamingServer[sdnv1.SnapshotChunk]
	header *sdnv1.SnapshotHeader
}

func (c *chunkSender) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), snapshotChunk)
		m := &sdnv1.SnapshotChunk{Header: c.header, Data: p[:k]}
		c.header = nil
		if err := c.stream.Send(m); err != nil {
			return n, err
		}
		n, p = n+k, p[k:]
	}
	return n, nil
}

// Restore receives a snapshot file and installs it on every server. The
// whole file is received and checked (format, header CRC, payload length
// and SHA-256, schema) before anything else happens; then the cluster
// checks the state inside and replaces its own (cluster.RestoreState).
func (s *Server) Restore(stream grpc.ClientStreamingServer[sdnv1.RestoreSnapshotRequest, sdnv1.RestoreSnapshotResponse]) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "restore sent no snapshot file")
	}
	if err != nil {
		return err
	}
	r := &chunkReader{stream: stream, buf: first.Data}
	h, path, err := snapshot.Read(r, s.cluster.DataDir())
	if err != nil {
		var se *snapshot.Error
		if errors.As(err, &se) {
			return status.Errorf(codes.InvalidArgument, "snapshot refused, nothing was changed: %v", err)
		}
		if r.err != nil {
			return r.err // the client went away; gRPC's status says how
		}
		return toStatus(err)
	}
	defer os.Remove(path)
	if h.SchemaVersion > state.SchemaVersion {
		return status.Errorf(codes.FailedPrecondition, "snapshot refused, nothing was changed: its state has schema %d, newer than this server reads (%d); restore it with the sdnd release that saved it (%s) or a newer one", h.SchemaVersion, state.SchemaVersion, h.SdnVersion)
	}
	res, err := s.cluster.RestoreState(stream.Context(), path, first.Force)
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(&sdnv1.RestoreSnapshotResponse{Header: h, Revision: res.Revision, RaftIndex: res.RaftIndex,
		ReplacedNetworks: uint32(res.Replaced.Networks), ReplacedNodes: uint32(res.Replaced.Nodes), ReplacedWorkloads: uint32(res.Replaced.Workloads)})
}

// chunkReader reads the bytes of a Restore stream.
type chunkReader struct {
	stream grpc.ClientStreamingServer[sdnv1.RestoreSnapshotRequest, sdnv1.RestoreSnapshotResponse]
	buf    []byte
	err    error // the stream's error, other than its end
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		m, err := c.stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.err = err
			}
			return 0, err
		}
		c.buf = m.Data
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}
