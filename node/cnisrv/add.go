package cnisrv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// CNIAdd attaches a workload and plumbs it; see the package comment. The
// order makes one realize serve it: the veth pair first, then its OVS port
// and the attach side by side (the agent's realize of the attach's
// revision waits for the port: Datapath.BeginPlug), then the address in
// the namespace, then the wait for that realize (Agent.Realized).
func (s *Server) CNIAdd(ctx context.Context, req *sdnv1.CNIRequest) (*sdnv1.CNIResult, error) {
	if err := checkRequest(req, true); err != nil {
		return nil, err
	}
	if req.NamePerHost {
		req.Name = perHostName(req.Name, s.cfg.Node)
	}
	nsPath, err := netnsPath(ctx, req)
	if err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, req.ContainerId)
	if err != nil {
		return nil, err
	}
	defer unlock()
	log := s.log.With("op", "ADD", "container", req.ContainerId, "ifname", req.Ifname, "workload", model.WorkloadKey(req.Network, req.Name))
	start := time.Now()
	st := &stages{last: start}

	mtu, err := s.waitRegistered(ctx)
	if err != nil {
		return nil, err
	}
	att, plugged, err := s.portAndAttach(ctx, req, nsPath, mtu, st, log)
	if err != nil {
		return nil, err
	}
	res, err := s.plumb(ctx, req, nsPath, att, plugged, st)
	if err != nil {
		if uerr := s.undo(ctx, req); uerr != nil {
			log.Error("undo failed ADD", "err", uerr)
			err = fmt.Errorf("%w; undoing it also failed: %v", err, uerr)
		}
		log.Warn("ADD failed; undone", "err", err)
		return nil, toStatus(err)
	}
	log.Info("workload added", "ip", res.Address, "mac", res.Mac, "host_ifname", res.HostIfname, "revision", att.Revision, "took", time.Since(start).Round(time.Millisecond), "stages", st.String())
	return res, nil
}

// waitRegistered waits (at most RealizeTimeout) until this host is
// registered with the servers, and returns the cluster's MTU.
func (s *Server) waitRegistered(ctx context.Context) (uint32, error) {
	wctx, cancel := context.WithTimeout(ctx, s.cfg.RealizeTimeout)
	defer cancel()
	var mtu uint32
	err := s.cfg.Agent.WaitFor(wctx, func(m *model.Desired) bool {
		mtu = m.Cluster.GetEffectiveMtu()
		return s.registered(m)
	})
	if err != nil {
		return 0, errorf(codes.Unavailable, "host %s has not registered with the servers yet (waited %s); check that sdnd reaches --servers", s.cfg.Node, s.cfg.RealizeTimeout)
	}
	return mtu, nil
}

// portAndAttach makes the veth pair (the namespace end down, without an
// address), then plugs its host end into the integration bridge while the
// workload is attached on the servers. It returns the attach and when the
// plug began (for Agent.Realized). On a failure it removes what it made:
// the veth and port unless the host end existed before (a repeated ADD:
// an attached workload's), and an attachment it made.
func (s *Server) portAndAttach(ctx context.Context, req *sdnv1.CNIRequest, nsPath string, mtu uint32, st *stages, log *slog.Logger) (*sdnv1.AttachWorkloadResponse, time.Time, error) {
	hostIf := link.HostVethName(req.ContainerId, req.Ifname)
	_, existed, err := link.PrepareWorkload(link.WorkloadIface{HostName: hostIf, HostNSPath: s.cfg.HostNSPath,
		ContainerIfname: req.Ifname, NetNSPath: nsPath, MTU: int(mtu)})
	if err != nil {
		s.undoPort(req, existed, log)
		log.Warn("ADD failed", "err", err)
		return nil, time.Time{}, toStatus(err)
	}
	st.done("veth")
	plugged := time.Now()
	s.cfg.Datapath.BeginPlug(hostIf)
	portErr := make(chan error, 1)
	go func() {
		_, err := s.cfg.Datapath.PlugWorkload(ctx, hostIf)
		st.beside("port", time.Since(plugged))
		portErr <- err
	}()
	att, aerr := s.attach(ctx, req)
	st.beside("attach", time.Since(plugged))
	perr := <-portErr
	st.doneBeside()
	if perr != nil {
		perr = fmt.Errorf("plug %s into the integration bridge: %w", hostIf, perr)
	}
	switch {
	case aerr != nil:
		s.undoPort(req, existed, log)
		log.Warn("ADD failed", "err", errors.Join(aerr, perr))
		return nil, time.Time{}, aerr
	case perr != nil && !existed:
		if uerr := s.undo(ctx, req); uerr != nil {
			perr = fmt.Errorf("%w; undoing the ADD also failed: %v", perr, uerr)
		}
		log.Warn("ADD failed; undone", "err", perr)
		return nil, time.Time{}, toStatus(perr)
	case perr != nil:
		log.Warn("ADD failed", "err", perr)
		return nil, time.Time{}, toStatus(perr)
	}
	return att, plugged, nil
}

