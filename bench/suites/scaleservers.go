package suites

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// scaleServers are the sdnd servers of one scale variant: one `sdnd
// --dev`, or S `sdnd --server --peers ...` in one raft cluster, on
// loopback, plaintext, with their data and logs under dir.
type scaleServers struct {
	bin, dir, peers string
	procs           []*sdnServer
	conns           []*grpc.ClientConn

	mu   sync.Mutex
	peak []int64 // per server, the highest VmHWM read (kB)
}

// startScaleServers starts n servers and waits for a leader.
func startScaleServers(ctx context.Context, bin, dir string, n int) (*scaleServers, error) {
	c := &scaleServers{bin: bin, dir: dir, peak: make([]int64, n)}
	var err error
	if c.procs, c.peers, err = serverSlots(dir, n); err != nil {
		return nil, err
	}
	for i := range c.procs {
		if err := c.start(i); err != nil {
			c.close()
			return nil, err
		}
		conn, err := grpc.NewClient(c.procs[i].addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			c.close()
			return nil, err
		}
		c.conns = append(c.conns, conn)
	}
	if err := waitFor(ctx, time.Minute, " (logs in "+dir+")", func() error { _, err := c.leader(ctx); return err }); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// start starts server i: `sdnd --dev` alone, else a member of the static
// peer list.
func (c *scaleServers) start(i int) error {
	s := c.procs[i]
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	args := []string{"--node-name", s.id, "--data-dir", s.dir, "--listen", s.addr, "--log-level", "warn"}
	if len(c.procs) == 1 {
		args = append([]string{"--dev"}, args...)
	} else {
		args = append([]string{"--server", "--peers", c.peers, "--insecure-plaintext"}, args...)
	}
	c.mu.Lock() // memory and cpuTicks read the process
	defer c.mu.Unlock()
	return s.memberProc.start(s.dir+".log", c.bin, args...)
}

// pid returns server i's process id, 0 when it is not running.
func (c *scaleServers) pid(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.procs[i]; s.running() {
		return s.cmd.Process.Pid
	}
	return 0
}

// addrs returns the servers' API addresses, in order.
func (c *scaleServers) addrs() []string {
	var out []string
	for _, s := range c.procs {
		out = append(out, s.addr)
	}
	return out
}

// leader returns the index of the server that says it leads.
func (c *scaleServers) leader(ctx context.Context) (int, error) {
	return findLeader(ctx, c.conns, c.procs, func(i int) bool { return c.pid(i) != 0 }, 2*time.Second)
}

// api returns a connection to the leader (or, when none is known, to the
// first running server: it forwards once one is elected).
func (c *scaleServers) api(ctx context.Context) *grpc.ClientConn {
	if i, err := c.leader(ctx); err == nil {
		return c.conns[i]
	}
	for i := range c.procs {
		if c.pid(i) != 0 {
			return c.conns[i]
		}
	}
	return c.conns[0]
}

// restart starts a killed server again and waits until the cluster has a
// leader.
func (c *scaleServers) restart(ctx context.Context, i int) error {
	if err := c.start(i); err != nil {
		return err
	}
	return waitFor(ctx, time.Minute, " (logs in "+c.dir+")", func() error {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := sdnv1.NewClusterServiceClient(c.conns[i]).Info(cctx, &sdnv1.InfoRequest{}); err != nil {
			return fmt.Errorf("sdnd %s not back after restart: %w", c.procs[i].id, err)
		}
		_, err := c.leader(ctx)
		return err
	})
}

// memory reads VmRSS and VmHWM (kB) of every running server (0 for one
// that is not), and keeps the highest VmHWM per server.
func (c *scaleServers) memory() (rss, hwm []int64) {
	rss, hwm = make([]int64, len(c.procs)), make([]int64, len(c.procs))
	for i := range c.procs {
		pid := c.pid(i)
		if pid == 0 {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		rss[i], _ = parseStatusKB(b, "VmRSS")
		hwm[i], _ = parseStatusKB(b, "VmHWM")
	}
	c.mu.Lock()
	for i, v := range hwm {
		c.peak[i] = max(c.peak[i], v)
	}
	c.mu.Unlock()
	return rss, hwm
}

// peakKB returns the highest VmHWM read of any server.
func (c *scaleServers) peakKB() int64 {
	c.memory()
	c.mu.Lock()
	defer c.mu.Unlock()
	return maxOf(c.peak)
}

// cpuTicks returns the CPU time (user + system, clock ticks) server i has
// used, from /proc/PID/stat.
func (c *scaleServers) cpuTicks(i int) (int64, error) {
	pid := c.pid(i)
	if pid == 0 {
		return 0, fmt.Errorf("sdnd %s is not running", c.procs[i].id)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatTicks(b)
}

// parseStatTicks returns utime + stime of a /proc/PID/stat.
func parseStatTicks(stat []byte) (int64, error) {
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields count from the last ')'.
	s := string(stat)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, errors.New("/proc/PID/stat: no ')' after the command name")
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat: %d fields after the command name, want at least 13", len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/PID/stat: %w", err)
	}
	return u + st, nil
}

// minAvailable is the least memory the machine must keep available
// (MemAvailable) while a scale run goes on: other work shares it.
const minAvailable = 1 << 30

// guard kills every server when one's RSS passes limit, this process's
// (the simulator's) passes selfLimit (bytes), or the machine has less
// than minAvailable left, checking every half second until ctx ends, and
// then calls trip with why.
func (c *scaleServers) guard(ctx context.Context, limit, selfLimit int64, trip func(error)) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rss, _ := c.memory()
		if b, err := os.ReadFile("/proc/meminfo"); err == nil {
			if kb, err := parseStatusKB(b, "MemAvailable"); err == nil && kb*1024 < minAvailable {
				c.killAll()
				trip(fmt.Errorf("guard: the machine has %d MiB available, less than %d MiB; every server was killed (server RSS %s MiB)", kb/1024, minAvailable>>20, mibList(rss)))
				return
			}
		}
		if b, err := os.ReadFile("/proc/self/status"); err == nil {
			if kb, err := parseStatusKB(b, "VmRSS"); err == nil && kb*1024 > selfLimit {
				c.killAll()
				trip(fmt.Errorf("guard: the simulator's RSS (this process) %d MiB passed the limit of %d MiB; every server was killed", kb/1024, selfLimit>>20))
				return
			}
		}
		for i, kb := range rss {
			if kb*1024 > limit {
				c.killAll()
				trip(fmt.Errorf("guard: sdnd %s RSS %d MiB passed the limit of %d MiB; every server was killed", c.procs[i].id, kb/1024, limit>>20))
				return
			}
		}
	}
}

// kill SIGKILLs server i and waits until it is gone.
func (c *scaleServers) kill(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[i].kill()
}

// killAll SIGKILLs every running server.
func (c *scaleServers) killAll() {
	for i := range c.procs {
		if c.pid(i) != 0 {
			_ = c.kill(i)
		}
	}
}

// close stops every server (SIGTERM, then SIGKILL) and closes the
// connections.
func (c *scaleServers) close() {
	for _, conn := range c.conns {
		conn.Close()
	}
	for _, s := range c.procs {
		s.stop(15 * time.Second)
	}
}

func maxOf(vs []int64) int64 {
	var m int64
	for _, v := range vs {
		m = max(m, v)
	}
	return m
}
