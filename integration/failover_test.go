package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/integration/lab"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestLeaderKilledDuringAllocations is the multi-server control plane's
// acceptance test. Three `sdnd --server` processes (static --peers, each in
// its own namespace on the lab underlay) and two agent hosts (real
// `sdnd --agent` with OVS, given all three servers) run as separate
// processes. Clients that retry stream allocations (networks: VNIDs; hosts:
// subnets; workloads: IPs) at all three servers; the leader, which the
// agents are connected to, is killed with SIGKILL mid-stream. Then:
//   - writes started after the kill are accepted (a new leader took over);
//   - the killed server restarts and catches up, and the allocation tables
//     dumped from each server's own state (stale reads) are identical,
//     contain every acknowledged allocation, and hold no subnet, VNID or IP
//     twice;
//   - both agents moved to a live server and realized the final revision,
//     and workloads attached through CNI on each host reach each other.
func TestLeaderKilledDuringAllocations(t *testing.T) {
	needDatapath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	sl := upServerLab(t, ctx, "fo", lab.Config{})
	l, conns, progress := sl.Lab, sl.conns, sl.progress
	const servers = labServers
	// The agents list s1 first: make s1 the leader, so killing the leader
	// also takes the agents' server away.
	if leaderNumber(t, ctx, conns[2]) != 1 {
		if out, errs, code := sdnctlAt(t, "unix://"+l.ServerSocket(2), append(l.SdnctlTLSFlags(), "cluster", "transfer-leader", "s1")...); code != 0 {
			t.Fatalf("sdnctl cluster transfer-leader s1: exit %d: %s%s", code, out, errs)
		}
	}
	if lead := leaderNumber(t, ctx, conns[2]); lead != 1 {
		t.Fatalf("s%d leads after the transfer to s1", lead)
	}
	if _, err := sdnv1.NewConfigServiceClient(conns[2]).Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: "base"}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.StartAgents(ctx, servers); err != nil {
		t.Fatalf("agents: %v\n%s", err, progress.String())
	}
	// Hosts that exist only in the control plane; their underlay addresses
	// answer ARP from the underlay bridge so the agents' tunnel neighbour
	// resolution does not wait for them.
	var fakeIPs []string
	for j := 0; j < 40; j++ {
		a := lab.Subnet(l.Name).Addr().As4()
		a[3] = byte(100 + j)
		ip := fmt.Sprintf("%d.%d.%d.%d", a[0], a[1], a[2], a[3])
		if _, err := l.Exec(l.UnderlayNS(), "ip", "addr", "add", ip+"/24", "dev", "br0"); err != nil {
			t.Fatal(err)
		}
		fakeIPs = append(fakeIPs, ip)
	}
	t.Logf("lab, 3 servers and 2 agents up in %s", time.Since(start).Round(time.Millisecond))

	st := &stream{t: t, conns: conns[1:], fakeIPs: fakeIPs}
	st.networks = append(st.networks, "base")
	for j := 0; j < 3; j++ { // a few fake hosts before the stream
		if err := st.registerHost(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	const clients = 6
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.client(sctx, c); err != nil && sctx.Err() == nil {
				errs <- fmt.Errorf("client %d: %w", c, err)
				stop()
			}
		}()
	}
	time.Sleep(3 * time.Second)
	leader := leaderNumber(t, ctx, conns[2])
	before := st.acks.Load()
	if err := l.KillServer(leader); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	st.killedAt.Store(killed.UnixNano())
	t.Logf("killed the leader s%d (SIGKILL) after %d acknowledged allocations", leader, before)
	// Keep the stream going until plenty of writes started after the kill
	// were accepted.
	for st.acksAfterKill.Load() < 60 && time.Since(killed) < 60*time.Second && sctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	after := st.acksAfterKill.Load()
	if after < 60 {
		t.Fatalf("only %d writes started after the kill were accepted in %s", after, time.Since(killed).Round(time.Second))
	}
	t.Logf("stream stopped (%s)", time.Since(start).Round(time.Millisecond))
	t.Logf("%d allocations acknowledged (%d retried calls); writes accepted again %s after the kill; %d writes started after it accepted",
		st.acks.Load(), st.retries.Load(), time.Duration(st.firstAfterKill.Load()-killed.UnixNano()).Round(time.Millisecond), after)

	// The killed server comes back and catches up.
	if err := l.StartServer(ctx, leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("s%d restarted (%s)", leader, time.Since(start).Round(time.Millisecond))
	dumps := sameDumps(t, ctx, conns[1:])
	st.check(t, dumps[0])
	t.Logf("allocation tables identical on all %d servers: %d networks, %d nodes, %d workloads", servers, len(dumps[0].networks), len(dumps[0].nodes), len(dumps[0].workloads))
	if m, err := sdnv1.NewClusterServiceClient(conns[1]).Members(ctx, &sdnv1.MembersRequest{}); err == nil {
		for _, s := range m.Servers {
			if s.Leader && s.CommandsApplied > 0 {
				t.Logf("new leader %s applied %d commands in %d raft entries since it started (%.2f entries per command)",
					s.Id, s.CommandsApplied, s.EntriesApplied, float64(s.EntriesApplied)/float64(s.CommandsApplied))
			}
		}
	}

	// Both agents realized the final revision, as the new leader learned
	// from their reports (through whichever server each is on now).
	rev := dumps[0].revision
	sc := sdnv1.NewStatusServiceClient(conns[2])
	var behind []string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		behind = behind[:0]
		r, err := sc.Status(ctx, &sdnv1.StatusRequest{})
		if err != nil {
			behind = append(behind, err.Error())
		}
		for _, n := range r.GetNodes() {
			// Fake hosts never report; the two real ones must.
			// Current: realized every revision up to the head that
			// concerns it (a filtered watch sends it no others).
			if (n.Name == "host1" || n.Name == "host2") && (!n.Current || r.Revision < rev || n.Error != "") {
				behind = append(behind, fmt.Sprintf("%s at %d %s", n.Name, n.RealizedRevision, n.Error))
			}
		}
		if len(behind) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agents did not realize revision %d: %v\nhost1's log:\n%s", rev, behind, tailFile(filepath.Join(l.HostDir(1), "sdnd.log"), 30))
		}
	}
	t.Logf("agents realized revision %d (%s)", rev, time.Since(start).Round(time.Millisecond))
	// The datapath works through the new leader: CNI on both hosts, then
	// a ping across the tunnel.
	w1, err := l.Attach("host1", "base", "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := l.Attach("host2", "base", "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	pinged := false
	for try := 0; try < 3 && !pinged; try++ {
		pinged = l.Ping(w1, w2.IP)
	}
	if !pinged {
		t.Fatalf("%s cannot reach %s (%s) after the failover", w1.ID(), w2.ID(), w2.IP)
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// stream is the allocation clients' shared record.
type stream struct {
	t       *testing.T
	conns   []*grpc.ClientConn
	fakeIPs []string

	mu        sync.Mutex
	networks  []string          // acknowledged, usable for workloads
	fakeHosts []string          // acknowledged
	vnids     map[string]uint32 // network -> acknowledged VNID
	subnets   map[string]string // host -> acknowledged subnet
	ips       map[string]string // network/workload -> acknowledged IP

	nextHost       atomic.Int32
	acks           atomic.Int64
	acksAfterKill  atomic.Int64
	retries        atomic.Int64
	killedAt       atomic.Int64 // unix ns, 0 before the kill
	firstAfterKill atomic.Int64
}

// call runs fn against the servers in turn, from client c's own, until it
// succeeds or fails with something else than "unavailable": a write whose
// outcome is unknown is sent again (every call here is idempotent).
func (s *stream) call(ctx context.Context, c int, fn func(context.Context, *grpc.ClientConn) error) error {
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(cctx, s.conns[(c+attempt)%len(s.conns)])
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded:
			s.retries.Add(1)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return err
	}
}

// acked counts an acknowledged allocation whose call started at began.
func (s *stream) acked(began time.Time) {
	s.acks.Add(1)
	if k := s.killedAt.Load(); k != 0 && began.UnixNano() > k {
		s.acksAfterKill.Add(1)
		s.firstAfterKill.CompareAndSwap(0, time.Now().UnixNano())
	}
}

func (s *stream) registerHost(ctx context.Context, c int) error {
	j := int(s.nextHost.Add(1)) - 1
	if j >= len(s.fakeIPs) {
		return nil
	}
	name := fmt.Sprintf("fake%d", j)
	began := time.Now()
	var res *sdnv1.RegisterNodeResponse
	err := s.call(ctx, c, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		res, err = sdnv1.NewNodeServiceClient(cc).Register(ctx, &sdnv1.RegisterNodeRequest{Name: name, UnderlayIp: s.fakeIPs[j], UnderlayMtu: 1500})
		return err
	})
	if err != nil {
		return fmt.Errorf("register %s: %w", name, err)
	}
	s.mu.Lock()
	if s.subnets == nil {
		s.subnets = map[string]string{}
	}
	s.subnets[name] = res.Node.Subnet
	s.fakeHosts = append(s.fakeHosts, name)
	s.mu.Unlock()
	s.acked(began)
	return nil
}

