package lab

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/datapath/ovs"
)

// ensureNS makes the named namespace exist and reports whether it made it.
// A /run/netns entry that is no namespace (a leftover) is replaced.
func ensureNS(name string) (created bool, err error) {
	if h, err := link.Open(link.NSPath(name)); err == nil {
		h.Close()
		return false, nil
	}
	if err := link.DeleteNS(name); err != nil {
		return false, err
	}
	if _, err := link.NewNS(name); err != nil {
		return false, err
	}
	return true, nil
}

// upUnderlay makes the underlay namespace and its bridge br0 exist.
func (l *Lab) upUnderlay() error {
	if _, err := ensureNS(l.UnderlayNS()); err != nil {
		return err
	}
	h, err := link.Open(link.NSPath(l.UnderlayNS()))
	if err != nil {
		return err
	}
	defer h.Close()
	_, err = h.EnsureBridge("br0", l.cfg.UnderlayMTU)
	return err
}

// upHostNet makes host i's namespace exist, joined to the underlay bridge
// by a veth (hI in the underlay namespace, ul0 in the host's, with the
// host's underlay address). It reports whether it created the namespace.
//
// Once the namespace runs, the agent owns ul0's address (userspace
// tunneling moves it onto an OVS bridge), so an existing ul0 is left as it
// is. A host whose ul0 is gone (its underlay namespace was deleted) cannot
// be patched under a running agent: it is reset (sdnd and OVS stopped, the
// namespace made anew; their state on disk is kept) and comes back whole.
func (l *Lab) upHostNet(i int) (created bool, err error) {
	ns := l.HostNS(i)
	if created, err = ensureNS(ns); err != nil {
		return false, err
	}
	if !created {
		ok, err := hasLink(ns, "ul0")
		if err != nil {
			return false, err
		}
		if !ok {
			l.logf("%s: ul0 is missing from netns %s; resetting the host", HostName(i), ns)
			if err := l.stopHost(i); err != nil {
				return false, err
			}
			if err := link.DeleteNS(ns); err != nil {
				return false, err
			}
			if _, err := link.NewNS(ns); err != nil {
				return false, err
			}
			created = true
		}
	}
	if created {
		_, err := link.SetupWorkload(link.WorkloadIface{
			HostName:        "h" + strconv.Itoa(i),
			HostNSPath:      link.NSPath(l.UnderlayNS()),
			ContainerIfname: "ul0",
			NetNSPath:       link.NSPath(ns),
			Addr:            netip.PrefixFrom(l.HostIP(i), 24),
			// Stable across resets, so neighbours' ARP caches stay right.
			MAC: l.hostMAC(i),
			MTU: l.cfg.UnderlayMTU,
			// Kernel TCP between hosts (sdnd's gRPC and raft) crosses OVS's
			// userspace datapath once the agent moves the address onto an
			// OVS bridge; it needs full checksums on the wire.
			TxChecksumOff: true,
		})
		if err != nil {
			return false, err
		}
	}
	ul, err := link.Open(link.NSPath(l.UnderlayNS()))
	if err != nil {
		return false, err
	}
	defer ul.Close()
	port := "h" + strconv.Itoa(i)
	if err := ul.SetMaster(port, "br0"); err != nil {
		return false, err
	}
	if on, err := ul.TxChecksum(port); err == nil && on {
		if err := ul.SetTxChecksum(port, false); err != nil {
			return false, err
		}
	}
	return created, nil
}

// hostMAC is host i's ul0 MAC: locally administered, derived from the lab
// name and i.
func (l *Lab) hostMAC(i int) net.HardwareAddr {
	h := fnv.New32a()
	h.Write([]byte(l.Name))
	s := h.Sum32()
	return net.HardwareAddr{0x02, byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s), byte(i)}
}

