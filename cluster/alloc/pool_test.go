package alloc

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func mustAllocate(t *testing.T, p *Pool) uint64 {
	t.Helper()
	i, err := p.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	return i
}

func TestPoolNextFit(t *testing.T) {
	p := NewPool("test pool", 6, "slots", "free some")
	for want := uint64(0); want < 3; want++ {
		if got := mustAllocate(t, p); got != want {
			t.Fatalf("Allocate = %d, want %d", got, want)
		}
	}
	// Freed 1 and 0 are not reused while 3, 4, 5 are free ahead of the cursor.
	p.Release(1)
	p.Release(0)
	for _, want := range []uint64{3, 4, 5} {
		if got := mustAllocate(t, p); got != want {
			t.Fatalf("after releasing 0 and 1: Allocate = %d, want %d", got, want)
		}
	}
	// Only then does the search wrap around to them, lowest first.
	for _, want := range []uint64{0, 1} {
		if got := mustAllocate(t, p); got != want {
			t.Fatalf("after wrapping: Allocate = %d, want %d", got, want)
		}
	}
	if _, err := p.Allocate(); err == nil {
		t.Fatal("Allocate on a full pool succeeded")
	}
	// A release in the middle is found by wrapping from the cursor (now 2).
	p.Release(4)
	if got := mustAllocate(t, p); got != 4 {
		t.Fatalf("Allocate = %d, want 4", got)
	}
	if got := p.Cursor(); got != 5 {
		t.Fatalf("Cursor = %d, want 5", got)
	}
}

func TestPoolNextFitAcrossWords(t *testing.T) {
	// The cursor is in the middle of a word and the only free indexes are
	// behind it in the same word and far ahead, past several full words.
	const size = 64*64*3 + 17
	p := NewPool("test pool", size, "slots", "free some")
	for range size {
		mustAllocate(t, p)
	}
	p.Release(10)
	p.Release(size - 5)
	p.SetCursor(20)
	if got := mustAllocate(t, p); got != size-5 {
		t.Fatalf("Allocate = %d, want %d (ahead of the cursor before wrapping)", got, size-5)
	}
	if got := mustAllocate(t, p); got != 10 {
		t.Fatalf("Allocate = %d, want 10 (after wrapping)", got)
	}
}

func TestPoolCursorWraps(t *testing.T) {
	p := NewPool("test pool", 3, "slots", "free some")
	for range 3 {
		mustAllocate(t, p)
	}
	if got := p.Cursor(); got != 0 {
		t.Fatalf("Cursor after allocating the last index = %d, want 0", got)
	}
	p.SetCursor(7) // never returned by Cursor; taken as 0
	if got := p.Cursor(); got != 0 {
		t.Fatalf("SetCursor(7) on a 3-pool: Cursor = %d, want 0", got)
	}
}

func TestPoolReserve(t *testing.T) {
	p := NewPool("test pool", 5, "slots", "free some")
	p.Reserve(0)
	p.Reserve(0) // idempotent
	if got, want := p.Capacity(), uint64(4); got != want {
		t.Fatalf("Capacity = %d, want %d", got, want)
	}
	if got := mustAllocate(t, p); got != 1 {
		t.Fatalf("Allocate = %d, want 1 (0 is reserved)", got)
	}
	// Reserving a used index moves it from used to reserved.
	p.Reserve(1)
	if p.Used() != 0 || p.Capacity() != 3 || p.InUse(1) || !p.Reserved(1) {
		t.Fatalf("after Reserve(1): Used=%d Capacity=%d InUse(1)=%v Reserved(1)=%v, want 0 3 false true",
			p.Used(), p.Capacity(), p.InUse(1), p.Reserved(1))
	}
	if p.Release(1) {
		t.Fatal("Release of a reserved index reported true")
	}
	for range 3 {
		mustAllocate(t, p)
	}
	_, err := p.Allocate()
	if got, want := err.Error(), "test pool is full (3 of 3 slots used); free some"; got != want {
		t.Fatalf("exhausted error:\n got %s\nwant %s", got, want)
	}
	if got := slices.Collect(p.UsedIndexes()); !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("UsedIndexes = %v, want [2 3 4]", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Reserve out of range did not panic")
		}
	}()
	p.Reserve(5)
}

