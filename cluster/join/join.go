// Package join forms a raft cluster from servers that find each other, or
// adds a server to an existing one.
//
// With --bootstrap-expect N, servers introduce themselves (Hello) to the
// addresses given with --join and to every server they learn of, and merge
// what each knows. A server bootstraps only when all of these hold: it
// knows exactly N servers, itself included; it has the lowest id of them;
// and in the same round every other one answered that it holds no raft
// state, expects N as well, and knows exactly the same N servers. It then
// bootstraps with all N as voters; the others, which never bootstrap
// themselves, receive the log from the new leader. Because the deciding
// server needs the agreement of all N on one set, and that set has one
// lowest id, two clusters cannot form from N servers started as told. A
// server that learns of more than N servers, or of one expecting another
// N, refuses to bootstrap and says so: that is an operator mistake to fix,
// not to guess around.
//
// When any server answers that it holds raft state, a cluster exists: the
// server asks it to add it as a voter (Join, which that server forwards to
// the leader). That is also all --join does without --bootstrap-expect.
// Former.Run returns once this server holds raft state.
package join

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sdn-dev/sdn/cluster"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Local is this server's raft side.
type Local interface {
	ID() string
	Addr() string
	HasState() bool
	Bootstrap(peers []cluster.Peer) error
}

// Dialer calls other servers' ClusterService.
type Dialer interface {
	Hello(ctx context.Context, addr string, req *sdnv1.HelloRequest) (*sdnv1.HelloResponse, error)
	Join(ctx context.Context, addr string, req *sdnv1.JoinRequest) (*sdnv1.JoinResponse, error)
}

// Config configures a Former.
type Config struct {
	// Expect is --bootstrap-expect: how many servers form the cluster; 0
	// only joins an existing one.
	Expect int
	// Join are addresses of other servers (host:port).
	Join   []string
	Local  Local
	Dialer Dialer
	Logger *slog.Logger
	// Interval between rounds; default 1 s.
	Interval time.Duration
}

// Former runs the forming (or joining) of one server.
type Former struct {
	cfg  Config
	self cluster.Peer
	log  *slog.Logger

	mu    sync.Mutex
	known map[string]cluster.Peer // by id
	said  map[string]bool         // warnings given once
}

// New returns a Former; Run starts it.
func New(cfg Config) *Former {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	f := &Former{cfg: cfg, self: cluster.Peer{ID: cfg.Local.ID(), Address: cfg.Local.Addr()}, log: cfg.Logger,
		known: map[string]cluster.Peer{}, said: map[string]bool{}}
	if cfg.Expect > 0 {
		f.known[f.self.ID] = f.self
	}
	return f
}

// Learn merges servers another one named (in its Hello) into the known
// set, and returns --bootstrap-expect and the known set, sorted by id.
func (f *Former) Learn(peers []cluster.Peer) (int, []cluster.Peer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range peers {
		f.learnLocked(p)
	}
	return f.cfg.Expect, f.knownLocked()
}

func (f *Former) learnLocked(p cluster.Peer) {
	if p.ID == "" || p.Address == "" {
		return
	}
	if old, ok := f.known[p.ID]; ok {
		if old.Address != p.Address {
			f.onceLocked("dup:"+p.ID, "two servers use the same id; give each its own --node-name", "id", p.ID, "addresses", old.Address+" "+p.Address)
		}
		return
	}
	f.known[p.ID] = p
}

