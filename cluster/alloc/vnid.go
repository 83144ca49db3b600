package alloc

import (
	"fmt"
	"strconv"

	"github.com/sdn-dev/sdn/model"
)

// VNIDPool hands out 24-bit virtual network IDs, 1 through [model.MaxVNID]. VNID 0
// ([model.AdminVNID]) belongs to the admin network and is never allocated. Index i
// of the underlying [Pool] is VNID min+i. The full pool is a 2 MiB bitset.
type VNIDPool struct {
	min, max uint32
	pool     *Pool
}

// NewVNIDPool returns an empty pool of VNIDs 1 through 2^24-2, named
// "VNID space" in errors.
func NewVNIDPool() *VNIDPool {
	v, err := NewVNIDPoolRange(1, model.MaxVNID)
	if err != nil {
		panic(err) // unreachable: the full range is valid
	}
	return v
}

// NewVNIDPoolRange returns an empty pool of VNIDs min through max inclusive,
// named "VNID space <min>-<max>" in errors. Tests use it to exhaust a small
// pool; it fails unless 1 <= min <= max <= model.MaxVNID.
func NewVNIDPoolRange(min, max uint32) (*VNIDPool, error) {
	if min == model.AdminVNID || min > max || max > model.MaxVNID {
		return nil, fmt.Errorf("VNID range %d-%d: need 1 <= min <= max <= %d (VNID 0 is the admin network's)", min, max, model.MaxVNID)
	}
	name := "VNID space"
	if min != 1 || max != model.MaxVNID {
		name = fmt.Sprintf("VNID space %d-%d", min, max)
	}
	v := &VNIDPool{min: min, max: max}
	v.pool = NewPool(name, uint64(max-min)+1, "VNIDs", "delete unused networks")
	v.pool.item = func(i uint64) string { return "VNID " + strconv.FormatUint(uint64(min)+i, 10) }
	return v, nil
}

// Pool returns the underlying index pool, for cursor persistence and counts.
func (v *VNIDPool) Pool() *Pool { return v.pool }

// Allocate returns the next free VNID, next-fit. When every VNID is taken it
// returns an *ExhaustedError such as
//
//	VNID space is full (16777214 of 16777214 VNIDs used); delete unused networks
func (v *VNIDPool) Allocate() (uint32, error) {
	i, err := v.pool.Allocate()
	if err != nil {
		return 0, err
	}
	return v.min + uint32(i), nil
}

// Claim marks id used. It returns a *ReservedError for the admin VNID 0, a
// *NotInPoolError for any other VNID outside the pool's range and an
// *InUseError if id is already used.
func (v *VNIDPool) Claim(id uint32) error {
	if id == model.AdminVNID {
		return &ReservedError{Pool: v.pool.name, Item: "VNID 0", Reason: "the admin network's VNID"}
	}
	if id < v.min || id > v.max {
		return &NotInPoolError{Pool: v.pool.name, Item: "VNID " + strconv.FormatUint(uint64(id), 10),
			Reason: fmt.Sprintf("is out of range %d-%d", v.min, v.max)}
	}
	return v.pool.Claim(uint64(id - v.min))
}

// Release frees id. It reports false if id is not a VNID of the pool in use.
func (v *VNIDPool) Release(id uint32) bool {
	return id >= v.min && id <= v.max && v.pool.Release(uint64(id-v.min))
}

// InUse reports whether id is a VNID of the pool in use.
func (v *VNIDPool) InUse(id uint32) bool {
	return id >= v.min && id <= v.max && v.pool.InUse(uint64(id-v.min))
}