func TestPoolClaimErrors(t *testing.T) {
	p := NewPool("test pool", 10, "slots", "free some")
	p.Reserve(0)
	if err := p.Claim(3); err != nil {
		t.Fatal(err)
	}
	var notIn *NotInPoolError
	if err := p.Claim(10); !errors.As(err, &notIn) || err.Error() != "test pool: index 10 is out of range [0, 10)" {
		t.Errorf("Claim(10) = %v, want a *NotInPoolError saying out of range", err)
	}
	var reserved *ReservedError
	if err := p.Claim(0); !errors.As(err, &reserved) || err.Error() != "index 0 is a reserved index of test pool and is never assigned" {
		t.Errorf("Claim(0) = %v, want a *ReservedError", err)
	}
	var inUse *InUseError
	if err := p.Claim(3); !errors.As(err, &inUse) || err.Error() != "index 3 is already in use in test pool" {
		t.Errorf("Claim(3) twice = %v, want an *InUseError", err)
	}
	if p.Used() != 1 {
		t.Errorf("Used = %d after failed claims, want 1", p.Used())
	}
}

func TestPoolEmpty(t *testing.T) {
	p := NewPool("empty pool", 0, "slots", "make it bigger")
	_, err := p.Allocate()
	var ex *ExhaustedError
	if !errors.As(err, &ex) || ex.Capacity != 0 {
		t.Fatalf("Allocate on a 0-size pool = %v, want *ExhaustedError", err)
	}
	if p.Release(0) || p.InUse(0) || p.Claim(0) == nil {
		t.Fatal("0-size pool accepted index 0")
	}
}

// naivePool is a naive next-fit allocator, one bool per index, that the word-level
// Pool must agree with exactly.
type naivePool struct {
	taken, reserved []bool
	cursor          uint64
	used            uint64
}

func newModel(size uint64) *naivePool {
	return &naivePool{taken: make([]bool, size), reserved: make([]bool, size)}
}

func (m *naivePool) allocate() (uint64, bool) {
	n := uint64(len(m.taken))
	for k := range n {
		i := (m.cursor + k) % n
		if !m.taken[i] {
			m.taken[i] = true
			m.used++
			m.cursor = (i + 1) % n
			return i, true
		}
	}
	return 0, false
}

// step applies one operation, chosen by op and arg, to both p and m and
// fails the test if they disagree.
func step(t *testing.T, p *Pool, m *naivePool, op byte, arg uint64) {
	t.Helper()
	size := uint64(len(m.taken))
	switch op % 8 {
	case 0, 1, 2: // allocate (weighted so pools fill up)
		got, err := p.Allocate()
		want, ok := m.allocate()
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("Allocate = %d, %v; model says %d, %v", got, err, want, ok)
		}
	case 3, 4: // release
		i := arg % (size + 1) // sometimes out of range
		want := i < size && m.taken[i] && !m.reserved[i]
		if got := p.Release(i); got != want {
			t.Fatalf("Release(%d) = %v, want %v", i, got, want)
		}
		if want {
			m.taken[i] = false
			m.used--
		}
	case 5: // claim
		i := arg % (size + 1)
		want := i < size && !m.taken[i]
		if err := p.Claim(i); (err == nil) != want {
			t.Fatalf("Claim(%d) = %v, want success %v", i, err, want)
		}
		if want {
			m.taken[i] = true
			m.used++
		}
	case 6: // set cursor
		c := arg % (size + 2)
		p.SetCursor(c)
		if c >= size {
			c = 0
		}
		m.cursor = c
	case 7: // reserve, rarely
		if size == 0 || arg%16 != 0 {
			return
		}
		i := (arg / 16) % size
		if m.taken[i] && !m.reserved[i] {
			m.used--
		}
		p.Reserve(i)
		m.taken[i], m.reserved[i] = true, true
	}
	if p.Used() != m.used || p.Cursor() != m.cursor {
		t.Fatalf("Used, Cursor = %d, %d; model says %d, %d", p.Used(), p.Cursor(), m.used, m.cursor)
	}
}