func (s *stream) addNetwork(ctx context.Context, c, i int) error {
	name := fmt.Sprintf("n%d-%d", c, i)
	began := time.Now()
	err := s.call(ctx, c, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := sdnv1.NewConfigServiceClient(cc).Apply(ctx, &sdnv1.ApplyRequest{Networks: []*sdnv1.Network{{Name: name, Origin: &sdnv1.Origin{File: "stream"}}}})
		return err
	})
	if err != nil {
		return fmt.Errorf("apply network %s: %w", name, err)
	}
	// The VNID the cluster acknowledges, read back linearizably.
	var vnid uint32
	err = s.call(ctx, c, func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := sdnv1.NewConfigServiceClient(cc).List(ctx, &sdnv1.ListRequest{Kind: "networks"})
		if err != nil {
			return err
		}
		for _, n := range r.Networks {
			if n.Name == name {
				vnid = n.Vnid
				return nil
			}
		}
		return fmt.Errorf("network %s is missing right after its apply was acknowledged", name)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.vnids == nil {
		s.vnids = map[string]uint32{}
	}
	s.vnids[name] = vnid
	s.networks = append(s.networks, name)
	s.mu.Unlock()
	s.acked(began)
	return nil
}

func (s *stream) attach(ctx context.Context, c, i int, rng *rand.Rand) error {
	s.mu.Lock()
	network := s.networks[rng.IntN(len(s.networks))]
	node := s.fakeHosts[rng.IntN(len(s.fakeHosts))]
	s.mu.Unlock()
	name := fmt.Sprintf("w%d-%d", c, i)
	w := &sdnv1.Workload{Name: name, Network: network, Node: node,
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_CNI, ContainerId: "cid-" + name, Ifname: "eth0"}}
	began := time.Now()
	var res *sdnv1.AttachWorkloadResponse
	err := s.call(ctx, c, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		res, err = sdnv1.NewWorkloadServiceClient(cc).Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: w})
		return err
	})
	if err != nil {
		return fmt.Errorf("attach %s/%s: %w", network, name, err)
	}
	if res.Workload.Ip == "" || res.Workload.Pending != "" {
		return fmt.Errorf("attach %s/%s: no address (%q)", network, name, res.Workload.Pending)
	}
	s.mu.Lock()
	if s.ips == nil {
		s.ips = map[string]string{}
	}
	s.ips[network+"/"+name] = res.Workload.Ip
	s.mu.Unlock()
	s.acked(began)
	return nil
}

