package agent

import (
	"log/slog"

	"github.com/sdn-dev/sdn/model"
)

// SaveDesired writes a desired state to path whole and atomically (temp
// file, fsync, rename), as one snapshot watch event (the format the
// servers send), with an empty log beside it (store.go). The agent itself
// saves through its store, which appends what changed.
func SaveDesired(path string, d *model.Desired) error {
	s := &store{path: path}
	defer s.closeLog()
	return s.snapshot(d)
}

// LoadDesired reads a saved desired state (the snapshot and its log); a
// missing file is an empty one.
func LoadDesired(path string) (*model.Desired, error) {
	s, d, err := openStore(path, slog.Default())
	if err != nil {
		return nil, err
	}
	s.closeLog()
	return d, nil
}
