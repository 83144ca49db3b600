package alloc

import (
	"fmt"
	"net/netip"
)

// MinIPPoolPrefix is the shortest subnet an IPPool accepts (2^24 addresses).
const MinIPPoolPrefix = 32 - 24

// IPPool hands out the addresses of one host subnet to workloads. It reserves
// the network address, the first usable address (the host's gateway) and the
// broadcast address, so a /23 has 509 allocatable addresses. Index i of the
// underlying [Pool] is the subnet's i-th address.
type IPPool struct {
	subnet netip.Prefix
	base   uint32
	pool   *Pool
}

// NewIPPool returns an empty pool of the addresses of subnet. name is the
// pool's name in errors, e.g. `node "n3" subnet 10.128.0.0/23`; if empty it
// is "subnet <subnet>". It fails if subnet is not IPv4 with its host bits
// clear, or is shorter than /8 or longer than /30.
func NewIPPool(subnet netip.Prefix, name string) (*IPPool, error) {
	p, err := prefixPool(subnet, name, "subnet", "delete unused workloads on this node or run new ones on another node")
	if err != nil {
		return nil, err
	}
	p.pool.reserve(1, "the gateway")
	return p, nil
}

// NewVIPPool returns an empty pool of the virtual IPs of a service CIDR:
// every address but the network and broadcast ones (there is no gateway).
// name is as for NewIPPool, e.g. "service_cidr 172.30.0.0/16".
func NewVIPPool(cidr netip.Prefix, name string) (*IPPool, error) {
	return prefixPool(cidr, name, "service CIDR", "use a wider service_cidr or delete services")
}

// prefixPool is a pool of prefix's addresses but its network and broadcast
// addresses; what describes the prefix in errors, hint says what to do
// when it is full.
func prefixPool(subnet netip.Prefix, name, what, hint string) (*IPPool, error) {
	label := what + " " + subnet.String()
	if name == "" {
		name = label
	} else {
		label = name + ": " + label
	}
	switch {
	case !subnet.IsValid():
		return nil, fmt.Errorf("%s: invalid prefix", label)
	case !subnet.Addr().Is4():
		return nil, fmt.Errorf("%s: only IPv4 is supported", label)
	case subnet.Masked() != subnet:
		return nil, fmt.Errorf("%s has host bits set; did you mean %s?", label, subnet.Masked())
	case subnet.Bits() < MinIPPoolPrefix || subnet.Bits() > MaxHostPrefix:
		return nil, fmt.Errorf("%s: prefix length must be between /%d and /%d", label, MinIPPoolPrefix, MaxHostPrefix)
	}
	size := uint64(1) << (32 - subnet.Bits())
	p := &IPPool{
		subnet: subnet,
		base:   addr4(subnet.Addr()),
		pool:   NewPool(name, size, "addresses", hint),
	}
	p.pool.item = func(i uint64) string { return p.addr(i).String() }
	p.pool.reserve(0, "the network address")
	p.pool.reserve(size-1, "the broadcast address")
	return p, nil
}

// Subnet returns the subnet the pool hands out.
func (p *IPPool) Subnet() netip.Prefix { return p.subnet }

// Gateway returns the host's gateway: the first usable address, e.g.
// 10.128.0.1 for 10.128.0.0/23. It is never allocated.
func (p *IPPool) Gateway() netip.Addr { return p.addr(1) }

// Pool returns the underlying index pool, for cursor persistence and counts.
func (p *IPPool) Pool() *Pool { return p.pool }

// Allocate returns the next free address, next-fit. When every address is
// taken it returns an *ExhaustedError such as
//
//	node "n3" subnet 10.128.0.0/23 is full (509 of 509 addresses used); delete unused workloads on this node or run new ones on another node
func (p *IPPool) Allocate() (netip.Addr, error) {
	i, err := p.pool.Allocate()
	if err != nil {
		return netip.Addr{}, err
	}
	return p.addr(i), nil
}

// Claim marks a used. It returns a *NotInPoolError if a is not an address of
// the subnet, a *ReservedError if a is the network, gateway or broadcast
// address, and an *InUseError if a is already used.
func (p *IPPool) Claim(a netip.Addr) error {
	i, err := p.index(a)
	if err != nil {
		return err
	}
	return p.pool.Claim(i)
}

// Release frees a. It reports false if a is not an address of the pool in
// use.
func (p *IPPool) Release(a netip.Addr) bool {
	i, err := p.index(a)
	return err == nil && p.pool.Release(i)
}

// InUse reports whether a is an address of the pool in use.
func (p *IPPool) InUse(a netip.Addr) bool {
	i, err := p.index(a)
	return err == nil && p.pool.InUse(i)
}

func (p *IPPool) addr(i uint64) netip.Addr { return addrFrom4(p.base + uint32(i)) }

func (p *IPPool) index(a netip.Addr) (uint64, error) {
	if !a.Is4() || !p.subnet.Contains(a) {
		return 0, &NotInPoolError{Pool: p.pool.name, Item: a.String(), Reason: "is outside subnet " + p.subnet.String()}
	}
	return uint64(addr4(a) - p.base), nil
}
