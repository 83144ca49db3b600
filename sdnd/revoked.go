package main

import (
	"context"
	"log/slog"
	"maps"
	"time"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// revokedPollInterval is how often an agent-only sdnd asks the servers
// which certificates are revoked.
const revokedPollInterval = 30 * time.Second

// pollRevoked keeps an agent-only sdnd's view of the revoked certificates:
// servers check revocations against their own state; an agent has none, so
// it asks (ListRevoked) at start and every revokedPollInterval, refuses the
// handshake of a server whose certificate is revoked, and closes its open
// connections to one. What it learned is kept in memory only.
func pollRevoked(ctx context.Context, cluster sdnv1.ClusterServiceClient, sec connSecurity, log *slog.Logger) {
	var have map[string]string
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		got, err := refreshRevoked(cctx, cluster, sec, have, log)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Debug("list revoked certificates (retried later)", "err", err)
		} else {
			have = got
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(revokedPollInterval):
		}
	}
}

// refreshRevoked asks the servers for the revoked certificates and, when
// the list differs from have, makes sec refuse them and closes their open
// connections. It returns the list.
func refreshRevoked(ctx context.Context, cluster sdnv1.ClusterServiceClient, sec connSecurity, have map[string]string, log *slog.Logger) (map[string]string, error) {
	got, err := fetchRevoked(ctx, cluster)
	if err != nil || maps.Equal(got, have) {
		return got, err
	}
	check := func(serial string) (bool, string) {
		why, ok := got[serial]
		return ok, why
	}
	sec.revocation.set(check)
	sec.closeRevoked(log)
	return got, nil
}

// fetchRevoked returns the revoked certificates' serials, each with why
// (as the servers' refusals say it).
func fetchRevoked(ctx context.Context, cluster sdnv1.ClusterServiceClient) (map[string]string, error) {
	resp, err := cluster.ListRevoked(ctx, &sdnv1.ListRevokedRequest{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, c := range resp.GetCertificates() {
		out[c.GetSerial()] = pki.RevokedWhy(time.UnixMilli(c.GetRevokedUnixMs()), c.GetRevokedBy(), c.GetReason())
	}
	return out, nil
}
