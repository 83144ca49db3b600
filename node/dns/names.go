package dns

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// cacheSweepAt is the number of cached names at which expired ones are
// dropped; cacheMax the number at which all are.
const (
	cacheSweepAt = 4096
	cacheMax     = 65536
)

// nameCache holds the servers' answers about workload names for TTL,
// found or not. Failed calls are not cached.
type nameCache struct {
	mu     sync.Mutex
	m      map[string]cachedName
	warned time.Time // when a failed call was last logged
}

type cachedName struct {
	res   *sdnv1.ResolveNameResponse
	until time.Time
}

func newNameCache() *nameCache { return &nameCache{m: map[string]cachedName{}} }

func (c *nameCache) get(key string, now time.Time) (*sdnv1.ResolveNameResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.res, true
}

func (c *nameCache) put(key string, res *sdnv1.ResolveNameResponse, until time.Time, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= cacheSweepAt {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
	}
	if len(c.m) >= cacheMax {
		clear(c.m)
	}
	c.m[key] = cachedName{res: res, until: until}
}

// warnNow reports whether a failure may be logged now (once in 10 s: a
// host whose servers are away would log every query).
func (c *nameCache) warnNow(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.warned) < 10*time.Second {
		return false
	}
	c.warned = now
	return true
}

// resolve asks the servers about a workload name, or answers from the
// cache. An error means the outcome is unknown.
func (s *Server) resolve(ctx context.Context, network, name string) (*sdnv1.ResolveNameResponse, error) {
	key := model.WorkloadKey(network, name)
	now := s.now()
	if res, ok := s.cache.get(key, now); ok {
		return res, nil
	}
	if s.cfg.Names == nil {
		return nil, errors.New("no connection to the servers")
	}
	res, err := s.cfg.Names.ResolveName(ctx, &sdnv1.ResolveNameRequest{Network: network, Name: name})
	if err != nil {
		if s.cache.warnNow(now) {
			s.log.Warn("DNS: the servers could not be asked about a workload name; answering SERVFAIL (logged once in 10 s)", "name", key, "err", err)
		}
		return nil, err
	}
	s.cache.put(key, res, now.Add(TTL), now)
	return res, nil
}
