package dockerdrv

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/node/cnisrv"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// OwnerIfname is the interface name in the Origin of the workloads the
// driver attaches (their container id is Docker's endpoint id): Docker
// names the interface in the container itself (eth0, eth1, ...).
const OwnerIfname = "docker"

// createEndpoint attaches the workload on the servers and tells Docker its
// address and MAC.
func (d *Driver) createEndpoint(ctx context.Context, req *createEndpointRequest) (any, error) {
	network, err := d.network(req.NetworkID)
	if err != nil {
		return nil, err
	}
	in := req.Interface
	if in == nil {
		in = &endpointInterface{}
	}
	if in.Address != "" || in.AddressIPv6 != "" {
		return nil, fmt.Errorf("Docker's IPAM chose %s for endpoint %s, but sdn assigns the addresses: recreate the network with --ipam-driver null",
			in.Address+in.AddressIPv6, short(req.EndpointID))
	}
	ident := identify(req.EndpointID)
	att, err := d.attach(ctx, network, req.EndpointID, ident, in.MacAddress)
	if err != nil {
		return nil, err
	}
	w := att.Workload
	res := &endpointInterface{Address: fmt.Sprintf("%s/%d", w.Ip, att.PrefixLength)}
	if in.MacAddress == "" {
		// Docker sets it on the interface it moves into the container.
		res.MacAddress = w.Mac
	}
	d.log.Info("Docker endpoint created", "endpoint", short(req.EndpointID), "workload", model.WorkloadKey(w.Network, w.Name), "ip", w.Ip, "mac", w.Mac, "revision", att.Revision)
	return createEndpointResponse{Interface: res}, nil
}

// attach attaches (or finds again: Attach is idempotent for its owner) the
// endpoint's workload.
func (d *Driver) attach(ctx context.Context, network, eid string, ident identity, mac string) (*sdnv1.AttachWorkloadResponse, error) {
	req := &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{
		Name: ident.name, Network: network, Node: d.cfg.Node, Mac: mac, Labels: ident.labels,
		Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_DOCKER, ContainerId: eid, Ifname: OwnerIfname},
	}}
	var att *sdnv1.AttachWorkloadResponse
	err := retryUnavailable(ctx, func() (err error) {
		att, err = d.cfg.Workloads.Attach(ctx, req)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach workload %s/%s for Docker endpoint %s: %s", network, ident.name, short(eid), status.Convert(err).Message())
	}
	w := att.GetWorkload()
	switch {
	case w == nil:
		return nil, errors.New("attach: the servers returned no workload")
	case w.Network != network || w.Node != d.cfg.Node:
		return nil, fmt.Errorf("Docker endpoint %s is already attached as %s/%s on host %s", short(eid), w.Network, w.Name, w.Node)
	case w.Pending != "" || w.Ip == "":
		return nil, fmt.Errorf("workload %s/%s has no address yet: %s", w.Network, w.Name, w.Pending)
	}
	return att, nil
}

// join creates the endpoint's veth pair, plugs the host end into OVS, waits
// until the agent has realized the workload, and hands Docker the other end.
func (d *Driver) join(ctx context.Context, req *joinRequest) (any, error) {
	network, err := d.network(req.NetworkID)
	if err != nil {
		return nil, err
	}
	// The servers hold the endpoint's workload since CreateEndpoint; asking
	// again (by owner) also serves a Join after an sdnd restart.
	att, err := d.attach(ctx, network, req.EndpointID, identify(req.EndpointID), "")
	if err != nil {
		return nil, err
	}
	w := att.Workload
	mac, err := net.ParseMAC(w.Mac)
	if err != nil {
		return nil, fmt.Errorf("workload %s/%s: MAC %q: %w", w.Network, w.Name, w.Mac, err)
	}
	pair := link.HostPair{
		HostName: hostVeth(req.EndpointID), PeerName: peerVeth(req.EndpointID), NSPath: d.cfg.HostNSPath,
		PeerMAC: mac, MTU: int(att.Mtu), TxChecksumOff: d.cfg.TxChecksumOff,
	}
	if err := d.plumb(ctx, pair, att.Revision); err != nil {
		if uerr := d.unplumb(context.WithoutCancel(ctx), req.EndpointID); uerr != nil {
			err = fmt.Errorf("%w; undoing it also failed: %v", err, uerr)
		}
		return nil, fmt.Errorf("join Docker endpoint %s (workload %s/%s): %w", short(req.EndpointID), w.Network, w.Name, err)
	}
	d.log.Info("Docker endpoint joined", "endpoint", short(req.EndpointID), "workload", model.WorkloadKey(w.Network, w.Name), "sandbox", req.SandboxKey, "veth", pair.HostName)
	return joinResponse{
		InterfaceName: interfaceName{SrcName: pair.PeerName, DstPrefix: "eth"},
		Gateway:       att.GatewayIp,
	}, nil
}

