package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/integration/lab"
	"google.golang.org/grpc"
)

// serverLab is a lab of 2 hosts (underlay and OVS only) plus 3 separate
// `sdnd --server` processes, for the multi-server tests.
type serverLab struct {
	*lab.Lab
	conns    []*grpc.ClientConn // by server number: conns[1..3]
	progress *strings.Builder   // the lab's progress lines, for failure messages
}

const labServers = 3

// upServerLab brings a serverLab up under a name made of prefix and this
// process's pid, removes it when the test ends, and dials every server.
// cfg may set ServerArgs and AgentArgs; the rest is filled in here.
func upServerLab(t *testing.T, ctx context.Context, prefix string, cfg lab.Config) *serverLab {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	dir := filepath.Join(t.TempDir(), "lab")
	s := &serverLab{progress: &strings.Builder{}}
	t.Cleanup(func() {
		ol, err := lab.Open(name, dir, nil)
		if err == nil {
			err = ol.Down()
		}
		if err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	cfg.Name, cfg.Hosts, cfg.Dir, cfg.Bin, cfg.UnderlayOnly, cfg.Logger = name, 2, dir, binaries(t), true, s.progress
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, s.progress.String())
	}
	if err := l.UpServers(ctx, labServers); err != nil {
		t.Fatalf("servers: %v\n%s", err, s.progress.String())
	}
	s.Lab = l
	s.conns = make([]*grpc.ClientConn, labServers+1)
	for k := 1; k <= labServers; k++ {
		c, err := l.DialServer(k)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s.conns[k] = c
	}
	return s
}
