package alloc

import "fmt"

// ExhaustedError is returned by Allocate when a pool has no free index left.
// Used and Capacity count only allocatable indexes: reserved ones (a subnet's
// network, gateway and broadcast addresses) are in neither, so the message
// reads "509 of 509 addresses used" for a full /23.
type ExhaustedError struct {
	Pool     string // e.g. "cluster CIDR 10.128.0.0/14"
	Unit     string // e.g. "/23s"
	Hint     string // what the operator can do, e.g. "widen cluster.cidr or remove stale nodes"
	Used     uint64
	Capacity uint64
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("%s is full (%d of %d %s used); %s", e.Pool, e.Used, e.Capacity, e.Unit, e.Hint)
}

// InUseError is returned by Claim when the item is already allocated.
type InUseError struct {
	Pool string // e.g. `node "n3" subnet 10.128.0.0/23`
	Item string // e.g. "10.128.0.7"
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s is already in use in %s", e.Item, e.Pool)
}

// ReservedError is returned by Claim when the item is reserved and never
// allocated, such as a subnet's gateway or the admin network's VNID 0.
type ReservedError struct {
	Pool   string
	Item   string // e.g. "10.128.0.1"
	Reason string // what the item is, e.g. "the gateway"
}

func (e *ReservedError) Error() string {
	return fmt.Sprintf("%s is %s of %s and is never assigned", e.Item, e.Reason, e.Pool)
}

// NotInPoolError is returned by Claim when the item does not belong to the
// pool at all: out of range, outside the CIDR, misaligned, wrong prefix
// length or wrong address family.
type NotInPoolError struct {
	Pool   string
	Item   string // e.g. "10.128.1.0/23"
	Reason string // e.g. "is not aligned to a /23 boundary (did you mean 10.128.0.0/23?)"
}

func (e *NotInPoolError) Error() string {
	return fmt.Sprintf("%s: %s %s", e.Pool, e.Item, e.Reason)
}