// plumb makes the veth pair, plugs it and waits for the datapath.
func (d *Driver) plumb(ctx context.Context, pair link.HostPair, rev uint64) error {
	if _, err := link.SetupHostPair(pair); err != nil {
		return err
	}
	if _, err := d.cfg.Datapath.PlugWorkload(ctx, pair.HostName); err != nil {
		return fmt.Errorf("plug %s into the integration bridge: %w", pair.HostName, err)
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.RealizeTimeout)
	defer cancel()
	if err := d.cfg.Agent.Sync(sctx, rev); err != nil {
		return fmt.Errorf("the datapath did not realize revision %d within %s: %w", rev, d.cfg.RealizeTimeout, err)
	}
	return nil
}

// leave unplugs and deletes the veth pair (the container end goes with
// it); the workload and its address stay until DeleteEndpoint.
func (d *Driver) leave(ctx context.Context, req *endpointRequest) (any, error) {
	if err := d.unplumb(ctx, req.EndpointID); err != nil {
		return nil, err
	}
	d.log.Info("Docker endpoint left", "endpoint", short(req.EndpointID))
	return struct{}{}, nil
}

func (d *Driver) unplumb(ctx context.Context, eid string) error {
	host := hostVeth(eid)
	var errs []error
	if err := d.cfg.Datapath.UnplugWorkload(ctx, host); err != nil {
		errs = append(errs, fmt.Errorf("unplug %s from the integration bridge: %w", host, err))
	}
	if err := link.TeardownWorkload(d.cfg.HostNSPath, host); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// deleteEndpoint detaches the workload (releasing its address) and removes
// whatever Leave did not; each step succeeds when there is nothing to do.
func (d *Driver) deleteEndpoint(ctx context.Context, req *endpointRequest) (any, error) {
	errs := []error{d.unplumb(ctx, req.EndpointID)}
	var det *sdnv1.DetachWorkloadResponse
	err := retryUnavailable(ctx, func() (err error) {
		det, err = d.cfg.Workloads.Detach(ctx, &sdnv1.DetachWorkloadRequest{ContainerId: req.EndpointID, Ifname: OwnerIfname})
		return err
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("detach the workload of Docker endpoint %s on the servers: %s", short(req.EndpointID), status.Convert(err).Message()))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d.log.Info("Docker endpoint deleted", "endpoint", short(req.EndpointID), "was_attached", det.GetRemoved())
	return struct{}{}, nil
}

// endpointInfo shows the endpoint's workload in `docker network inspect`.
func (d *Driver) endpointInfo(ctx context.Context, req *endpointRequest) (any, error) {
	val := map[string]any{}
	d.cfg.Agent.View(func(m *model.Desired) {
		for _, w := range m.Workloads {
			if o := w.GetOrigin(); w.Node == d.cfg.Node && o.GetKind() == sdnv1.OriginKind_ORIGIN_KIND_DOCKER && o.GetContainerId() == req.EndpointID {
				val["sdn.workload"] = model.WorkloadKey(w.Network, w.Name)
				val["sdn.ip"] = w.Ip
				val["sdn.host_veth"] = hostVeth(req.EndpointID)
			}
		}
	})
	return endpointInfoResponse{Value: val}, nil
}

// hostVeth is the host end of an endpoint's pair (link.HostVethName, as
// the datapath derives it from the workload's Origin); peerVeth the end
// Docker moves into the container, named until Docker renames it.
func hostVeth(eid string) string { return link.HostVethName(eid, OwnerIfname) }
func peerVeth(eid string) string { return "sdp" + hostVeth(eid)[3:] }

// retryUnavailable retries Attach and Detach while the servers elect a
// leader, for as long as the CNI service does.
func retryUnavailable(ctx context.Context, fn func() error) error {
	return cnisrv.RetryUnavailable(ctx, cnisrv.DefaultRetryUnavailable, fn)
}
