// Package link is the one door through which sdn touches the kernel's
// network configuration (CONTRIBUTING.md, Shape: netlink through one door): links, addresses, routes, network
// namespaces and the one ethtool knob the datapath needs. Nothing else in sdn
// imports vishvananda/netlink.
//
// The heart is SetupWorkload: given the whole desired state of one workload
// interface (a veth pair whose host end stays in the host namespace and whose
// other end becomes e.g. eth0 in the workload's namespace, with its MAC,
// address, MTU, default route and checksum offload setting) it reads what the
// kernel holds, computes the difference and applies only that. Calling it
// twice with the same spec changes nothing; a half-made pair left by a crash
// is repaired or recreated. TeardownWorkload is idempotent, and
// CheckWorkload reports, by name, every way the namespace end differs from
// the spec (CNI CHECK).
//
// Namespaces are never entered by the calling goroutine. Work inside a
// namespace goes through a Handle: a netlink socket opened in that namespace
// (netlink.NewHandleAt does the brief thread switch internally). The few
// operations that need a thread inside the namespace (creating a namespace,
// opening the ioctl socket for ethtool) run on a dedicated goroutine that
// locks its OS thread and never unlocks it, so the thread is thrown away when
// the goroutine ends and no other goroutine can ever run in the wrong
// namespace.
//
// For the host side of the datapath: SetupHostIface makes an existing link
// that sdn owns but does not create (an OVS internal port) match a desired
// MAC, MTU, up state, IPv4 addresses and sdn's routes through it, saying
// what it changed; MoveAddr moves an address, with the gateway routes
// through it, from one link to another (userspace tunneling's br-phy);
// NetSysctl and SetNetSysctl read and write /proc/sys/net inside a
// namespace; Neighbors, KeepNeighbor (a "managed" ARP entry the kernel
// resolves at once and keeps resolved) and DeleteNeighbor handle the
// neighbour table, and RouteTo finds a destination's next hop. SetProtoRoutes keeps
// the routes of another owner's protocol number exactly (datapath/hostnet's
// route for the service CIDR), next to RouteProtocol's.
//
// Every netlink dump retries when the kernel flags it as interrupted
// (NLM_F_DUMP_INTR, netlink.ErrDumpInterrupted), like containernetworking's
// netlinksafe; unlike netlinksafe, after the last attempt it returns an error
// rather than possibly inconsistent data, because callers delete what a dump
// says is stale.
//
// Transmit checksum offload is switched with the SIOCETHTOOL ioctl
// (ETHTOOL_STXCSUM / ETHTOOL_GTXCSUM, the same feature mask as
// `ethtool -K eth0 tx off`) through golang.org/x/sys/unix; no ethtool binary
// is needed.
//
// NewNS and DeleteNS manage named namespaces under /run/netns exactly where
// `ip netns` keeps them, so `ip netns exec` works on them; the lab and the
// tests use them.
package link
