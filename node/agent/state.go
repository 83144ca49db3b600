package agent

import (
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// SaveDesired writes a desired state to path atomically (temp file, fsync,
// rename), as one snapshot watch event: the format the servers send.
func SaveDesired(path string, d *model.Desired) error {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&sdnv1.WatchEvent{
		Type: sdnv1.WatchEventType_WATCH_EVENT_TYPE_SNAPSHOT, Revision: d.Revision, Changes: d.Changes(), SnapshotDone: true, ClusterId: d.ClusterID,
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

// LoadDesired reads a saved desired state; a missing file is an empty one.
func LoadDesired(path string) (*model.Desired, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return model.NewDesired(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("load desired state: %w", err)
	}
	ev := &sdnv1.WatchEvent{}
	if err := proto.Unmarshal(raw, ev); err != nil {
		return nil, fmt.Errorf("load desired state %s: %w (remove the file to resync from the servers)", path, err)
	}
	d := model.NewDesired()
	d.Apply(ev.Changes, ev.Revision)
	d.ClusterID = ev.ClusterId
	return d, nil
}