func checkModel(t *testing.T, p *Pool, m *naivePool) {
	t.Helper()
	var reserved uint64
	for i := range uint64(len(m.taken)) {
		if got, want := p.InUse(i), m.taken[i] && !m.reserved[i]; got != want {
			t.Fatalf("InUse(%d) = %v, model says %v", i, got, want)
		}
		if m.reserved[i] {
			reserved++
		}
	}
	if got, want := p.Capacity(), uint64(len(m.taken))-reserved; got != want {
		t.Fatalf("Capacity = %d, model says %d", got, want)
	}
	if n := uint64(len(slices.Collect(p.UsedIndexes()))); n != p.Used() {
		t.Fatalf("UsedIndexes yields %d indexes, Used = %d", n, p.Used())
	}
}

// TestPoolMatchesModel drives the word-level Pool and the naive model with the
// same random operations, on sizes around word and summary boundaries.
func TestPoolMatchesModel(t *testing.T) {
	sizes := []uint64{0, 1, 2, 63, 64, 65, 127, 129, 64 * 64, 64*64 + 1, 64*64*2 + 3}
	for _, size := range sizes {
		for seed := range uint64(4) {
			r := rand.New(rand.NewPCG(seed, size))
			p, m := NewPool("model pool", size, "slots", "free some"), newModel(size)
			for n := range 20000 {
				step(t, p, m, byte(r.UintN(8)), r.Uint64())
				if n%2000 == 0 {
					checkModel(t, p, m)
				}
			}
			checkModel(t, p, m)
		}
	}
}

func FuzzPoolMatchesModel(f *testing.F) {
	f.Add(uint16(70), []byte{0, 0, 0, 3, 1, 0, 6, 60, 0, 0})
	f.Add(uint16(4097), []byte{0, 1, 2, 7, 0, 5, 9, 3, 4, 6, 200})
	f.Fuzz(func(t *testing.T, size uint16, ops []byte) {
		p, m := NewPool("fuzz pool", uint64(size), "slots", "free some"), newModel(uint64(size))
		for k := 0; k+1 < len(ops); k += 2 {
			step(t, p, m, ops[k], uint64(ops[k+1])*uint64(size)/255)
		}
		checkModel(t, p, m)
	})
}

// TestPoolRebuild checks the FSM's restart path: a pool rebuilt by claiming
// the used set (in any order) and restoring the cursor continues exactly as
// the original, and two pools fed the same operations agree.
func TestPoolRebuild(t *testing.T) {
	const size = 64*64 + 300
	for seed := range uint64(5) {
		r := rand.New(rand.NewPCG(seed, 1))
		a := NewPool("pool", size, "slots", "free some")
		b := NewPool("pool", size, "slots", "free some")
		for round := range 10 {
			for range 3000 {
				op, arg := r.UintN(8), r.Uint64()%size
				switch op {
				case 0, 1, 2, 3, 4:
					ia, erra := a.Allocate()
					ib, errb := b.Allocate()
					if ia != ib || (erra == nil) != (errb == nil) {
						t.Fatalf("seed %d round %d: Allocate = %d, %v and %d, %v", seed, round, ia, erra, ib, errb)
					}
				default:
					if ra, rb := a.Release(arg), b.Release(arg); ra != rb {
						t.Fatalf("seed %d round %d: Release(%d) = %v and %v", seed, round, arg, ra, rb)
					}
				}
			}
			// Rebuild b from a's used set, claimed in random order.
			used := slices.Collect(a.UsedIndexes())
			r.Shuffle(len(used), func(i, j int) { used[i], used[j] = used[j], used[i] })
			b = NewPool("pool", size, "slots", "free some")
			for _, i := range used {
				if err := b.Claim(i); err != nil {
					t.Fatal(err)
				}
			}
			b.SetCursor(a.Cursor())
			if a.Used() != b.Used() {
				t.Fatalf("rebuilt Used = %d, want %d", b.Used(), a.Used())
			}
		}
	}
}