// client allocates until ctx ends: one network in ten, one host in ten,
// workloads otherwise.
func (s *stream) client(ctx context.Context, c int) error {
	rng := rand.New(rand.NewPCG(uint64(c), 7))
	for i := 0; ctx.Err() == nil; i++ {
		var err error
		switch i % 10 {
		case 3:
			err = s.addNetwork(ctx, c, i)
		case 7:
			err = s.registerHost(ctx, c)
		default:
			err = s.attach(ctx, c, i, rng)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// dump is one server's allocation tables, read from its own state.
type dump struct {
	revision  uint64
	networks  []*sdnv1.Network
	nodes     []*sdnv1.Node
	workloads []*sdnv1.Workload
}

func readDump(ctx context.Context, cc *grpc.ClientConn) (*dump, error) {
	cfg := sdnv1.NewConfigServiceClient(cc)
	d := &dump{}
	for i, kind := range []string{"networks", "nodes", "workloads"} {
		r, err := cfg.List(ctx, &sdnv1.ListRequest{Kind: kind, Stale: true})
		if err != nil {
			return nil, err
		}
		if i > 0 && r.Revision != d.revision { // revision 0 too (a restore)
			return nil, fmt.Errorf("revision moved from %d to %d while dumping", d.revision, r.Revision)
		}
		d.revision = r.Revision
		d.networks, d.nodes, d.workloads = append(d.networks, r.Networks...), append(d.nodes, r.Nodes...), append(d.workloads, r.Workloads...)
	}
	return d, nil
}

func (d *dump) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "revision %d\n", d.revision)
	add := func(m proto.Message) {
		j, _ := protojson.MarshalOptions{}.Marshal(m)
		b.Write(j)
		b.WriteByte('\n')
	}
	for _, n := range d.networks {
		add(n)
	}
	for _, n := range d.nodes {
		add(n)
	}
	for _, w := range d.workloads {
		add(w)
	}
	return b.String()
}

// sameDumps waits until every server's own state is at the same revision
// and returns the dumps, which must be identical.
func sameDumps(t *testing.T, ctx context.Context, conns []*grpc.ClientConn) []*dump {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ds []*dump
		var err error
		for _, cc := range conns {
			var d *dump
			if d, err = readDump(ctx, cc); err != nil {
				break
			}
			ds = append(ds, d)
		}
		if err == nil && ds[0].revision == ds[1].revision && ds[1].revision == ds[2].revision {
			for k := 1; k < len(ds); k++ {
				if a, b := ds[0].text(), ds[k].text(); a != b {
					t.Fatalf("s1 and s%d hold different allocation tables at revision %d:\n%s", k+1, ds[0].revision, firstDiff(a, b))
				}
			}
			return ds
		}
		if time.Now().After(deadline) {
			revs := []uint64{}
			for _, d := range ds {
				revs = append(revs, d.revision)
			}
			t.Fatalf("servers never reached the same revision: %v (last error: %v)", revs, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines against %d", len(al), len(bl))
}

// check finds every acknowledged allocation in the dump, and no subnet,
// VNID or IP twice.
func (s *stream) check(t *testing.T, d *dump) {
	t.Helper()
	vnids, subnets, ips := map[uint32]string{}, map[string]string{}, map[string]string{}
	byNet, byNode, byWl := map[string]*sdnv1.Network{}, map[string]*sdnv1.Node{}, map[string]*sdnv1.Workload{}
	for _, n := range d.networks {
		if other, dup := vnids[n.Vnid]; dup {
			t.Errorf("VNID %d is held by networks %s and %s", n.Vnid, other, n.Name)
		}
		vnids[n.Vnid], byNet[n.Name] = n.Name, n
	}
	for _, n := range d.nodes {
		if other, dup := subnets[n.Subnet]; dup {
			t.Errorf("subnet %s is held by hosts %s and %s", n.Subnet, other, n.Name)
		}
		subnets[n.Subnet], byNode[n.Name] = n.Name, n
	}
	for _, w := range d.workloads {
		key := w.Network + "/" + w.Name
		if w.Ip != "" && w.Pending == "" {
			if other, dup := ips[w.Ip]; dup {
				t.Errorf("IP %s is held by workloads %s and %s", w.Ip, other, key)
			}
			ips[w.Ip] = key
		}
		byWl[key] = w
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, v := range s.vnids {
		if n := byNet[name]; n == nil || n.Vnid != v {
			t.Errorf("acknowledged network %s (VNID %d) is %v in the tables", name, v, n)
		}
	}
	for name, sub := range s.subnets {
		if n := byNode[name]; n == nil || n.Subnet != sub {
			t.Errorf("acknowledged host %s (subnet %s) is %v in the tables", name, sub, n)
		}
	}
	for key, ip := range s.ips {
		if w := byWl[key]; w == nil || w.Ip != ip {
			t.Errorf("acknowledged workload %s (IP %s) is %v in the tables", key, ip, w)
		}
	}
	if len(s.ips) == 0 || len(s.vnids) == 0 || len(s.subnets) == 0 {
		t.Errorf("the stream acknowledged %d workloads, %d networks, %d hosts; want some of each", len(s.ips), len(s.vnids), len(s.subnets))
	}
}

// leaderNumber asks the leader (through a server) who leads and returns
// its number (sK).
func leaderNumber(t *testing.T, ctx context.Context, cc *grpc.ClientConn) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		m, err := sdnv1.NewClusterServiceClient(cc).Members(ctx, &sdnv1.MembersRequest{})
		if err == nil && m.LeaderId != "" {
			var k int
			if _, err := fmt.Sscanf(m.LeaderId, "s%d", &k); err == nil {
				return k
			}
		}
	}
	t.Fatal("no leader known")
	return 0
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
