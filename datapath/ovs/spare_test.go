package ovs

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

var parseArgs = []string{"-O", "OpenFlow15", "parse-flows", "-"}

// idleSpare waits until i holds an idle spare for parse-flows and returns it.
func idleSpare(t *testing.T, i *Instance) *spareProc {
	t.Helper()
	key := spareKey("ovs-ofctl", parseArgs)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		i.spare.mu.Lock()
		p := i.spare.idle[key]
		i.spare.mu.Unlock()
		if p != nil {
			return p
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no spare ovs-ofctl parse-flows was started within 10 s")
	return nil
}

// TestSpareRuns: a run through a spare process prints what a fresh
// process prints, a failing one reports ovs-ofctl's error, a spare that
// died before it was taken is not used, and Close kills the idle spare.
func TestSpareRuns(t *testing.T) {
	i := &Instance{RunDir: t.TempDir()}
	ctx := context.Background()
	const flow = "table=3,priority=7,ip,nw_dst=10.1.0.0/16,actions=drop\n"
	fresh, err := i.run(ctx, strings.NewReader(flow), "ovs-ofctl", parseArgs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := i.runInput(ctx, flow, "ovs-ofctl", parseArgs...); err != nil { // starts the spare
		t.Fatal(err)
	}
	first := idleSpare(t, i)
	out, err := i.runInput(ctx, flow, "ovs-ofctl", parseArgs...)
	if err != nil {
		t.Fatal(err)
	}
	if out != fresh || !strings.Contains(out, "nw_dst=10.1.0.0/16") {
		t.Fatalf("through a spare: %q, fresh: %q", out, fresh)
	}
	if !first.exited() {
		t.Fatal("the run did not use the idle spare")
	}

	_, err = i.runInput(ctx, "table=3,no_such_field=1,actions=drop\n", "ovs-ofctl", parseArgs...)
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Stderr, "no_such_field") {
		t.Fatalf("a bad line through a spare: %v, want a CommandError naming the field", err)
	}

	dead := idleSpare(t, i)
	if err := dead.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-dead.done
	if out, err := i.runInput(ctx, flow, "ovs-ofctl", parseArgs...); err != nil || out != fresh {
		t.Fatalf("after the spare was killed: %q, %v; want the fresh output", out, err)
	}

	last := idleSpare(t, i)
	i.Close()
	select {
	case <-last.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close left the idle spare running")
	}
	if out, err := i.runInput(ctx, flow, "ovs-ofctl", parseArgs...); err != nil || out != fresh {
		t.Fatalf("after Close: %q, %v; want the fresh output", out, err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(i.spare.idle); n != 0 {
		t.Fatalf("%d spares started after Close", n)
	}
}
