package api

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sdn-dev/sdn/cluster"
)

// testServer is a real single-voter raft server (TCP on loopback, bbolt in a
// temp dir) serving the real API on a loopback port.
type testServer struct {
	raft *cluster.Server
	api  *Server
	conn *grpc.ClientConn
	addr string
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rs, err := cluster.NewServer(cluster.Config{DataDir: t.TempDir(), ID: "s1", RaftAddr: "127.0.0.1:0", Bootstrap: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rs.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for !rs.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := New(rs, log, Options{})
	g := grpc.NewServer(a.ServerOptions()...)
	a.Install(g)
	go g.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		g.Stop()
		rs.Shutdown()
	})
	return &testServer{raft: rs, api: a, conn: conn, addr: lis.Addr().String()}
}
