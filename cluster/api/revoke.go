package api

import (
	"context"
	"time"

	"github.com/sdn-dev/sdn/cluster/command"
	"github.com/sdn-dev/sdn/cluster/state"
	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// RevokeCertificate records a revoked certificate in raft: from the moment
// a server applies it, that server refuses the certificate's TLS
// handshakes and the calls of connections opened before (Revoked).
func (s *Server) RevokeCertificate(ctx context.Context, req *sdnv1.RevokeCertificateRequest) (*sdnv1.RevokeCertificateResponse, error) {
	if req.GetCertificate().GetSerial() == "" {
		return nil, status.Error(codes.InvalidArgument, "revoke names no certificate serial")
	}
	c := proto.Clone(req.GetCertificate()).(*sdnv1.RevokedCertificate)
	serial, err := pki.ParseSerial(c.Serial)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	c.Serial = serial
	if old, ok := s.cluster.FSM().Revoked(serial); ok {
		return &sdnv1.RevokeCertificateResponse{Certificate: old, Already: true}, nil
	}
	c.RevokedUnixMs = s.now().UnixMilli()
	c.RevokedBy = "an unauthenticated caller (plaintext)"
	if id, ok := callerOf(ctx); ok {
		c.RevokedBy = id.String()
	}
	if _, err := s.propose(ctx, command.RevokeCertificate|command.IgnoreUnknownFlag, c); err != nil {
		return nil, err
	}
	got, _ := s.cluster.FSM().Revoked(serial)
	s.log.Warn("certificate revoked", "serial", serial, "identity", got.GetIdentity(), "by", got.GetRevokedBy(), "reason", got.GetReason())
	return &sdnv1.RevokeCertificateResponse{Certificate: got, Already: got.GetRevokedUnixMs() != c.RevokedUnixMs || got.GetRevokedBy() != c.RevokedBy}, nil
}

// ListRevoked lists the revoked certificates, linearizably.
func (s *Server) ListRevoked(ctx context.Context, _ *sdnv1.ListRevokedRequest) (*sdnv1.ListRevokedResponse, error) {
	if err := s.read(ctx, false); err != nil {
		return nil, err
	}
	out := &sdnv1.ListRevokedResponse{}
	err := s.cluster.FSM().View(func(tx *state.Tx) error {
		out.Certificates = tx.RevokedCertificates()
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

// Revoked is the revocation check of this server's TLS listeners and
// calls (pki.Revoked): the certificate's entry in the local state.
func (s *Server) Revoked(serial string) (bool, string) {
	c, ok := s.cluster.FSM().Revoked(serial)
	if !ok {
		return false, ""
	}
	return true, pki.RevokedWhy(time.UnixMilli(c.RevokedUnixMs), c.RevokedBy, c.Reason)
}
