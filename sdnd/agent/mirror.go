package agent

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/protobuf/proto"
)

// Mirror is a host's copy of the desired state at one revision.
type Mirror struct {
	Revision uint64
	// ClusterID is the id of the cluster this state came from (empty for
	// state from before clusters had ids).
	ClusterID string
	Cluster   *sdnv1.ClusterSettings
	Networks  map[string]*sdnv1.Network
	Nodes     map[string]*sdnv1.Node
	Workloads map[string]*sdnv1.Workload // by "network/name"
}

// NewMirror returns an empty mirror at revision 0.
func NewMirror() *Mirror {
	return &Mirror{Networks: map[string]*sdnv1.Network{}, Nodes: map[string]*sdnv1.Node{}, Workloads: map[string]*sdnv1.Workload{}}
}

// Apply applies one revision's changes (or one snapshot chunk's puts).
func (m *Mirror) Apply(changes []*sdnv1.ObjectChange, rev uint64) {
	for _, c := range changes {
		del := c.Op == sdnv1.ChangeOp_CHANGE_OP_DELETE
		switch c.Kind {
		case "cluster":
			if del {
				m.Cluster = nil
			} else {
				m.Cluster = c.Cluster
			}
		case "network":
			if del {
				delete(m.Networks, c.Name)
			} else {
				m.Networks[c.Name] = c.Network
			}
		case "node":
			if del {
				delete(m.Nodes, c.Name)
			} else {
				m.Nodes[c.Name] = c.Node
			}
		case "workload":
			if del {
				delete(m.Workloads, c.Name)
			} else {
				m.Workloads[c.Name] = c.Workload
			}
		}
	}
	m.Revision = rev
}

// Changes renders the mirror as a snapshot's puts, in a stable order.
func (m *Mirror) Changes() []*sdnv1.ObjectChange {
	put := sdnv1.ChangeOp_CHANGE_OP_CREATE
	var out []*sdnv1.ObjectChange
	if m.Cluster != nil {
		out = append(out, &sdnv1.ObjectChange{Op: put, Kind: "cluster", Name: "cluster", Cluster: m.Cluster})
	}
	for _, k := range slices.Sorted(maps.Keys(m.Networks)) {
		out = append(out, &sdnv1.ObjectChange{Op: put, Kind: "network", Name: k, Network: m.Networks[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(m.Nodes)) {
		out = append(out, &sdnv1.ObjectChange{Op: put, Kind: "node", Name: k, Node: m.Nodes[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(m.Workloads)) {
		out = append(out, &sdnv1.ObjectChange{Op: put, Kind: "workload", Name: k, Workload: m.Workloads[k]})
	}
	return out
}

// Equal reports whether two mirrors hold the same state and revision.
func (m *Mirror) Equal(o *Mirror) bool {
	if m.Revision != o.Revision {
		return false
	}
	a, b := m.Changes(), o.Changes()
	return slices.EqualFunc(a, b, func(x, y *sdnv1.ObjectChange) bool { return proto.Equal(x, y) })
}

// Save writes the mirror to path atomically (temp file, fsync, rename).
func (m *Mirror) Save(path string) error {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&sdnv1.WatchEvent{
		Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT, Revision: m.Revision, Changes: m.Changes(), SnapshotDone: true, ClusterId: m.ClusterID,
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("save desired state: %w", err)
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return fmt.Errorf("save desired state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save desired state: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadMirror reads a saved mirror; a missing file is an empty mirror.
func LoadMirror(path string) (*Mirror, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return NewMirror(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("load desired state: %w", err)
	}
	ev := &sdnv1.WatchEvent{}
	if err := proto.Unmarshal(raw, ev); err != nil {
		return nil, fmt.Errorf("load desired state %s: %w (remove the file to resync from the servers)", path, err)
	}
	m := NewMirror()
	m.Apply(ev.Changes, ev.Revision)
	m.ClusterID = ev.ClusterId
	return m, nil
}
