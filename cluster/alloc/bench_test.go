package alloc

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/sdn-dev/sdn/model"
)

// BenchmarkAllocate measures one Allocate plus the Release that keeps the
// pool at the same fill.
func BenchmarkAllocate(b *testing.B) {
	// VNID space (2^24-1) 90% full, free VNIDs scattered at random.
	b.Run("VNID-90%-random", func(b *testing.B) {
		v := NewVNIDPool()
		r := rand.New(rand.NewPCG(1, 2))
		for id := uint32(1); id <= model.MaxVNID; id++ {
			if r.Float64() < 0.9 {
				if err := v.Claim(id); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ResetTimer()
		for b.Loop() {
			id, err := v.Allocate()
			if err != nil {
				b.Fatal(err)
			}
			v.Release(id)
		}
	})
	// VNID space 90% full in one block that every search starts at: the worst
	// case, a scan over 15 million used VNIDs to the free tail.
	b.Run("VNID-90%-contiguous-worst", func(b *testing.B) {
		v := NewVNIDPool()
		for id := uint32(1); id <= model.MaxVNID/10*9; id++ {
			if err := v.Claim(id); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for b.Loop() {
			v.Pool().SetCursor(0)
			id, err := v.Allocate()
			if err != nil {
				b.Fatal(err)
			}
			v.Release(id)
		}
	})
	// A /23 host subnet (512 addresses) 90% full, free addresses at random.
	b.Run("IP-/23-90%-random", func(b *testing.B) {
		p := benchIPPool(b, 0.9)
		b.ResetTimer()
		for b.Loop() {
			a, err := p.Allocate()
			if err != nil {
				b.Fatal(err)
			}
			p.Release(a)
		}
	})
	// A /23 with a single free address just behind the cursor: every
	// Allocate wraps around the whole subnet to find it.
	b.Run("IP-/23-one-free", func(b *testing.B) {
		p := benchIPPool(b, 1)
		free := netip.MustParseAddr("10.128.0.100")
		if !p.Release(free) {
			b.Fatalf("Release(%s) = false", free)
		}
		p.Pool().SetCursor(101)
		b.ResetTimer()
		for b.Loop() {
			a, err := p.Allocate()
			if err != nil || a != free {
				b.Fatalf("Allocate = %s, %v; want %s", a, err, free)
			}
			p.Release(a)
		}
	})
}

// benchIPPool returns a /23 pool with about fill of its addresses claimed.
func benchIPPool(b *testing.B, fill float64) *IPPool {
	p, err := NewIPPool(netip.MustParsePrefix("10.128.0.0/23"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for a := p.Gateway().Next(); p.Subnet().Contains(a.Next()); a = a.Next() {
		if r.Float64() < fill {
			if err := p.Claim(a); err != nil {
				b.Fatal(err)
			}
		}
	}
	return p
}
