package node

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sdn-dev/sdn/datapath/ovs"
	"github.com/sdn-dev/sdn/node/agent"
	"github.com/sdn-dev/sdn/node/cnisrv"
	sdndns "github.com/sdn-dev/sdn/node/dns"
	"github.com/sdn-dev/sdn/node/dockerdrv"
	"github.com/sdn-dev/sdn/node/dpsvc"
	"github.com/sdn-dev/sdn/node/leaks"
	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// parts are what a host role runs, opened by open and started by run.
type parts struct {
	ip      net.IP
	mtu     int
	inst    *ovs.Instance
	dp      hostDatapath
	dpLis   net.Listener // nil: no datapath service
	dpAddr  string
	conn    *grpc.ClientConn
	agent   *agent.Agent
	cniLis  net.Listener
	cni     *cnisrv.Server
	docker  *dockerdrv.Driver // nil: no Docker driver
	dockLis net.Listener
	leaks   *leaks.Loop
}

// open opens, in order, OVS, the datapath, the datapath service's
// listener, the connection to the servers, the agent, the CNI socket and
// the Docker driver's, and makes the leak loop; on a failure it closes
// what it opened.
func open(ctx context.Context, o Config) (p *parts, err error) {
	log := o.Logger
	p = &parts{}
	var closers []func()
	defer func() {
		if err != nil {
			for _, c := range closers {
				c()
			}
		}
	}()
	if p.ip, p.mtu, err = underlayAddr(o.UnderlayIface); err != nil {
		return nil, err
	}
	if p.inst, err = openOVS(ctx, o.OVSRunDir, o.OVSDBDir, log); err != nil {
		return nil, err
	}
	closers = append(closers, p.inst.Close)
	if p.dp, err = openDatapath(ctx, o, p.inst, log); err != nil {
		return nil, err
	}
	p.dpLis, p.dpAddr, err = listenDatapath(o.DatapathListen, p.ip)
	if err != nil && o.DatapathListen != "" {
		return nil, err
	} else if err != nil {
		// The default address: the host's main job goes on without
		// traces and counters (the servers say this host cannot be asked).
		log.Warn("no datapath service: the servers cannot trace packets or read rule counters on this host; free the port or set --datapath-listen", "err", err)
		err = nil
	} else {
		closers = append(closers, func() { p.dpLis.Close() })
	}
	var avoid func(string)
	if p.conn, avoid, err = dialServers(o.Servers, o.DialOptions); err != nil {
		return nil, err
	}
	closers = append(closers, func() { p.conn.Close() })
	p.agent, err = agent.New(p.conn, p.dp, agent.Config{
		Node: o.NodeName, UnderlayIP: p.ip.String(), UnderlayMTU: uint32(p.mtu), DatapathAddress: p.dpAddr,
		StatePath: filepath.Join(o.DataDir, "agent", "desired.pb"), Logger: log, HeartbeatInterval: o.HeartbeatInterval, AvoidServer: avoid,
	})
	if err != nil {
		return nil, err
	}
	if p.cniLis, err = cnisrv.ListenUnix(o.CNISocket); err != nil {
		return nil, fmt.Errorf("CNI socket: %w", err)
	}
	closers = append(closers, func() { p.cniLis.Close() })
	p.cni = cnisrv.New(cnisrv.Config{
		Node: o.NodeName, Workloads: sdnv1.NewWorkloadServiceClient(p.conn), Servers: healthpb.NewHealthClient(p.conn), Agent: p.agent, Datapath: p.dp,
		TxChecksumOff: o.Datapath == "netdev", Logger: log.With("component", "cni"),
	})
	if p.docker, p.dockLis, err = openDocker(o, p.conn, p.agent, p.dp); err != nil {
		return nil, err
	}
	// The leak loop releases what no longer exists on this host and
	// removes what nothing owns; it holds the CNI service's per-container
	// lock while it releases, so it never races an ADD.
	p.leaks = leaks.New(leaks.Config{
		Node: o.NodeName, Agent: p.agent, Host: leakHost{inst: p.inst, dp: p.dp}, Workloads: sdnv1.NewWorkloadServiceClient(p.conn),
		Lock: p.cni.TryLockContainer, Period: o.LeakPeriod, Grace: o.LeakGrace, Logger: log.With("component", "leaks"),
	})
	return p, nil
}

// run starts the role's loops: the agent's watch, the CNI service, the
// datapath service, the DNS server, the Docker driver and the leak loop.
func (p *parts) run(ctx context.Context, o Config, failed chan<- error) *Role {
	log := o.Logger
	actx, cancel := context.WithCancel(ctx)
	r := &Role{cancel: cancel, done: make(chan struct{}), conn: p.conn, dp: p.dp, inst: p.inst}
	var wg sync.WaitGroup
	spawn := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}
	spawn(func() {
		if err := p.agent.Run(actx); err != nil {
			if o.AlsoServer {
				// A voter must not leave the quorum because its own
				// host's agent was refused: the other hosts depend on it.
				// The host keeps its datapath as it is.
				log.Error("the agent stopped; this host's datapath stays as it is, the server role keeps running; fix the cause and restart sdnd", "err", err)
				return
			}
			report(failed, fmt.Errorf("agent: %w", err))
		}
	})
	spawn(func() {
		if err := p.cni.Serve(actx, p.cniLis); err != nil {
			report(failed, err)
		}
	})
	if p.dpLis != nil {
		spawn(func() {
			svc := dpsvc.New(o.NodeName, tracerOf(p.dp))
			// `sdnctl ipam` asks each host about its leaks (client certificates).
			ipam := dpsvc.Also{Desc: &sdnv1.IPAMService_ServiceDesc, Impl: leaks.NewService(p.leaks), Roles: []pki.Role{pki.RoleClient}}
			if err := dpsvc.Serve(actx, p.dpLis, svc, o.DatapathTLS, log.With("component", "datapath-service"), ipam); err != nil {
				report(failed, err)
			}
		})
	}
	// The host's DNS server (services and workloads by name) listens on
	// the gateway address, which every workload of the host reaches.
	names := sdndns.New(sdndns.Config{Desired: p.agent, Names: sdnv1.NewNameServiceClient(p.conn), Logger: log.With("component", "dns")})
	spawn(func() { names.Run(actx, sdndns.GatewayAddr(p.agent, o.NodeName)) })
	if p.docker != nil {
		spawn(func() {
			if err := p.docker.Serve(actx, p.dockLis); err != nil {
				report(failed, err)
			}
		})
	}
	spawn(func() { p.leaks.Run(actx) })
	go func() { wg.Wait(); close(r.done) }()
	if o.Started != nil {
		go o.Started(actx, p.conn)
	}
	return r
}
