package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ran is what a bounded run of a binary gave.
type ran struct {
	stdout, stderr string
	code           int
	rssMiB         int64 // peak resident memory
}

// runBounded runs a binary in the directory wd; if it has not exited after
// a minute, the FIFO unblock is opened for writing (so a reader waiting on
// it returns) and the test fails: the files it is given must be refused,
// not waited on.
func runBounded(t *testing.T, wd, unblock, bin string, args ...string) ran {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = wd
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		if unblock != "" {
			if w, oerr := os.OpenFile(unblock, os.O_WRONLY|syscall.O_NONBLOCK, 0); oerr == nil {
				w.Close()
			}
		}
		time.Sleep(time.Second)
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s did not exit within a minute", filepath.Base(bin), strings.Join(args, " "))
	}
	r := ran{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r.rssMiB = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss >> 10
	return r
}

// TestApplyRefusesHostileFiles runs the real sdnctl against a real sdnd with
// the files a hostile tester used (issue 11): each is refused with a clear
// message, the CLI neither crashes nor waits, and the store is unchanged.
func TestApplyRefusesHostileFiles(t *testing.T) {
	d := startDev(t)
	sdnctl := filepath.Join(d.bin, "sdnctl")
	dir := t.TempDir()
	top := filepath.Join(dir, "net")
	if err := os.MkdirAll(filepath.Join(top, "more"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, top, "a.hcl", "network \"top\" {}\n")
	writeFile(t, filepath.Join(top, "more"), "b.HCL", "network \"sub\" {}\n")
	d.mustSdnctl(t, "apply", "-f", top, "-f", filepath.Join(top, "more"))
	state := d.dump(t)
	if !strings.Contains(state, `"sub"`) || !strings.Contains(state, `"top"`) {
		t.Fatalf("networks top and sub (from b.HCL) not applied:\n%s", state)
	}

	deep := writeFile(t, dir, "deep.hcl", "cluster {\n  host_prefix = "+strings.Repeat("(", 100000)+"23"+strings.Repeat(")", 100000)+"\n}\n")
	fifo := filepath.Join(dir, "pipe.hcl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	huge := writeFile(t, dir, "huge.hcl", "network \"top\" {\n  labels = { env = \""+strings.Repeat("v", 1<<20)+"\" }\n}\n")
	loop := writeFile(t, dir, "loop.hcl", "cluster {\n  cidr = \"127.0.0.0/8\"\n}\n")
	expr := writeFile(t, dir, "expr.hcl", "cluster {\n  host_prefix = 20 + 3\n}\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		// Pruning with the subdirectory not named would delete network sub.
		{"prune without the subdirectory", []string{"apply", "--prune", "-f", top},
			"Subdirectory not read; " + filepath.Join(top, "more") + " holds .hcl files"},
		{"100,000 nested parentheses", []string{"apply", "-f", deep}, deep + ":2,48-49: Nesting too deep"},
		{"a FIFO", []string{"apply", "-f", fifo}, "Not a regular file; " + fifo + " is a named pipe (FIFO)"},
		{"a 1 MB label value", []string{"apply", "-f", huge}, `"... (1048576 bytes) of label "env" in network "top" is not valid`},
		{"loopback as the cluster cidr", []string{"apply", "-f", loop}, "Reserved address range; cidr 127.0.0.0/8 is in the loopback range"},
		{"an expression", []string{"apply", "-f", expr}, `Expressions are not supported; "+" is an operator`},
	} {
		// A child's peak as wait4 reports it is at least what this test
		// process held when it started the child (Linux carries the
		// parent's high-water mark across the exec): measure that floor
		// with a command that allocates nothing.
		floor := runBounded(t, dir, fifo, sdnctl, "--help").rssMiB
		r := runBounded(t, dir, fifo, sdnctl, append([]string{"--server", d.addr}, tc.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr:\n%.1000s\nwant exit 1 and %q", tc.name, r.code, r.stderr, tc.want)
		}
		if len(r.stderr) > 4000 {
			t.Errorf("%s: %d bytes of errors", tc.name, len(r.stderr))
		}
		if r.rssMiB > max(200, floor+16) {
			t.Errorf("%s: sdnctl peaked at %d MiB, want under 200 (or this test's own %d MiB, which a child's peak includes)", tc.name, r.rssMiB, floor)
		}
		t.Logf("%s: exit %d at %d MiB peak (floor %d MiB)", tc.name, r.code, r.rssMiB, floor)
	}
	if got := d.dump(t); got != state {
		t.Fatalf("refused applies changed the store:\n%s\n---\n%s", state, got)
	}
	// One file by two names is applied once, not refused as its own duplicate.
	t.Chdir(top)
	if out := d.mustSdnctl(t, "apply", "-f", "a.hcl", "-f", filepath.Join(top, "a.hcl"), "-f", filepath.Join(top, "more")); !strings.Contains(out, "No changes") {
		t.Errorf("the same files again: %s", out)
	}
}

// sdnd --config of a FIFO fails at once with the reason, instead of
// waiting for a writer; a number where a path belongs is refused.
func TestSdndConfigFileRefused(t *testing.T) {
	sdnd := filepath.Join(binaries(t), "sdnd")
	dir := t.TempDir()
	fifo := filepath.Join(dir, "sdnd.hcl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	num := writeFile(t, dir, "num.hcl", "dev = true\ndata_dir = 5\n")
	for _, tc := range []struct{ config, want string }{
		{fifo, "--config: " + fifo + " is a named pipe (FIFO); only regular files are read"},
		{num, num + `:2,12-13: Invalid value for "data_dir"; Want a string in quotes, e.g. data_dir = "/var/lib/sdnd", got number.`},
	} {
		r := runBounded(t, dir, fifo, sdnd, "--config", tc.config, "--listen", freePort(t), "--raft-addr", freePort(t))
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("--config %s: exit %d, stderr:\n%s\nwant %q", tc.config, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "5")); err == nil {
		t.Error("sdnd made a data directory named 5")
	}
}
