package state

import (
	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Policy returns a policy by its key (model.PolicyKey: "network/name" or
// "name").
func (t *Tx) Policy(key string) (*sdnv1.Policy, bool) {
	return get(t, bucketPolicies, key, &sdnv1.Policy{})
}

// Policies lists every policy by key.
func (t *Tx) Policies() []*sdnv1.Policy {
	return list(t, bucketPolicies, "", func() *sdnv1.Policy { return &sdnv1.Policy{} })
}

// HasPolicies reports whether any policy is stored.
func (t *Tx) HasPolicies() bool {
	k, _ := t.bucket(bucketPolicies).Cursor().First()
	return k != nil
}

// PutPolicy stores a policy (its status and ranges, output and input
// only, are not stored).
func (t *Tx) PutPolicy(p *sdnv1.Policy) error {
	p.Status, p.Ranges = nil, nil
	return put(t, bucketPolicies, model.PolicyKey(p), p)
}

// DeletePolicy removes a policy by key.
func (t *Tx) DeletePolicy(key string) error {
	return t.deleteRecord(bucketPolicies, []byte(key))
}

// AddressGroup returns a derived address group by name.
func (t *Tx) AddressGroup(name string) (*sdnv1.AddressGroup, bool) {
	return get(t, bucketGroups, name, &sdnv1.AddressGroup{})
}

// AddressGroups lists the derived address groups by name.
func (t *Tx) AddressGroups() []*sdnv1.AddressGroup {
	return list(t, bucketGroups, "", func() *sdnv1.AddressGroup { return &sdnv1.AddressGroup{} })
}

// HasAddressGroups reports whether any address group is stored.
func (t *Tx) HasAddressGroups() bool {
	k, _ := t.bucket(bucketGroups).Cursor().First()
	return k != nil
}

// PutAddressGroup stores an address group.
func (t *Tx) PutAddressGroup(g *sdnv1.AddressGroup) error {
	return put(t, bucketGroups, g.Name, g)
}

// DeleteAddressGroup removes an address group.
func (t *Tx) DeleteAddressGroup(name string) error {
	return t.deleteRecord(bucketGroups, []byte(name))
}