// undoPort removes what portAndAttach made when the ADD failed before its
// workload was attached (a host end that existed before is left alone: it
// is an attached workload's).
func (s *Server) undoPort(req *sdnv1.CNIRequest, existed bool, log *slog.Logger) {
	if existed {
		return
	}
	hostIf := link.HostVethName(req.ContainerId, req.Ifname)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := errors.Join(s.cfg.Datapath.UnplugWorkload(ctx, hostIf), link.TeardownWorkload(s.cfg.HostNSPath, hostIf))
	if err != nil {
		log.Error("remove the port of a failed ADD", "host_ifname", hostIf, "err", err)
	}
}

// attach attaches the workload on the servers and checks that the answer
// is the workload asked for.
func (s *Server) attach(ctx context.Context, req *sdnv1.CNIRequest) (*sdnv1.AttachWorkloadResponse, error) {
	var att *sdnv1.AttachWorkloadResponse
	err := s.retryUnavailable(ctx, func() (err error) {
		att, err = s.cfg.Workloads.Attach(ctx, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{
			Name: req.Name, Network: req.Network, Node: s.cfg.Node, Ip: req.Ip, Labels: req.Labels, NamedPorts: req.NamedPorts,
			Mac: req.Mac, PortMappings: req.PortMappings, Bandwidth: req.Bandwidth,
			Origin: &sdnv1.Origin{Kind: model.AgentOriginKind(req.ContainerId), ContainerId: req.ContainerId, Ifname: req.Ifname, Netns: req.Netns},
		}})
		return err
	})
	if err != nil {
		return nil, wrap(err, "attach workload %s/%s", req.Network, req.Name)
	}
	w := att.GetWorkload()
	if w == nil {
		return nil, errorf(codes.Internal, "attach: the server returned no workload")
	}
	if w.Network != req.Network || w.Name != req.Name || w.Node != s.cfg.Node {
		// The owner was attached before, with other settings: not ours to undo.
		return nil, errorf(codes.FailedPrecondition,
			"container %s interface %s is already attached as %s/%s on host %s; DEL it before adding it as %s/%s",
			req.ContainerId, req.Ifname, w.Network, w.Name, w.Node, req.Network, req.Name)
	}
	return att, nil
}

