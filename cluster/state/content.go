package state

import (
	"encoding/binary"
	"fmt"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// CheckContent checks what the store itself promises about its records,
// beyond their checksums (a restore checks an image with it before the
// image replaces anything; package fsm checks the objects against the
// model's rules): every record decodes, is stored under the key its
// content names, and no object or history record is from a revision the
// state has not reached. It returns each problem found, in key order.
func (t *Tx) CheckContent() []string {
	m := t.Meta()
	var out []string
	bad := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	if m.Compacted > m.Revision {
		bad("meta: history compacted up to revision %d, past the state's revision %d", m.Compacted, m.Revision)
	}
	revs := func(what string, create, mod uint64) {
		if mod > m.Revision || create > mod {
			bad("%s: created at revision %d, changed at %d; the state is at revision %d", what, create, mod, m.Revision)
		}
	}
	t.forEach(bucketSettings, "", func(k, p []byte) bool {
		c := &sdnv1.ClusterSettings{}
		t.decode(bucketSettings, k, p, c)
		if string(k) != string(keyCluster) {
			bad("settings: a record under %s, where only %q belongs", quoteKey(string(k)), keyCluster)
		}
		revs("the cluster settings", 0, c.ModRevision)
		return true
	})
	t.forEach(bucketNetworks, "", func(k, p []byte) bool {
		n := &sdnv1.Network{}
		t.decode(bucketNetworks, k, p, n)
		keyed(bad, bucketNetworks, k, n.Name)
		revs(fmt.Sprintf("network %q", n.Name), n.CreateRevision, n.ModRevision)
		return true
	})
	t.forEach(bucketNodes, "", func(k, p []byte) bool {
		n := &sdnv1.Node{}
		t.decode(bucketNodes, k, p, n)
		keyed(bad, bucketNodes, k, n.Name)
		revs(fmt.Sprintf("node %q", n.Name), n.CreateRevision, n.ModRevision)
		return true
	})
	t.forEach(bucketWorkloads, "", func(k, p []byte) bool {
		w := &sdnv1.Workload{}
		t.decode(bucketWorkloads, k, p, w)
		keyed(bad, bucketWorkloads, k, model.WorkloadKey(w.Network, w.Name))
		revs(fmt.Sprintf("workload %q", model.WorkloadKey(w.Network, w.Name)), w.CreateRevision, w.ModRevision)
		return true
	})
	t.forEach(bucketPolicies, "", func(k, p []byte) bool {
		pol := &sdnv1.Policy{}
		t.decode(bucketPolicies, k, p, pol)
		keyed(bad, bucketPolicies, k, model.PolicyKey(pol))
		revs(fmt.Sprintf("policy %q", model.PolicyKey(pol)), pol.CreateRevision, pol.ModRevision)
		return true
	})
	t.forEach(bucketGroups, "", func(k, p []byte) bool {
		g := &sdnv1.AddressGroup{}
		t.decode(bucketGroups, k, p, g)
		keyed(bad, bucketGroups, k, g.Name)
		revs(fmt.Sprintf("address group %q", g.Name), 0, g.ModRevision)
		return true
	})
	t.forEach(bucketServices, "", func(k, p []byte) bool {
		v := &sdnv1.Service{}
		t.decode(bucketServices, k, p, v)
		keyed(bad, bucketServices, k, model.ServiceKey(v))
		revs(fmt.Sprintf("service %q", model.ServiceKey(v)), v.CreateRevision, v.ModRevision)
		return true
	})
	t.forEach(bucketEndpoints, "", func(k, p []byte) bool {
		ep := &sdnv1.ServiceEndpoints{}
		t.decode(bucketEndpoints, k, p, ep)
		keyed(bad, bucketEndpoints, k, ep.Service)
		revs(fmt.Sprintf("endpoints of service %q", ep.Service), 0, ep.ModRevision)
		return true
	})
	t.forEach(bucketMeta, keyRevokedPfx, func(k, p []byte) bool {
		c := &sdnv1.RevokedCertificate{}
		t.decode(bucketMeta, k, p, c)
		keyed(bad, bucketMeta, k, keyRevokedPfx+c.Serial)
		return true
	})
	out = append(out, t.checkHistory(m)...)
	return out
}

// keyed notes a record not stored under the key its content names.
func keyed(bad func(string, ...any), bucket, key []byte, want string) {
	if string(key) != want {
		bad("%s: the record under %s names %q", bucket, quoteKey(string(key)), want)
	}
}

// checkHistory checks the change history: each record under its own
// revision, after the compacted one and not past the state's.
func (t *Tx) checkHistory(m Meta) []string {
	var out []string
	t.forEach(bucketChanges, "", func(k, p []byte) bool {
		ev := &sdnv1.WatchEvent{}
		t.decode(bucketChanges, k, p, ev)
		switch {
		case len(k) != 8 || binary.BigEndian.Uint64(k) != ev.Revision:
			out = append(out, fmt.Sprintf("changes: the record under %x is of revision %d", k, ev.Revision))
		case ev.Revision <= m.Compacted || ev.Revision > m.Revision:
			out = append(out, fmt.Sprintf("changes: a record of revision %d, outside the history's %d-%d", ev.Revision, m.Compacted+1, m.Revision))
		}
		return true
	})
	return out
}
