package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// NextGeneration reads the flow generation stored at path, increments it
// (wrapping past 65535 to 1; 0 is never used), stores the new value
// atomically (temporary file, fsync, rename, fsync of the directory) and
// returns it. A missing file starts at 1. Call it once per agent start:
// the flows of the new generation replace those of the old in place.
func NextGeneration(path string) (uint16, error) {
	var cur uint64
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("read flow generation: %w", err)
	default:
		cur, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 16)
		if err != nil {
			return 0, fmt.Errorf("read flow generation from %s: %q is not a number from 0 to 65535; fix or remove the file", path, strings.TrimSpace(string(b)))
		}
	}
	next := uint16(cur + 1)
	if next == 0 {
		next = 1
	}
	if err := writeAtomic(path, []byte(strconv.Itoa(int(next))+"\n")); err != nil {
		return 0, fmt.Errorf("store flow generation: %w", err)
	}
	return next, nil
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		return err
	}
	return nil
}
