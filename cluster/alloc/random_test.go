package alloc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// allocator is what SubnetPool, IPPool and VNIDPool have in common.
type allocator[T comparable] interface {
	Allocate() (T, error)
	Claim(T) error
	Release(T) bool
	InUse(T) bool
	Pool() *Pool
}

// churn allocates and releases in random order, checking every result against
// an independent map of owners. It alternates between filling the pool until
// it is exhausted and draining it to a tenth, so allocation wraps around many
// times. Alongside runs a twin fed the same operations; halfway through, the
// twin is replaced by a pool rebuilt from the owners map (claimed in random
// order) and the original's cursor, and must keep returning the same results.
func churn[T comparable](t *testing.T, seed uint64, steps int, fresh func() allocator[T], all []T, valid func(T) error) {
	r := rand.New(rand.NewPCG(seed, 0x5d9))
	a, twin := fresh(), fresh()
	capacity := a.Pool().Capacity()
	if uint64(len(all)) != capacity {
		t.Fatalf("%d candidate values for a pool of capacity %d", len(all), capacity)
	}
	owners := map[T]string{} // value -> owner
	var held []T             // the keys of owners, in an order independent of map iteration
	filling, exhaustions := true, 0

	for n := range steps {
		if n == steps/2 {
			twin = fresh()
			order := r.Perm(len(held))
			for _, k := range order {
				if err := twin.Claim(held[k]); err != nil {
					t.Fatalf("rebuild: Claim(%v): %v", held[k], err)
				}
			}
			twin.Pool().SetCursor(a.Pool().Cursor())
		}
		pAlloc := 0.2
		if filling {
			pAlloc = 0.8
		}
		if len(held) == 0 || r.Float64() < pAlloc {
			v, err := a.Allocate()
			tv, terr := twin.Allocate()
			if v != tv || (err == nil) != (terr == nil) {
				t.Fatalf("step %d: Allocate = %v, %v; twin got %v, %v", n, v, err, tv, terr)
			}
			if err != nil {
				var ex *ExhaustedError
				if !errors.As(err, &ex) || uint64(len(owners)) != capacity || ex.Used != capacity || ex.Capacity != capacity {
					t.Fatalf("step %d: Allocate with %d of %d owned: %v", n, len(owners), capacity, err)
				}
				filling = false
				exhaustions++
				continue
			}
			if owner, dup := owners[v]; dup {
				t.Fatalf("step %d: Allocate = %v, already owned by %s", n, v, owner)
			}
			if err := valid(v); err != nil {
				t.Fatalf("step %d: Allocate = %v: %v", n, v, err)
			}
			owners[v] = fmt.Sprintf("owner-%d", n)
			held = append(held, v)
		} else {
			k := r.IntN(len(held))
			v := held[k]
			held[k] = held[len(held)-1]
			held = held[:len(held)-1]
			delete(owners, v)
			if !a.Release(v) || !twin.Release(v) {
				t.Fatalf("step %d: Release(%v) = false for an owned value", n, v)
			}
			if a.Release(v) {
				t.Fatalf("step %d: second Release(%v) = true", n, v)
			}
			if uint64(len(held)) < capacity/10 {
				filling = true
			}
		}
		if got := a.Pool().Used(); got != uint64(len(owners)) {
			t.Fatalf("step %d: Used = %d, owners map has %d", n, got, len(owners))
		}
		if n%5000 == 0 {
			for _, v := range all {
				if _, owned := owners[v]; a.InUse(v) != owned {
					t.Fatalf("step %d: InUse(%v) = %v, owners map says %v", n, v, !owned, owned)
				}
			}
		}
	}
	if exhaustions < 2 {
		t.Fatalf("pool exhausted %d times in %d steps; the test should wrap around more", exhaustions, steps)
	}
}

const churnSteps = 40000

var churnSeeds = []uint64{1, 2, 3, 42, 20240601}

func TestChurnVNIDs(t *testing.T) {
	const min, max = 1, 5000
	var all []uint32
	for id := uint32(min); id <= max; id++ {
		all = append(all, id)
	}
	fresh := func() allocator[uint32] {
		v, err := NewVNIDPoolRange(min, max)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	valid := func(id uint32) error {
		if id < min || id > max {
			return fmt.Errorf("outside %d-%d", min, max)
		}
		return nil
	}
	for _, seed := range churnSeeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { churn(t, seed, churnSteps, fresh, all, valid) })
	}
}

func TestChurnSubnets(t *testing.T) {
	cidr := netip.MustParsePrefix("10.0.0.0/12")
	const hostPrefix = 24 // 4096 hosts
	var all []netip.Prefix
	for i := range uint32(1 << (hostPrefix - 12)) {
		all = append(all, netip.PrefixFrom(addrFrom4(addr4(cidr.Addr())+i<<8), hostPrefix))
	}
	fresh := func() allocator[netip.Prefix] {
		s, err := NewSubnetPool(cidr, hostPrefix)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := func(p netip.Prefix) error {
		if p.Bits() != hostPrefix || p.Masked() != p || !cidr.Contains(p.Addr()) {
			return fmt.Errorf("not a /%d block of %s", hostPrefix, cidr)
		}
		return nil
	}
	for _, seed := range churnSeeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { churn(t, seed, churnSteps, fresh, all, valid) })
	}
}

func TestChurnIPs(t *testing.T) {
	subnet := netip.MustParsePrefix("10.128.16.0/20") // 4093 workloads
	network, gateway := subnet.Addr(), subnet.Addr().Next()
	broadcast := addrFrom4(addr4(network) + 1<<12 - 1)
	var all []netip.Addr
	for a := gateway.Next(); a != broadcast; a = a.Next() {
		all = append(all, a)
	}
	fresh := func() allocator[netip.Addr] {
		p, err := NewIPPool(subnet, `node "n1" subnet 10.128.16.0/20`)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid := func(a netip.Addr) error {
		if !subnet.Contains(a) || a == network || a == gateway || a == broadcast {
			return fmt.Errorf("not a workload address of %s", subnet)
		}
		return nil
	}
	for _, seed := range churnSeeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { churn(t, seed, churnSteps, fresh, all, valid) })
	}
}
