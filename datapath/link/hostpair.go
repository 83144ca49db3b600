package link

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// HostPair is a veth pair with both ends in one namespace, for a runtime
// that moves the peer into the workload's namespace itself (Docker's
// network-driver plugins hand the peer's name back in Join; Docker moves
// it, renames it and sets its address).
type HostPair struct {
	HostName string // stays in the namespace, plugged into OVS
	PeerName string // the end the runtime moves
	NSPath   string // "" = the namespace the process runs in
	// PeerMAC is set on the peer (nil = the kernel's choice); MTU on both
	// ends (0 = the kernel's default).
	PeerMAC net.HardwareAddr
	MTU     int
	// TxChecksumOff switches transmit checksum offload off on the peer, as
	// WorkloadIface.TxChecksumOff; the setting moves with the device.
	TxChecksumOff bool
}

// SetupHostPair creates the pair (first deleting a host end of that name
// whose peer is not PeerName in the same namespace: a leftover), sets the
// peer's MAC, the MTU and offload, brings the host end up and returns its
// index. The peer is left down: the runtime brings it up where it moves it.
func SetupHostPair(p HostPair) (int, error) {
	for _, n := range []string{p.HostName, p.PeerName} {
		if err := validIfname(n); err != nil {
			return 0, fmt.Errorf("veth pair %s/%s: %w", p.HostName, p.PeerName, err)
		}
	}
	h, err := Open(p.NSPath)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	host, peer, err := h.ensureHostPair(p)
	if err != nil {
		return 0, fmt.Errorf("veth pair %s/%s in network namespace %s: %w", p.HostName, p.PeerName, h.where(), err)
	}
	steps := append(linkSteps(h, host, p.MTU, nil), peerSteps(h, peer, p)...)
	for _, s := range steps {
		if err := s.do(); err != nil {
			return 0, fmt.Errorf("veth pair %s/%s: %s: %w", p.HostName, p.PeerName, s.what, err)
		}
	}
	return host.Attrs().Index, nil
}

// ensureHostPair returns both ends, creating the pair when it is not whole.
func (h *Handle) ensureHostPair(p HostPair) (host, peer netlink.Link, err error) {
	if host, err = h.lookup(p.HostName); err != nil {
		return nil, nil, err
	}
	if peer, err = h.lookup(p.PeerName); err != nil {
		return nil, nil, err
	}
	if host != nil {
		if _, ok := host.(*netlink.Veth); !ok {
			return nil, nil, fmt.Errorf("%q exists and is a %s, not a veth; it is not ours to replace", p.HostName, host.Type())
		}
		if peer != nil && peer.Attrs().ParentIndex == host.Attrs().Index && host.Attrs().ParentIndex == peer.Attrs().Index {
			return host, peer, nil
		}
		if err := h.del(host); err != nil {
			return nil, nil, err
		}
		if peer, err = h.lookup(p.PeerName); err != nil {
			return nil, nil, err
		}
	}
	if peer != nil {
		return nil, nil, fmt.Errorf("%q already exists (a %s) and is not the peer of %q; not touching it", p.PeerName, peer.Type(), p.HostName)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = p.HostName
	attrs.MTU = p.MTU
	veth := netlink.NewVeth(attrs)
	veth.PeerName = p.PeerName
	veth.PeerHardwareAddr = p.PeerMAC
	if err := h.nl.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("create: %w", err)
	}
	if host, err = h.linkByName(p.HostName); err != nil {
		return nil, nil, err
	}
	if peer, err = h.linkByName(p.PeerName); err != nil {
		return nil, nil, err
	}
	return host, peer, nil
}

// peerSteps sets the peer's MAC, MTU and offload, leaving it down.
func peerSteps(h *Handle, l netlink.Link, p HostPair) []step {
	var steps []step
	for _, s := range linkSteps(h, l, p.MTU, p.PeerMAC) {
		if s.what != fmt.Sprintf("%s: link is down, want up", p.PeerName) {
			steps = append(steps, s)
		}
	}
	return append(steps, step{p.PeerName + ": tx checksum offload", func() error {
		on, err := h.TxChecksum(p.PeerName)
		if err != nil || on != p.TxChecksumOff {
			return err
		}
		return h.SetTxChecksum(p.PeerName, !p.TxChecksumOff)
	}})
}
