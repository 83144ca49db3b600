package alloc

import (
	"errors"
	"testing"

	"github.com/sdn-dev/sdn/model"
)

func TestVNIDPoolStartsAtOne(t *testing.T) {
	v := NewVNIDPool()
	if got := v.Pool().Size(); got != 1<<24-2 {
		t.Fatalf("Size = %d, want 2^24-2 (0 is the admin network's, 2^24-1 the hosts')", got)
	}
	if id, err := v.Allocate(); err != nil || id != 1 {
		t.Fatalf("first Allocate = %d, %v; want 1 (0 is the admin network's)", id, err)
	}
	if err := v.Claim(model.MaxVNID); err != nil {
		t.Fatalf("Claim(model.MaxVNID): %v", err)
	}
	if !v.InUse(model.MaxVNID) || !v.Release(model.MaxVNID) || v.Release(model.MaxVNID) || v.Release(0) {
		t.Fatal("InUse/Release misbehave")
	}
}

func TestVNIDPoolExhausted(t *testing.T) {
	t.Run("range", func(t *testing.T) {
		v, err := NewVNIDPoolRange(100, 103)
		if err != nil {
			t.Fatal(err)
		}
		for want := uint32(100); want <= 103; want++ {
			if got, err := v.Allocate(); err != nil || got != want {
				t.Fatalf("Allocate = %d, %v; want %d", got, err, want)
			}
		}
		_, err = v.Allocate()
		var ex *ExhaustedError
		if !errors.As(err, &ex) || err.Error() != "VNID space 100-103 is full (4 of 4 VNIDs used); delete unused networks" {
			t.Fatalf("Allocate on a full pool = %v", err)
		}
	})
	t.Run("full", func(t *testing.T) {
		if testing.Short() {
			t.Skip("allocates all 16777214 VNIDs")
		}
		v := NewVNIDPool()
		for range model.MaxVNID {
			if _, err := v.Allocate(); err != nil {
				t.Fatal(err)
			}
		}
		_, err := v.Allocate()
		var ex *ExhaustedError
		if !errors.As(err, &ex) {
			t.Fatalf("Allocate on a full pool = %v, want *ExhaustedError", err)
		}
		const want = "VNID space is full (16777214 of 16777214 VNIDs used); delete unused networks"
		if err.Error() != want {
			t.Fatalf("error:\n got %s\nwant %s", err, want)
		}
	})
}

func TestVNIDPoolClaimErrors(t *testing.T) {
	v := NewVNIDPool()
	if err := v.Claim(42); err != nil {
		t.Fatal(err)
	}
	var notIn *NotInPoolError
	var reserved *ReservedError
	var inUse *InUseError
	tests := []struct {
		id   uint32
		as   any
		want string
	}{
		{0, &reserved, "VNID 0 is the admin network's VNID of VNID space and is never assigned"},
		{1 << 24, &notIn, "VNID space: VNID 16777216 is out of range 1-16777214"},
		{model.HostVNID, &notIn, "VNID space: VNID 16777215 is out of range 1-16777214"},
		{42, &inUse, "VNID 42 is already in use in VNID space"},
	}
	for _, tt := range tests {
		err := v.Claim(tt.id)
		if err == nil {
			t.Errorf("Claim(%d) succeeded", tt.id)
			continue
		}
		if !errors.As(err, tt.as) {
			t.Errorf("Claim(%d) = %T, want %T", tt.id, err, tt.as)
		}
		if err.Error() != tt.want {
			t.Errorf("Claim(%d):\n got %s\nwant %s", tt.id, err, tt.want)
		}
	}
	r, err := NewVNIDPoolRange(10, 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Claim(9); err == nil || err.Error() != "VNID space 10-20: VNID 9 is out of range 10-20" {
		t.Errorf("Claim(9) on 10-20 = %v", err)
	}
}

func TestNewVNIDPoolRangeErrors(t *testing.T) {
	for _, r := range [][2]uint32{{0, 10}, {5, 4}, {1, 1 << 24}} {
		if _, err := NewVNIDPoolRange(r[0], r[1]); err == nil {
			t.Errorf("NewVNIDPoolRange(%d, %d) succeeded", r[0], r[1])
		}
	}
}
