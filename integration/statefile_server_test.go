package integration

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The state-file tests' sdnd: started on a copy of a state directory,
// watched until it serves, stops, or hangs.

// startStateServer starts `sdnd --dev` on dir and waits until it serves
// (true) or exits (false). It returns nil when it does neither within a
// minute (and kills it).
func startStateServer(t *testing.T, bin, dir string) (*compatServer, bool) {
	t.Helper()
	s := launchCompatServer(t, bin, dir, "1h")
	h := healthpb.NewHealthClient(s.conn)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-s.done:
			return s, false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && res.Status == healthpb.HealthCheckResponse_SERVING {
			return s, true
		}
	}
	// SIGQUIT makes the Go runtime print every goroutine's stack: where
	// it hangs.
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
	t.Logf("sdnd neither served nor exited within a minute; its log (with its goroutines, after SIGQUIT):\n%s", s.log)
	s.kill()
	return nil, false
}

// copyTree copies the regular files and directories under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		copyFileTo(t, p, target)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