// plumb completes an attached workload's interface (address, MAC, routes
// in its namespace) and waits until the agent realized the attach's
// revision with the port plugged at plugged.
func (s *Server) plumb(ctx context.Context, req *sdnv1.CNIRequest, nsPath string, att *sdnv1.AttachWorkloadResponse, plugged time.Time, st *stages) (*sdnv1.CNIResult, error) {
	w := att.Workload
	if w.Pending != "" || w.Ip == "" {
		return nil, errorf(codes.FailedPrecondition, "workload %s/%s has no address yet: %s", w.Network, w.Name, w.Pending)
	}
	spec, err := s.spec(req, nsPath, w, att.PrefixLength, att.GatewayIp, att.Mtu)
	if err != nil {
		return nil, err
	}
	idx, err := link.SetupWorkload(spec)
	if err != nil {
		return nil, err
	}
	st.done("address")
	sctx, cancel := context.WithTimeout(ctx, s.cfg.RealizeTimeout)
	defer cancel()
	if err := s.cfg.Agent.Realized(sctx, att.Revision, plugged); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, errorf(codes.DeadlineExceeded, "the datapath did not realize revision %d within %s: %v", att.Revision, s.cfg.RealizeTimeout, err)
		}
		return nil, err
	}
	st.done("realize")
	res := &sdnv1.CNIResult{
		Address: spec.Addr.String(), Gateway: att.GatewayIp, Mac: w.Mac, Mtu: att.Mtu,
		HostIfname: spec.HostName, SandboxIfname: req.Ifname, Sandbox: req.Netns, Workload: w,
		Dns: s.dnsFor(w.Network, att.GatewayIp),
	}
	if s.cfg.HostNSPath == "" {
		if ifc, err := net.InterfaceByIndex(idx); err == nil {
			res.HostMac = ifc.HardwareAddr.String()
		}
	}
	return res, nil
}

// spec is the desired state of a workload's interface; nsPath is where the
// agent reaches the namespace (netnsPath).
func (s *Server) spec(req *sdnv1.CNIRequest, nsPath string, w *sdnv1.Workload, prefixLen uint32, gateway string, mtu uint32) (link.WorkloadIface, error) {
	ip, err := netip.ParseAddr(w.Ip)
	if err != nil {
		return link.WorkloadIface{}, fmt.Errorf("workload %s/%s: address %q: %w", w.Network, w.Name, w.Ip, err)
	}
	addr, err := ip.Prefix(int(prefixLen))
	if err != nil || prefixLen == 0 {
		return link.WorkloadIface{}, fmt.Errorf("workload %s/%s: prefix length %d of host %s's block: invalid", w.Network, w.Name, prefixLen, s.cfg.Node)
	}
	spec := link.WorkloadIface{
		HostName: link.HostVethName(req.ContainerId, req.Ifname), HostNSPath: s.cfg.HostNSPath,
		ContainerIfname: req.Ifname, NetNSPath: nsPath,
		Addr: netip.PrefixFrom(ip, addr.Bits()), MTU: int(mtu), TxChecksumOff: s.cfg.TxChecksumOff,
	}
	if gateway != "" {
		if spec.Gateway, err = netip.ParseAddr(gateway); err != nil {
			return link.WorkloadIface{}, fmt.Errorf("host %s's gateway %q: %w", s.cfg.Node, gateway, err)
		}
	}
	if w.Mac != "" {
		if spec.MAC, err = net.ParseMAC(w.Mac); err != nil {
			return link.WorkloadIface{}, fmt.Errorf("workload %s/%s: MAC %q: %w", w.Network, w.Name, w.Mac, err)
		}
	}
	return spec, nil
}

// undo removes what a failed ADD may have left: the veth pair, the port and
// the attachment. It runs even when the caller's context has ended.
func (s *Server) undo(ctx context.Context, req *sdnv1.CNIRequest) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	_, err := s.remove(ctx, req)
	return err
}

