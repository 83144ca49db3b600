package link

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// WorkloadIface is the whole desired state of one workload interface: a veth
// pair with HostName in the host namespace and ContainerIfname in the
// workload's namespace.
type WorkloadIface struct {
	HostName        string // host end, normally HostVethName(containerID, ContainerIfname)
	HostNSPath      string // namespace of the host end; "" = the one the process runs in
	ContainerIfname string // e.g. "eth0"
	NetNSPath       string // the workload's namespace (required)

	MAC     net.HardwareAddr // of the namespace end; nil = whatever the kernel picked
	Addr    netip.Prefix     // of the namespace end, e.g. 10.128.0.5/23 (required)
	Gateway netip.Addr       // default route via it; zero = no default route
	MTU     int              // of both ends; 0 = leave the kernel's default

	// TxChecksumOff switches transmit checksum offload off on the namespace
	// end (`ethtool -K eth0 tx off`), which OVS's userspace datapath needs for
	// TCP to pass. False means it must be on.
	TxChecksumOff bool
}

func (s WorkloadIface) String() string {
	return fmt.Sprintf("%s in network namespace %s (host end %s in %s)",
		s.ContainerIfname, nsName(s.NetNSPath), s.HostName, nsName(s.HostNSPath))
}

// HostVethName returns the host end's name for a workload interface: "sdn"
// and 11 hex digits of a SHA-256 of the container id and interface name, 14
// bytes, within the kernel's 15. Stable, so a retried ADD or a DEL finds it.
func HostVethName(containerID, ifname string) string {
	sum := sha256.Sum256([]byte(containerID + "\x00" + ifname))
	return "sdn" + hex.EncodeToString(sum[:])[:11]
}

// IsHostVethName reports whether name has the form HostVethName gives: "sdn"
// and 11 lowercase hex digits.
func IsHostVethName(name string) bool {
	if len(name) != 14 || name[:3] != "sdn" {
		return false
	}
	for _, c := range name[3:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s WorkloadIface) validate() error {
	var errs []error
	if err := validIfname(s.HostName); err != nil {
		errs = append(errs, fmt.Errorf("host end: %w", err))
	}
	if err := validIfname(s.ContainerIfname); err != nil {
		errs = append(errs, fmt.Errorf("container end: %w", err))
	}
	if s.NetNSPath == "" {
		errs = append(errs, errors.New("no network namespace path for the container end"))
	}
	if !s.Addr.IsValid() || s.Addr.Addr().IsUnspecified() || s.Addr.Addr().Is4In6() {
		errs = append(errs, fmt.Errorf("address %v: want an IPv4 or IPv6 address with prefix length, e.g. 10.128.0.5/23", s.Addr))
	}
	if g := s.Gateway; g.IsValid() && s.Addr.IsValid() {
		if g.Is4() != s.Addr.Addr().Is4() || g.Is4In6() {
			errs = append(errs, fmt.Errorf("gateway %v is not in the address family of %v", g, s.Addr))
		} else if g == s.Addr.Addr() {
			errs = append(errs, fmt.Errorf("gateway %v is the workload's own address", g))
		}
	}
	if s.MAC != nil && (len(s.MAC) != 6 || s.MAC[0]&1 != 0) {
		errs = append(errs, fmt.Errorf("MAC %v: want a 6-byte unicast address", s.MAC))
	}
	if s.MTU != 0 && (s.MTU < 68 || s.MTU > 65535 || (s.Addr.Addr().Is6() && s.MTU < 1280)) {
		errs = append(errs, fmt.Errorf("MTU %d out of range (68 to 65535, at least 1280 for IPv6)", s.MTU))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("workload interface %s: invalid spec: %w", s, err)
	}
	return nil
}

// SetupWorkload makes the host end and the namespace end match spec and
// returns the host end's interface index. It reads what the kernel holds and
// changes only what differs, so a second call with the same spec changes
// nothing and returns the same index. A host end of that name that is not
// paired with ContainerIfname in NetNSPath (a crash's leftover) is deleted
// and the pair recreated; a ContainerIfname in NetNSPath that is not the
// host end's peer is an error, never touched.
func SetupWorkload(spec WorkloadIface) (hostIndex int, err error) {
	if err := spec.validate(); err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("set up workload interface %s: %w", spec, err)
		}
	}()
	hostH, contH, err := openPair(spec)
	if err != nil {
		return 0, err
	}
	defer hostH.Close()
	defer contH.Close()

	host, cont, err := ensurePair(hostH, contH, spec)
	if err != nil {
		return 0, err
	}
	steps := hostEndSteps(hostH, host, spec)
	nsSteps, err := nsEndSteps(contH, cont, spec)
	if err != nil {
		return 0, err
	}
	for _, s := range append(steps, nsSteps...) {
		if err := s.do(); err != nil {
			return 0, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return host.Attrs().Index, nil
}

func openPair(spec WorkloadIface) (hostH, contH *Handle, err error) {
	if hostH, err = Open(spec.HostNSPath); err != nil {
		return nil, nil, err
	}
	if contH, err = Open(spec.NetNSPath); err != nil {
		hostH.Close()
		return nil, nil, err
	}
	return hostH, contH, nil
}

// ensurePair returns the two ends of spec's veth pair, creating it (or
// recreating a stale one) as needed.
func ensurePair(hostH, contH *Handle, spec WorkloadIface) (host, cont netlink.Link, err error) {
	if host, err = hostH.lookup(spec.HostName); err != nil {
		return nil, nil, err
	}
	if cont, err = contH.lookup(spec.ContainerIfname); err != nil {
		return nil, nil, err
	}
	if host != nil {
		if _, ok := host.(*netlink.Veth); !ok {
			return nil, nil, fmt.Errorf("host end %q exists and is a %s, not a veth; it is not ours to replace", spec.HostName, host.Type())
		}
		ok, err := paired(hostH, contH, host, cont)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			return host, cont, nil
		}
		// Our name, but its peer is not the requested interface: a leftover
		// of an interrupted setup. Deleting it deletes its peer too.
		if err := hostH.del(host); err != nil {
			return nil, nil, err
		}
		if cont, err = contH.lookup(spec.ContainerIfname); err != nil {
			return nil, nil, err
		}
	}
	if cont != nil {
		return nil, nil, fmt.Errorf("%q already exists in network namespace %s (a %s, index %d) and is not the peer of %q; remove it or request another interface name",
			spec.ContainerIfname, contH.where(), cont.Type(), cont.Attrs().Index, spec.HostName)
	}

	attrs := netlink.NewLinkAttrs()
	attrs.Name = spec.HostName
	attrs.MTU = spec.MTU
	veth := netlink.NewVeth(attrs)
	veth.PeerName = spec.ContainerIfname
	veth.PeerHardwareAddr = spec.MAC
	veth.PeerNamespace = netlink.NsFd(contH.ns)
	if err := hostH.nl.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("create veth pair %s/%s: %w", spec.HostName, spec.ContainerIfname, err)
	}
	if host, err = hostH.linkByName(spec.HostName); err != nil {
		return nil, nil, err
	}
	if cont, err = contH.linkByName(spec.ContainerIfname); err != nil {
		return nil, nil, err
	}
	return host, cont, nil
}