func hasLink(ns, name string) (bool, error) {
	h, err := link.Open(link.NSPath(ns))
	if err != nil {
		return false, err
	}
	defer h.Close()
	names, err := h.LinkNames(name)
	if err != nil {
		return false, err
	}
	return slices.Contains(names, name), nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startOVS starts (or adopts) host i's OVS instance.
func (l *Lab) startOVS(ctx context.Context, i int) (*ovs.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return ovs.StartInstance(ctx, ovs.InstanceConfig{RunDir: l.ovsDir(i), NetNS: l.HostNS(i), Logger: quiet})
}

// ovsDaemon is one of host i's OVS daemons, known by the pidfile OVS
// writes.
func (l *Lab) ovsDaemon(i int, name string) daemon {
	pf := filepath.Join(l.ovsDir(i), name+".pid")
	return daemon{pidfile: pf, mark: "--pidfile=" + pf}
}

// ovsRunning reports whether both of host i's OVS daemons run.
func (l *Lab) ovsRunning(i int) bool {
	return l.ovsDaemon(i, "ovsdb-server").pid() != 0 && l.vswitchdPID(i) != 0
}

// vswitchdPID is the pid of host i's ovs-vswitchd, 0 if it does not run.
func (l *Lab) vswitchdPID(i int) int { return l.ovsDaemon(i, "ovs-vswitchd").pid() }

// stopHost stops host i's sdnd and OVS daemons, keeping their files.
func (l *Lab) stopHost(i int) error {
	if err := l.sdnd(i).stop(15 * time.Second); err != nil {
		return fmt.Errorf("stop sdnd: %w", err)
	}
	if _, err := os.Stat(l.ovsDir(i)); err != nil {
		return nil
	}
	inst := &ovs.Instance{RunDir: l.ovsDir(i), DBDir: l.ovsDir(i), LogDir: l.ovsDir(i), NetNS: l.HostNS(i)}
	return inst.Stop()
}

// nsOfLab reports whether a namespace name is one of lab name's: its
// underlay ("NAME-ul"), a host ("NAME-hN") or a workload ("NAME-hostN-W").
func nsOfLab(lab, ns string) bool {
	rest, ok := strings.CutPrefix(ns, lab+"-")
	if !ok {
		return false
	}
	if rest == "ul" || rest == "out" {
		return true
	}
	if n, ok := strings.CutPrefix(rest, "h"); ok && isDigits(n) {
		return true
	}
	if r, ok := strings.CutPrefix(rest, "host"); ok {
		n, w, ok := strings.Cut(r, "-")
		return ok && isDigits(n) && w != ""
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// OutsideIndex is the underlay host number of the namespace that stands
// for the world outside the cluster (AddOutside): not a lab host.
const OutsideIndex = 200

// OutsideNS is the namespace AddOutside makes.
func (l *Lab) OutsideNS() string { return l.Name + "-out" }

// AddOutside makes a namespace on the underlay that is no sdn host (no
// sdnd, no OVS): a stand-in for the world outside the cluster, with the
// underlay address HostIP(OutsideIndex). Down removes it.
func (l *Lab) AddOutside() (ns string, ip netip.Addr, err error) {
	ns, ip = l.OutsideNS(), l.HostIP(OutsideIndex)
	created, err := ensureNS(ns)
	if err != nil || !created {
		return ns, ip, err
	}
	_, err = link.SetupWorkload(link.WorkloadIface{
		HostName:        "out",
		HostNSPath:      link.NSPath(l.UnderlayNS()),
		ContainerIfname: "ul0",
		NetNSPath:       link.NSPath(ns),
		Addr:            netip.PrefixFrom(ip, 24),
		MAC:             l.hostMAC(OutsideIndex),
		MTU:             l.cfg.UnderlayMTU,
		TxChecksumOff:   true,
	})
	if err != nil {
		return ns, ip, err
	}
	ul, err := link.Open(link.NSPath(l.UnderlayNS()))
	if err != nil {
		return ns, ip, err
	}
	defer ul.Close()
	return ns, ip, ul.SetMaster("out", "br0")
}
