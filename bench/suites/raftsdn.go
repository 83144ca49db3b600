package suites

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sdn-dev/sdn/bench"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// raftNetwork and raftHosts are what the sdn load attaches to: one
// network, a few registered hosts (API only: no agents run).
const (
	raftNetwork = "bench"
	raftHosts   = 4
)

func raftHost(i int) string { return fmt.Sprintf("bench-host-%d", i) }

// attachRequest is the load's create operation for sdn: a workload with a
// few labels, as the CNI plugin would attach it.
func attachRequest(name, host string) *sdnv1.AttachWorkloadRequest {
	return &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{
		Name: name, Network: raftNetwork, Node: host,
		Labels: map[string]string{"app": "bench", "tier": "backend", "team": "sdn-bench"},
	}}
}

// sdnCluster is a 3-server sdnd cluster (`sdnd --server --peers ...`),
// one process per server on loopback, plaintext.
type sdnCluster struct {
	bin     string
	dir     string
	peers   string
	servers []*sdnServer
	conns   []*grpc.ClientConn
	wl      []sdnv1.WorkloadServiceClient
}

type sdnServer struct {
	id, addr, dir string
	memberProc
}

// serverSlots gives n servers s1…sN a free loopback address and a
// directory under dir each, and the --peers value naming them all.
func serverSlots(dir string, n int) (servers []*sdnServer, peers string, err error) {
	var ps []string
	for i := range n {
		addr, err := freeLoopbackPort()
		if err != nil {
			return nil, "", err
		}
		s := &sdnServer{id: fmt.Sprintf("s%d", i+1), addr: addr, dir: filepath.Join(dir, fmt.Sprintf("s%d", i+1))}
		servers = append(servers, s)
		ps = append(ps, s.id+"="+addr)
	}
	return servers, strings.Join(ps, ","), nil
}

// startSDNCluster builds sdnd, starts n servers bootstrapping from a
// static peer list, waits for a leader, and prepares the load's network
// and hosts.
func startSDNCluster(ctx context.Context, env *bench.Env, dir string, n int) (*sdnCluster, error) {
	c := &sdnCluster{bin: filepath.Join(dir, "sdnd"), dir: dir}
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", c.bin, "github.com/sdn-dev/sdn/sdnd").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build sdnd: %v: %s", err, out)
	}
	var err error
	if c.servers, c.peers, err = serverSlots(dir, n); err != nil {
		return nil, err
	}
	for i := range c.servers {
		if err := c.start(i); err != nil {
			c.close()
			return nil, err
		}
	}
	for _, s := range c.servers {
		conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			c.close()
			return nil, err
		}
		c.conns = append(c.conns, conn)
		c.wl = append(c.wl, sdnv1.NewWorkloadServiceClient(conn))
	}
	if err := c.waitLeader(ctx, time.Minute); err != nil {
		c.close()
		return nil, err
	}
	cfg := sdnv1.NewConfigServiceClient(c.conns[0])
	if _, err := cfg.Apply(ctx, &sdnv1.ApplyRequest{
		Cluster:  &sdnv1.ClusterSettings{Cidr: "10.0.0.0/8", HostPrefix: 20},
		Networks: []*sdnv1.Network{{Name: raftNetwork}},
	}); err != nil {
		c.close()
		return nil, fmt.Errorf("apply cluster and network: %w", err)
	}
	nodes := sdnv1.NewNodeServiceClient(c.conns[0])
	for i := range raftHosts {
		if _, err := nodes.Register(ctx, &sdnv1.RegisterNodeRequest{
			Name: raftHost(i), UnderlayIp: fmt.Sprintf("198.18.99.%d", i+1), UnderlayMtu: 1500,
		}); err != nil {
			c.close()
			return nil, fmt.Errorf("register %s: %w", raftHost(i), err)
		}
	}
	env.Note("sdn", fmt.Sprintf("3 `sdnd --server --peers %s` processes built from this tree (raft and gRPC on one loopback port each, plaintext), "+
		"data under the suite's scratch directory; cluster 10.0.0.0/8 with /20 per host, network %q, %d hosts registered through the API (no agents)",
		"s1=ADDR,s2=ADDR,s3=ADDR", raftNetwork, raftHosts))
	return c, nil
}

func (c *sdnCluster) start(i int) error {
	s := c.servers[i]
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	return s.memberProc.start(s.dir+".log", c.bin, "--server", "--node-name", s.id, "--data-dir", s.dir,
		"--listen", s.addr, "--peers", c.peers, "--log-level", "warn",
		"--insecure-plaintext") // as etcd runs here: plaintext on loopback
}

func (c *sdnCluster) size() int { return len(c.servers) }

func (c *sdnCluster) running(i int) bool { return c.servers[i].running() }

// leader returns the index of the server that says it leads.
func (c *sdnCluster) leader(ctx context.Context) (int, error) {
	i, err := findLeader(ctx, c.conns, c.servers, c.running, time.Second)
	if err != nil {
		return -1, fmt.Errorf("sdn: %w", err)
	}
	return i, nil
}

// findLeader asks each running server (up) whether it leads, each within
// timeout, and returns the index of the one that does.
func findLeader(ctx context.Context, conns []*grpc.ClientConn, servers []*sdnServer, up func(int) bool, timeout time.Duration) (int, error) {
	var last error = errors.New("no server answered")
	for i, conn := range conns {
		if !up(i) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		res, err := sdnv1.NewClusterServiceClient(conn).Info(cctx, &sdnv1.InfoRequest{})
		cancel()
		if err != nil {
			last = err
			continue
		}
		if res.Server.GetLeader() {
			return i, nil
		}
		last = fmt.Errorf("%s is %s", servers[i].id, res.Server.GetState())
	}
	return -1, fmt.Errorf("no leader: %v", last)
}

func (c *sdnCluster) waitLeader(ctx context.Context, timeout time.Duration) error {
	return waitFor(ctx, timeout, " (logs in "+c.dir+")", func() error { _, err := c.leader(ctx); return err })
}

func (c *sdnCluster) kill(i int) error { return c.servers[i].kill() }

// restart starts a killed server and waits until it answers and the
// cluster has a leader.
func (c *sdnCluster) restart(ctx context.Context, i int) error {
	if err := c.start(i); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := sdnv1.NewClusterServiceClient(c.conns[i]).Info(cctx, &sdnv1.InfoRequest{})
		cancel()
		if err == nil {
			return c.waitLeader(ctx, time.Minute)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("sdnd %s not back after restart: %v", c.servers[i].id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// create attaches workload key; the host is picked from the key so that
// concurrent clients spread over the hosts' address pools.
func (c *sdnCluster) create(ctx context.Context, member int, key string) error {
	h := 0
	for _, b := range []byte(key) {
		h = h*31 + int(b)
	}
	_, err := c.wl[member].Attach(ctx, attachRequest(key, raftHost((h&0x7fffffff)%raftHosts)))
	return err
}

func (c *sdnCluster) remove(ctx context.Context, member int, key string) error {
	_, err := c.wl[member].Detach(ctx, &sdnv1.DetachWorkloadRequest{Network: raftNetwork, Name: key})
	return err
}

// close stops every server (SIGTERM, then SIGKILL).
func (c *sdnCluster) close() {
	for _, conn := range c.conns {
		conn.Close()
	}
	for _, s := range c.servers {
		s.stop(15 * time.Second)
	}
}
