package link

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NSDir is where named network namespaces live, as with `ip netns`.
const NSDir = "/run/netns"

// NSPath returns the path of the named network namespace.
func NSPath(name string) string { return filepath.Join(NSDir, name) }

// NewNS creates a named network namespace like `ip netns add NAME` and
// returns its path (NSPath(name)). Its loopback interface is brought up,
// which `ip netns add` leaves to the user. A namespace of that name already
// existing is an error.
func NewNS(name string) (string, error) {
	if err := validNSName(name); err != nil {
		return "", err
	}
	if err := prepareNSDir(); err != nil {
		return "", err
	}
	path := NSPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create network namespace %q: %s already exists; delete it (DeleteNS, `ip netns del %s`) or pick another name",
				name, path, name)
		}
		return "", fmt.Errorf("create network namespace %q: %w", name, err)
	}
	f.Close()

	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime ends this thread when the goroutine
		// returns, so no other goroutine ever runs in the new namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount %s on %s: %w", self, path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return "", fmt.Errorf("create network namespace %q: %w", name, err)
	}

	h, err := Open(path)
	if err == nil {
		if l, lerr := h.linkByName("lo"); lerr != nil {
			err = lerr
		} else {
			err = h.setUp(l)
		}
		h.Close()
	}
	if err != nil {
		DeleteNS(name)
		return "", fmt.Errorf("create network namespace %q: %w", name, err)
	}
	return path, nil
}

// DeleteNS removes the named network namespace like `ip netns del NAME`. The
// kernel destroys the namespace, and with it its interfaces (and the host
// ends of veth pairs into it), once nothing else holds it. No error if it
// does not exist.
func DeleteNS(name string) error {
	if err := validNSName(name); err != nil {
		return err
	}
	path := NSPath(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete network namespace %q: unmount %s: %w", name, path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete network namespace %q: %w", name, err)
	}
	return nil
}

func validNSName(name string) error {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return fmt.Errorf("invalid network namespace name %q: want a plain file name", name)
	}
	return nil
}

var (
	nsDirMu    sync.Mutex
	nsDirReady bool
)

// prepareNSDir makes NSDir a shared mount point, as iproute2 does, so that
// namespaces mounted there propagate to mount namespaces cloned later.
func prepareNSDir() error {
	nsDirMu.Lock()
	defer nsDirMu.Unlock()
	if nsDirReady {
		return nil
	}
	if err := os.MkdirAll(NSDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", NSDir, err)
	}
	err := unix.Mount("", NSDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err = unix.Mount(NSDir, NSDir, "none", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			err = unix.Mount("", NSDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
	if err != nil {
		return fmt.Errorf("make %s a shared mount point: %w", NSDir, err)
	}
	nsDirReady = true
	return nil
}

// runInNS runs fn on a fresh OS thread inside ns and waits for it. The thread
// is locked and never unlocked, so the runtime discards it afterwards instead
// of handing a thread in the wrong namespace to another goroutine.
func runInNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
