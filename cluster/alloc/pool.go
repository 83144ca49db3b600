package alloc

import (
	"cmp"
	"fmt"
	"iter"
	"math/bits"
	"slices"
	"strconv"
)

// MaxPoolSize is the largest pool NewPool accepts: 2^24 indexes, a 2 MiB
// bitset. It covers the VNID space, 2^24 host subnets and a /8 of addresses.
const MaxPoolSize = 1 << 24

const allOnes = ^uint64(0)

// Pool hands out indexes in [0, size) from a bitset. Allocation is next-fit:
// it searches from the cursor (the index after the last allocated one),
// wrapping around, so a freed index is not reused at once (stale ARP/conntrack
// entries age out first). Deterministic.
//
// An index is in one of three states: free, used (allocated or claimed) or
// reserved (permanently unavailable, see [Pool.Reserve]). Reserved indexes do
// not count as used and do not count towards the capacity, so Used() ==
// Capacity() exactly when Allocate would fail.
type Pool struct {
	name, unit, hint string
	size             uint64
	used             uint64
	cursor           uint64

	// words holds one bit per index, set when the index is used or reserved.
	// Bits past size in the last word are set, so a scan never returns them.
	words []uint64
	// full holds one bit per word of words, set when that word is all ones.
	// Bits past len(words) in the last word are set.
	full []uint64
	// reserved is sorted by index; typically a handful of entries.
	reserved []reservation

	// item names index i in error messages ("10.128.0.7", "VNID 12").
	item func(i uint64) string
}

type reservation struct {
	index  uint64
	reason string
}

// NewPool returns an empty pool of size indexes. name, unit and hint appear in
// the error when the pool is full:
//
//	<name> is full (<used> of <capacity> <unit> used); <hint>
//
// e.g. name `cluster CIDR 10.128.0.0/14`, unit "/23s", hint "widen
// cluster.cidr or remove stale nodes". NewPool panics if size exceeds
// [MaxPoolSize]; the typed pools validate their input before calling it.
func NewPool(name string, size uint64, unit string, hint string) *Pool {
	if size > MaxPoolSize {
		panic(fmt.Sprintf("alloc: pool %s: size %d exceeds MaxPoolSize %d", name, size, MaxPoolSize))
	}
	nw := (size + 63) / 64
	p := &Pool{
		name:  name,
		unit:  unit,
		hint:  hint,
		size:  size,
		words: make([]uint64, nw),
		full:  make([]uint64, (nw+63)/64),
		item:  func(i uint64) string { return "index " + strconv.FormatUint(i, 10) },
	}
	if r := size % 64; r != 0 {
		p.words[nw-1] = allOnes << r
	}
	if r := nw % 64; r != 0 {
		p.full[len(p.full)-1] = allOnes << r
	}
	return p
}

// Name returns the pool's name as used in error messages.
func (p *Pool) Name() string { return p.name }

// Size returns the number of indexes, reserved ones included.
func (p *Pool) Size() uint64 { return p.size }

// Capacity returns the number of indexes that can be allocated: Size minus
// the reserved indexes.
func (p *Pool) Capacity() uint64 { return p.size - uint64(len(p.reserved)) }

// Used returns the number of allocated or claimed indexes. Reserved indexes
// are not counted.
func (p *Pool) Used() uint64 { return p.used }

// Free returns Capacity() - Used().
func (p *Pool) Free() uint64 { return p.Capacity() - p.used }

// Cursor returns where the next Allocate starts searching: the index after
// the last allocated one, wrapped to 0 at the end. Persist it next to the
// assignments so a rebuilt pool continues identically.
func (p *Pool) Cursor() uint64 { return p.cursor }

// SetCursor restores a cursor saved with [Pool.Cursor]. A value outside
// [0, Size()) (which Cursor never returns) is taken as 0.
func (p *Pool) SetCursor(c uint64) {
	if c >= p.size {
		c = 0
	}
	p.cursor = c
}

// InUse reports whether i is allocated or claimed. It is false for reserved
// and out-of-range indexes.
func (p *Pool) InUse(i uint64) bool {
	return p.taken(i) && !p.Reserved(i)
}

// Reserved reports whether i has been reserved with [Pool.Reserve].
func (p *Pool) Reserved(i uint64) bool {
	_, ok := p.findReserved(i)
	return ok
}

// Allocate returns the first free index at or after the cursor, wrapping
// around, marks it used and moves the cursor past it. It returns an
// *ExhaustedError when every index is used or reserved.
func (p *Pool) Allocate() (uint64, error) {
	if p.Free() == 0 {
		return 0, p.exhausted()
	}
	i, ok := p.findFree(p.cursor)
	if !ok {
		i, ok = p.findFree(0)
	}
	if !ok {
		// Unreachable: Free() > 0 means a clear bit below size exists.
		panic(fmt.Sprintf("alloc: pool %s: %d free but no clear bit", p.name, p.Free()))
	}
	p.set(i)
	p.used++
	p.cursor = i + 1
	if p.cursor == p.size {
		p.cursor = 0
	}
	return i, nil
}

