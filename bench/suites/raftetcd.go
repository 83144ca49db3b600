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

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// etcdCluster is a local etcd cluster (Debian's etcd-server), one process
// per member on loopback, for the raft suite's baseline.
type etcdCluster struct {
	dir     string
	members []*etcdMember
	conns   []*grpc.ClientConn
	kv      []pb.KVClient
}

type etcdMember struct {
	name, client, peer string // client and peer: 127.0.0.1:port
	cluster            string // --initial-cluster
	dir                string
	memberProc
}

// startEtcd starts an n-member etcd cluster under dir with default
// durability (fsync of the WAL on every commit) and waits until it has a
// leader.
func startEtcd(ctx context.Context, dir string, n int) (*etcdCluster, error) {
	if _, err := exec.LookPath("etcd"); err != nil {
		return nil, fmt.Errorf("needs etcd (Debian's etcd-server): %v; run `make deps` as root", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &etcdCluster{dir: dir}
	var initial []string
	for i := range n {
		client, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		peer, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		m := &etcdMember{name: fmt.Sprintf("etcd%d", i+1), client: client, peer: peer, dir: filepath.Join(dir, fmt.Sprintf("etcd%d", i+1))}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"=http://"+peer)
	}
	for i, m := range c.members {
		m.cluster = strings.Join(initial, ",")
		if err := c.start(i, "new"); err != nil {
			c.close()
			return nil, err
		}
	}
	for _, m := range c.members {
		conn, err := grpc.NewClient(m.client, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			c.close()
			return nil, err
		}
		c.conns = append(c.conns, conn)
		c.kv = append(c.kv, pb.NewKVClient(conn))
	}
	if err := c.waitLeader(ctx, time.Minute); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// start runs member i; state is "new" the first time, "existing" after.
func (c *etcdCluster) start(i int, state string) error {
	m := c.members[i]
	return m.memberProc.start(m.dir+".log", "etcd", "--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", "http://"+m.client, "--advertise-client-urls", "http://"+m.client,
		"--listen-peer-urls", "http://"+m.peer, "--initial-advertise-peer-urls", "http://"+m.peer,
		"--initial-cluster", m.cluster, "--initial-cluster-state", state, "--initial-cluster-token", "sdnbench",
		"--logger", "zap", "--log-level", "warn")
}

// members is how many members the cluster has.
func (c *etcdCluster) size() int { return len(c.members) }

// leader returns the index of the member that leads, asking the members
// still running.
func (c *etcdCluster) leader(ctx context.Context) (int, error) {
	var last error
	for i, conn := range c.conns {
		if !c.running(i) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := pb.NewMaintenanceClient(conn).Status(cctx, &pb.StatusRequest{})
		cancel()
		if err != nil {
			last = err
			continue
		}
		if st.Leader == 0 {
			last = errors.New("no leader yet")
			continue
		}
		for j, other := range c.conns {
			if !c.running(j) {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			ost, err := pb.NewMaintenanceClient(other).Status(cctx, &pb.StatusRequest{})
			cancel()
			if err == nil && ost.Header.MemberId == st.Leader {
				return j, nil
			}
		}
		last = fmt.Errorf("leader %x is not a running member", st.Leader)
	}
	return -1, fmt.Errorf("etcd: no leader: %v", last)
}

func (c *etcdCluster) waitLeader(ctx context.Context, timeout time.Duration) error {
	return waitFor(ctx, timeout, " (logs in "+c.dir+")", func() error { _, err := c.leader(ctx); return err })
}

func (c *etcdCluster) running(i int) bool { return c.members[i].running() }

// kill SIGKILLs member i and waits until it is gone.
func (c *etcdCluster) kill(i int) error { return c.members[i].kill() }

// restart starts a killed member again and waits until every member
// answers and a leader is known.
func (c *etcdCluster) restart(ctx context.Context, i int) error {
	if err := c.start(i, "existing"); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := pb.NewMaintenanceClient(c.conns[i]).Status(cctx, &pb.StatusRequest{})
		cancel()
		if err == nil {
			return c.waitLeader(ctx, time.Minute)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not back after restart: %v", c.members[i].name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// create writes key with value if it does not exist (one transaction: the
// etcd form of "allocate a named record"); it fails if the key exists.
func (c *etcdCluster) create(ctx context.Context, member int, key string, value []byte) error {
	k := []byte(key)
	res, err := c.kv[member].Txn(ctx, &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: k, Target: pb.Compare_CREATE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 0}}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: k, Value: value}}}},
	})
	if err != nil {
		return err
	}
	if !res.Succeeded {
		return fmt.Errorf("etcd: key %s exists", key)
	}
	return nil
}

// remove deletes key.
func (c *etcdCluster) remove(ctx context.Context, member int, key string) error {
	_, err := c.kv[member].DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte(key)})
	return err
}

// close stops every member (SIGTERM, then SIGKILL) and closes connections.
func (c *etcdCluster) close() {
	for _, conn := range c.conns {
		conn.Close()
	}
	for _, m := range c.members {
		m.stop(10 * time.Second)
	}
}

// etcdSystem is an etcdCluster as a raftSystem: create stores value.
type etcdSystem struct {
	*etcdCluster
	value []byte
}

func (e etcdSystem) create(ctx context.Context, member int, key string) error {
	return e.etcdCluster.create(ctx, member, "/sdnbench/"+key, e.value)
}

func (e etcdSystem) remove(ctx context.Context, member int, key string) error {
	return e.etcdCluster.remove(ctx, member, "/sdnbench/"+key)
}