func (f *Former) knownLocked() []cluster.Peer {
	out := make([]cluster.Peer, 0, len(f.known))
	for _, p := range f.known {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// onceLocked logs a warning once per key.
func (f *Former) onceLocked(key, msg string, args ...any) {
	if f.said[key] {
		return
	}
	f.said[key] = true
	f.log.Warn(msg, args...)
}

func (f *Former) once(key, msg string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onceLocked(key, msg, args...)
}

// Run introduces this server until it holds raft state: it bootstraps the
// cluster or is added to one. It returns nil then, or ctx's error.
func (f *Former) Run(ctx context.Context) error {
	lastWait := ""
	for {
		if f.cfg.Local.HasState() {
			f.log.Info("this server is in a cluster", "id", f.self.ID)
			return nil
		}
		answers := f.round(ctx)
		if f.cfg.Local.HasState() {
			continue
		}
		if addr := existing(answers); addr != "" {
			f.join(ctx, addr)
		} else if f.cfg.Expect > 0 {
			_, known := f.Learn(nil)
			d := decide(f.self, f.cfg.Expect, known, answers)
			switch {
			case d.bootstrap:
				ids := make([]string, len(known))
				for i, p := range known {
					ids[i] = p.ID
				}
				f.log.Info("every expected server is here and agrees; bootstrapping the cluster", "expect", f.cfg.Expect, "servers", strings.Join(ids, ","))
				if err := f.cfg.Local.Bootstrap(known); err != nil {
					return err
				}
				continue
			case d.problem != "":
				f.once("problem:"+d.problem, d.problem)
			case d.waiting != lastWait:
				f.log.Info("forming a cluster: waiting", "for", d.waiting)
				lastWait = d.waiting
			}
		} else if len(answers) == 0 {
			f.once("nojoin", "no server answers at the --join addresses yet; retrying", "join", strings.Join(f.cfg.Join, ","))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(f.cfg.Interval):
		}
	}
}

// round says Hello to every address given and every server known, and
// learns from the answers (by address).
func (f *Former) round(ctx context.Context) map[string]*sdnv1.HelloResponse {
	expect, known := f.Learn(nil)
	req := &sdnv1.HelloRequest{Self: &sdnv1.Peer{Id: f.self.ID, Address: f.self.Address}, Expect: uint32(expect)}
	for _, p := range known {
		req.Known = append(req.Known, &sdnv1.Peer{Id: p.ID, Address: p.Address})
	}
	targets := map[string]bool{}
	for _, a := range f.cfg.Join {
		targets[a] = true
	}
	for _, p := range known {
		targets[p.Address] = true
	}
	delete(targets, f.self.Address)
	var mu sync.Mutex
	answers := map[string]*sdnv1.HelloResponse{}
	var wg sync.WaitGroup
	for addr := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			r, err := f.cfg.Dialer.Hello(hctx, addr, req)
			if err != nil || r.GetSelf().GetId() == "" {
				return
			}
			if r.GetSelf().GetId() == f.self.ID {
				if addr != f.self.Address {
					f.once("self:"+addr, "the server at this --join address has this server's id; give each server its own --node-name (or drop the address if it is this server's)", "address", addr, "id", f.self.ID)
				}
				return
			}
			mu.Lock()
			answers[addr] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range answers {
		if r.Expect == 0 && !r.HasState {
			continue // a server that only joins is not one of the N
		}
		f.learnLocked(cluster.Peer{ID: r.Self.Id, Address: r.Self.Address})
		if f.cfg.Expect > 0 && !r.HasState {
			for _, p := range r.Known {
				f.learnLocked(cluster.Peer{ID: p.Id, Address: p.Address})
			}
		}
	}
	return answers
}

// existing returns the address of a server that answered it holds raft
// state (one that knows the leader first), or "".
func existing(answers map[string]*sdnv1.HelloResponse) string {
	var withState, withLeader []string
	for addr, r := range answers {
		if r.HasState {
			withState = append(withState, addr)
			if r.LeaderAddress != "" {
				withLeader = append(withLeader, addr)
			}
		}
	}
	sort.Strings(withState)
	sort.Strings(withLeader)
	if len(withLeader) > 0 {
		return withLeader[0]
	}
	if len(withState) > 0 {
		return withState[0]
	}
	return ""
}

// join asks the cluster a server at addr belongs to to add this one.
func (f *Former) join(ctx context.Context, addr string) {
	jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := f.cfg.Dialer.Join(jctx, addr, &sdnv1.JoinRequest{Id: f.self.ID, Address: f.self.Address})
	if err != nil {
		f.log.Warn("asking the cluster to add this server failed; retrying", "via", addr, "err", err)
		return
	}
	if r.Added {
		f.log.Info("the cluster added this server as a voter", "via", addr)
	}
}

// decision is what one round of forming concludes.
type decision struct {
	bootstrap bool
	problem   string // a misconfiguration, logged once
	waiting   string // what is missing, logged when it changes
}

// decide is the bootstrap rule (see the package comment), a pure function
// of what this server knows and what the others answered this round.
func decide(self cluster.Peer, expect int, known []cluster.Peer, answers map[string]*sdnv1.HelloResponse) decision {
	ids := make([]string, len(known))
	for i, p := range known {
		ids[i] = p.ID + "=" + p.Address
	}
	for _, r := range answers {
		if r.Expect != 0 && int(r.Expect) != expect {
			return decision{problem: fmt.Sprintf("server %s at %s has --bootstrap-expect %d, this one %d; not bootstrapping until every server expects the same number", r.Self.Id, r.Self.Address, r.Expect, expect)}
		}
	}
	if len(known) > expect {
		return decision{problem: fmt.Sprintf("%d servers found (%s) but --bootstrap-expect is %d; not bootstrapping: start exactly %d servers with it, or fix the number", len(known), strings.Join(ids, ", "), expect, expect)}
	}
	if len(known) < expect {
		return decision{waiting: fmt.Sprintf("%d of %d servers known: %s", len(known), expect, strings.Join(ids, ", "))}
	}
	if known[0].ID != self.ID {
		return decision{waiting: fmt.Sprintf("all %d servers known; %s (the lowest id) bootstraps", expect, known[0].ID)}
	}
	byID := map[string]*sdnv1.HelloResponse{}
	for _, r := range answers {
		byID[r.Self.Id] = r
	}
	var missing []string
	for _, p := range known[1:] {
		r := byID[p.ID]
		if r == nil || r.Self.Address != p.Address || int(r.Expect) != expect || !sameSet(known, r.Known) {
			missing = append(missing, p.ID)
		}
	}
	if len(missing) > 0 {
		return decision{waiting: fmt.Sprintf("all %d servers known; waiting for %s to answer and agree", expect, strings.Join(missing, ", "))}
	}
	return decision{bootstrap: true}
}

// sameSet reports whether peers name exactly the servers of known.
func sameSet(known []cluster.Peer, peers []*sdnv1.Peer) bool {
	if len(known) != len(peers) {
		return false
	}
	a := make([]string, len(known))
	for i, p := range known {
		a[i] = p.ID + "=" + p.Address
	}
	b := make([]string, len(peers))
	for i, p := range peers {
		b[i] = p.GetId() + "=" + p.GetAddress()
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
