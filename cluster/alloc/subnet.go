package alloc

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// MaxHostPrefix is the longest host subnet prefix a SubnetPool hands out. A
// /30 has four addresses: network, gateway, broadcast and one workload.
const MaxHostPrefix = 30

// SubnetPool carves the cluster workload CIDR into /hostPrefix blocks, one per
// host. Index i of the underlying [Pool] is the i-th block from the start of
// the CIDR.
type SubnetPool struct {
	cidr       netip.Prefix
	hostPrefix int
	base       uint32 // first address of cidr
	shift      uint   // 32 - hostPrefix: index << shift is the block's offset
	pool       *Pool
}

// NewSubnetPool returns an empty pool of the /hostPrefix blocks of cidr. The
// pool is named "cluster CIDR <cidr>" in errors. It fails if cidr is not an
// IPv4 prefix with its host bits clear, if hostPrefix is not longer than
// cidr's prefix or is longer than /30 ([MaxHostPrefix]), or if cidr holds more
// than 2^24 blocks.
func NewSubnetPool(cidr netip.Prefix, hostPrefix int) (*SubnetPool, error) {
	if !cidr.IsValid() {
		return nil, fmt.Errorf("cluster CIDR: invalid prefix %q", cidr)
	}
	if !cidr.Addr().Is4() {
		return nil, fmt.Errorf("cluster CIDR %s: only IPv4 is supported", cidr)
	}
	if m := cidr.Masked(); m != cidr {
		return nil, fmt.Errorf("cluster CIDR %s has host bits set; did you mean %s?", cidr, m)
	}
	if hostPrefix <= cidr.Bits() || hostPrefix > MaxHostPrefix {
		return nil, fmt.Errorf("cluster CIDR %s: host subnet length /%d must be longer than /%d and at most /%d",
			cidr, hostPrefix, cidr.Bits(), MaxHostPrefix)
	}
	n := hostPrefix - cidr.Bits()
	if n > 24 {
		return nil, fmt.Errorf("cluster CIDR %s: /%d host subnets make 2^%d blocks, more than the 2^24 supported; use a shorter host subnet length",
			cidr, hostPrefix, n)
	}
	name := "cluster CIDR " + cidr.String()
	s := &SubnetPool{
		cidr:       cidr,
		hostPrefix: hostPrefix,
		base:       addr4(cidr.Addr()),
		shift:      uint(32 - hostPrefix),
		pool:       NewPool(name, 1<<n, fmt.Sprintf("/%ds", hostPrefix), "widen cluster.cidr or remove stale nodes"),
	}
	s.pool.item = func(i uint64) string { return s.block(i).String() }
	return s, nil
}

// CIDR returns the prefix the pool carves.
func (s *SubnetPool) CIDR() netip.Prefix { return s.cidr }

// HostPrefix returns the length of the blocks handed out.
func (s *SubnetPool) HostPrefix() int { return s.hostPrefix }

// Pool returns the underlying index pool, for cursor persistence and counts.
func (s *SubnetPool) Pool() *Pool { return s.pool }

// Allocate returns the next free block, next-fit. When every block is taken
// it returns an *ExhaustedError such as
//
//	cluster CIDR 10.128.0.0/14 is full (512 of 512 /23s used); widen cluster.cidr or remove stale nodes
func (s *SubnetPool) Allocate() (netip.Prefix, error) {
	i, err := s.pool.Allocate()
	if err != nil {
		return netip.Prefix{}, err
	}
	return s.block(i), nil
}

// Claim marks p used. p must be one of the pool's blocks: inside the CIDR,
// of length hostPrefix and aligned; otherwise Claim returns a
// *NotInPoolError. It returns an *InUseError if p is already used.
func (s *SubnetPool) Claim(p netip.Prefix) error {
	i, err := s.index(p)
	if err != nil {
		return err
	}
	return s.pool.Claim(i)
}

// Release frees p. It reports false if p is not a block of the pool in use.
func (s *SubnetPool) Release(p netip.Prefix) bool {
	i, err := s.index(p)
	if err != nil {
		return false
	}
	return s.pool.Release(i)
}

// InUse reports whether p is a block of the pool in use.
func (s *SubnetPool) InUse(p netip.Prefix) bool {
	i, err := s.index(p)
	return err == nil && s.pool.InUse(i)
}

func (s *SubnetPool) block(i uint64) netip.Prefix {
	return netip.PrefixFrom(addrFrom4(s.base+uint32(i)<<s.shift), s.hostPrefix)
}

func (s *SubnetPool) index(p netip.Prefix) (uint64, error) {
	bad := func(reason string) error {
		return &NotInPoolError{Pool: s.pool.name, Item: p.String(), Reason: reason}
	}
	switch {
	case !p.IsValid():
		return 0, bad("is not a valid prefix")
	case !p.Addr().Is4():
		return 0, bad("is not an IPv4 prefix")
	case p.Bits() != s.hostPrefix:
		return 0, bad(fmt.Sprintf("is not a /%d", s.hostPrefix))
	case !s.cidr.Contains(p.Addr()):
		return 0, bad("is outside the CIDR")
	case p.Masked() != p:
		return 0, bad(fmt.Sprintf("is not aligned to a /%d boundary (did you mean %s?)", s.hostPrefix, p.Masked()))
	}
	return uint64((addr4(p.Addr()) - s.base) >> s.shift), nil
}

// addr4 returns the IPv4 address a as a big-endian uint32.
func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func addrFrom4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