// Claim marks i used, for rebuilding a pool from stored assignments. It does
// not move the cursor. It returns a *NotInPoolError if i is out of range, a
// *ReservedError if i is reserved and an *InUseError if i is already used.
func (p *Pool) Claim(i uint64) error {
	if i >= p.size {
		return &NotInPoolError{Pool: p.name, Item: p.item(i), Reason: fmt.Sprintf("is out of range [0, %d)", p.size)}
	}
	if p.taken(i) {
		if k, ok := p.findReserved(i); ok {
			return &ReservedError{Pool: p.name, Item: p.item(i), Reason: p.reserved[k].reason}
		}
		return &InUseError{Pool: p.name, Item: p.item(i)}
	}
	p.set(i)
	p.used++
	return nil
}

// Release frees i. It reports false, changing nothing, if i was not in use
// (free, reserved or out of range). It does not move the cursor, so i is
// handed out again only after the search wraps around to it.
func (p *Pool) Release(i uint64) bool {
	if !p.InUse(i) {
		return false
	}
	p.clear(i)
	p.used--
	return true
}

// Reserve makes i permanently unavailable: Allocate skips it, Claim refuses
// it, Release ignores it. A reserved index counts neither as used nor towards
// Capacity. Reserving a used index turns it into a reserved one (Used drops by
// one); reserving a reserved index does nothing. Reserve panics if i is out of
// range: reservations come from code, not from input.
func (p *Pool) Reserve(i uint64) { p.reserve(i, "a reserved index") }

// reserve is Reserve with the reason shown in a *ReservedError
// ("the gateway", "the network address").
func (p *Pool) reserve(i uint64, reason string) {
	if i >= p.size {
		panic(fmt.Sprintf("alloc: pool %s: reserve %d: out of range [0, %d)", p.name, i, p.size))
	}
	k, ok := p.findReserved(i)
	if ok {
		return
	}
	if p.taken(i) {
		p.used--
	} else {
		p.set(i)
	}
	p.reserved = slices.Insert(p.reserved, k, reservation{index: i, reason: reason})
}

// UsedIndexes yields the used indexes in ascending order.
func (p *Pool) UsedIndexes() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		r := 0 // next reservation to skip
		for w, word := range p.words {
			for word != 0 {
				b := uint64(bits.TrailingZeros64(word))
				word &= word - 1
				i := uint64(w)*64 + b
				if i >= p.size {
					return
				}
				for r < len(p.reserved) && p.reserved[r].index < i {
					r++
				}
				if r < len(p.reserved) && p.reserved[r].index == i {
					continue
				}
				if !yield(i) {
					return
				}
			}
		}
	}
}

func (p *Pool) exhausted() *ExhaustedError {
	return &ExhaustedError{Pool: p.name, Unit: p.unit, Hint: p.hint, Used: p.used, Capacity: p.Capacity()}
}

func (p *Pool) findReserved(i uint64) (int, bool) {
	return slices.BinarySearchFunc(p.reserved, i, func(r reservation, i uint64) int { return cmp.Compare(r.index, i) })
}

func (p *Pool) taken(i uint64) bool {
	return i < p.size && p.words[i/64]&(1<<(i%64)) != 0
}

func (p *Pool) set(i uint64) {
	w := i / 64
	p.words[w] |= 1 << (i % 64)
	if p.words[w] == allOnes {
		p.full[w/64] |= 1 << (w % 64)
	}
}

func (p *Pool) clear(i uint64) {
	w := i / 64
	p.words[w] &^= 1 << (i % 64)
	p.full[w/64] &^= 1 << (w % 64)
}

// findFree returns the lowest clear index in [from, size). It checks the word
// holding from, then uses the summary to skip full words 64 at a time.
func (p *Pool) findFree(from uint64) (uint64, bool) {
	nw := uint64(len(p.words))
	w := from / 64
	if w >= nw {
		return 0, false
	}
	if m := ^p.words[w] & (allOnes << (from % 64)); m != 0 {
		return w*64 + uint64(bits.TrailingZeros64(m)), true
	}
	for s := w + 1; s < nw; s = (s/64 + 1) * 64 {
		if m := ^p.full[s/64] & (allOnes << (s % 64)); m != 0 {
			fw := (s/64)*64 + uint64(bits.TrailingZeros64(m))
			if fw >= nw {
				return 0, false // padding bits are set; cannot happen
			}
			return fw*64 + uint64(bits.TrailingZeros64(^p.words[fw])), true
		}
	}
	return 0, false
}