// paired reports whether host and cont are the two ends of one veth pair:
// each names the other as its peer (IFLA_LINK), in the other's namespace
// (IFLA_LINK_NETNSID).
func paired(hostH, contH *Handle, host, cont netlink.Link) (bool, error) {
	if cont == nil {
		return false, nil
	}
	if _, ok := cont.(*netlink.Veth); !ok {
		return false, nil
	}
	ha, ca := host.Attrs(), cont.Attrs()
	if ha.ParentIndex != ca.Index || ca.ParentIndex != ha.Index {
		return false, nil
	}
	if hostH.ns.Equal(contH.ns) {
		return ha.NetNsID < 0 && ca.NetNsID < 0, nil
	}
	contID, err := hostH.nl.GetNetNsIdByFd(int(contH.ns))
	if err != nil {
		return false, fmt.Errorf("look up id of network namespace %s as seen from %s: %w", contH.where(), hostH.where(), err)
	}
	hostID, err := contH.nl.GetNetNsIdByFd(int(hostH.ns))
	if err != nil {
		return false, fmt.Errorf("look up id of network namespace %s as seen from %s: %w", hostH.where(), contH.where(), err)
	}
	return contID >= 0 && ha.NetNsID == contID && hostID >= 0 && ca.NetNsID == hostID, nil
}

// TeardownWorkload deletes the veth pair whose host end is hostName in the
// namespace at hostNSPath ("" = current); the kernel removes the namespace
// end with it. No error if it is already gone, or if the host namespace is.
// A link of that name that is not a veth is left alone and reported.
func TeardownWorkload(hostNSPath, hostName string) error {
	if err := validIfname(hostName); err != nil {
		return fmt.Errorf("tear down workload interface: %w", err)
	}
	h, err := Open(hostNSPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("tear down workload interface %q: %w", hostName, err)
	}
	defer h.Close()
	l, err := h.lookup(hostName)
	if err != nil || l == nil {
		return err
	}
	if _, ok := l.(*netlink.Veth); !ok {
		return fmt.Errorf("tear down workload interface %q in network namespace %s: it is a %s, not a veth; not deleting it",
			hostName, h.where(), l.Type())
	}
	return h.del(l)
}