// remove detaches by owner on the servers, unplugs the port and deletes the
// veth pair; it goes on after a failed step and returns every error.
func (s *Server) remove(ctx context.Context, req *sdnv1.CNIRequest) (bool, error) {
	hostIf := link.HostVethName(req.ContainerId, req.Ifname)
	var errs []error
	var det *sdnv1.DetachWorkloadResponse
	err := s.retryUnavailable(ctx, func() (err error) {
		det, err = s.cfg.Workloads.Detach(ctx, &sdnv1.DetachWorkloadRequest{ContainerId: req.ContainerId, Ifname: req.Ifname})
		return err
	})
	if err != nil {
		errs = append(errs, wrap(err, "detach the workload of container %s interface %s on the servers", req.ContainerId, req.Ifname))
	}
	if err := s.cfg.Datapath.UnplugWorkload(ctx, hostIf); err != nil {
		errs = append(errs, fmt.Errorf("unplug %s from the integration bridge: %w", hostIf, err))
	}
	if err := link.TeardownWorkload(s.cfg.HostNSPath, hostIf); err != nil {
		errs = append(errs, err)
	}
	return det.GetRemoved(), errors.Join(errs...)
}

// retryUnavailable is RetryUnavailable for at most the configured
// RetryUnavailable.
func (s *Server) retryUnavailable(ctx context.Context, fn func() error) error {
	return RetryUnavailable(ctx, s.cfg.RetryUnavailable, fn)
}

// RetryUnavailable calls fn until it returns something other than
// Unavailable (no raft leader during an election, a server restarting), for
// at most limit. Attach and Detach are idempotent per owner, so a retry
// after a lost answer is harmless.
func RetryUnavailable(ctx context.Context, limit time.Duration, fn func() error) error {
	deadline := time.Now().Add(limit)
	backoff := 50 * time.Millisecond
	for {
		err := fn()
		if status.Code(err) != codes.Unavailable || time.Now().Add(backoff).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// checkRequest checks what every command needs; ADD and CHECK need a
// namespace, network and name too.
func checkRequest(req *sdnv1.CNIRequest, full bool) error {
	var missing []string
	if req.ContainerId == "" {
		missing = append(missing, "container id")
	}
	if req.Ifname == "" {
		missing = append(missing, "interface name")
	}
	if full {
		for _, f := range []struct{ v, name string }{{req.Netns, "network namespace"}, {req.Network, "network"}, {req.Name, "workload name"}} {
			if f.v == "" {
				missing = append(missing, f.name)
			}
		}
	}
	if len(missing) > 0 {
		return errorf(codes.InvalidArgument, "CNI request without %v", missing)
	}
	return nil
}

// toStatus keeps the code of the first coded error in err's chain (Internal
// when there is none) with err's whole message.
func toStatus(err error) error {
	code := codes.Internal
	var ce *codedError
	if errors.As(err, &ce) {
		code = ce.code
	}
	return &codedError{code, err.Error()}
}

// localWorkload finds the workload a CNI owner holds on this host.
func localWorkload(m *model.Desired, node, containerID, ifname string) *sdnv1.Workload {
	for _, w := range m.Workloads {
		o := w.GetOrigin()
		if w.Node == node && o.GetContainerId() == containerID && o.GetIfname() == ifname {
			return w
		}
	}
	return nil
}

// stages times the steps of an ADD, for its log line: where the time of a
// slow ADD went (the veth pair, the OVS port beside the servers' attach,
// the address in the namespace, the agent realizing the revision).
type stages struct {
	last  time.Time
	parts []string
	mu    sync.Mutex
	side  []string // steps run side by side (beside), until doneBeside
}

// beside times one of several steps that run side by side, each from the
// same start; doneBeside closes the group. Safe from several goroutines.
func (s *stages) beside(name string, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.side = append(s.side, name+" "+took.Round(time.Millisecond).String())
}

func (s *stages) doneBeside() {
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.Sort(s.side)
	s.parts = append(s.parts, strings.Join(s.side, " | "))
	s.side = nil
	s.last = time.Now()
}

func (s *stages) done(name string) {
	now := time.Now()
	s.parts = append(s.parts, name+" "+now.Sub(s.last).Round(time.Millisecond).String())
	s.last = now
}

func (s *stages) String() string { return strings.Join(s.parts, ", ") }
