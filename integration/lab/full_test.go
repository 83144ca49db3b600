package lab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binaries builds sdnd, sdnctl and the CNI plugin (as "sdn") once per test
// run, into a directory removed by TestMain.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if builtBin, buildErr = os.MkdirTemp("", "sdn-lab-bin-"); buildErr != nil {
			return
		}
		for out, pkg := range map[string]string{"sdnd": "sdnd", "sdnctl": "sdnctl", "sdn": "cni"} {
			b, err := exec.Command("go", "build", "-o", filepath.Join(builtBin, out), "../../"+pkg).CombinedOutput()
			if err != nil {
				buildErr = &buildError{pkg, err, b}
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

type buildError struct {
	pkg string
	err error
	out []byte
}

func (e *buildError) Error() string {
	return "go build ./" + e.pkg + ": " + e.err.Error() + "\n" + string(e.out)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(builtBin)
	}
	os.Exit(code)
}

// TestLabUpMatrixDown runs the whole lab with two hosts: real sdnd
// processes (server+agent, agent), OVS, workloads attached by the real CNI
// plugin, real pings; then Up again, a detach, and a Down that leaves
// nothing behind.
func TestLabUpMatrixDown(t *testing.T) {
	needHost(t)
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "lab")
	before := snapshot(t, dir)
	cfg := Config{Name: "tf" + suffix(), Hosts: 2, Dir: dir, Bin: bin, Logger: testWriter{t}}
	downAtEnd(t, cfg.Name, dir)
	logsOnFailure(t, newLab(cfg))
	l, err := Up(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := l.AttachDefaults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 6 {
		t.Fatalf("attached %d workloads, want 6 (3 networks on 2 hosts)", len(ws))
	}
	var buf bytes.Buffer
	if err := l.CheckMatrix(&buf, ws); err != nil {
		t.Errorf("%v\n%s", err, buf.String())
	}
	t.Logf("\n%s", buf.String())

	// Up again keeps the daemons and the workloads.
	pids := procsUnder(dir)
	if _, err := Up(ctx, cfg); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if again := procsUnder(dir); !sameInts(again, pids) {
		t.Errorf("second Up replaced daemons: %v, then %v", pids, again)
	}
	ws2, err := l.AttachDefaults(ctx)
	if err != nil {
		t.Fatalf("second AttachDefaults: %v", err)
	}
	for k := range ws {
		if ws[k].IP != ws2[k].IP {
			t.Errorf("%s: address %s, then %s after a second attach", ws[k].ID(), ws[k].IP, ws2[k].IP)
		}
	}

	// Detach removes the workload from the cluster and its namespace.
	gone := ws[len(ws)-1]
	if err := l.Detach(gone); err != nil {
		t.Fatal(err)
	}
	out, err := l.Sdnctl("get", "workloads")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, gone.SDNName()) {
		t.Errorf("%s still listed after Detach:\n%s", gone.SDNName(), out)
	}
	if _, err := os.Stat("/run/netns/" + gone.NS); err == nil {
		t.Errorf("namespace %s left after Detach", gone.NS)
	}
	if l.Ping(ws[0], gone.IP) {
		t.Errorf("%s still answers at %s after Detach", gone.ID(), gone.IP)
	}

	fresh, err := Open(cfg.Name, dir, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Down(); err != nil {
		t.Fatalf("Down: %v", err)
	}
	checkClean(t, cfg.Name, dir, before)
}
