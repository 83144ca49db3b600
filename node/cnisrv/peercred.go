package cnisrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// PeerCred is the AuthInfo of a connection on the agent's unix socket: the
// connecting process's credentials as the kernel recorded them when it
// connected (SO_PEERCRED), the pid in this process's pid namespace.
type PeerCred struct {
	credentials.CommonAuthInfo
	Pid, Uid, Gid int
}

// AuthType implements credentials.AuthInfo.
func (PeerCred) AuthType() string { return "peercred" }

// PeerCredentials are gRPC transport credentials for a unix socket server:
// no encryption (the socket is root-only), and each connection carries the
// peer's credentials, which a handler reads with CallerCred. Use them as
// grpc.Creds(PeerCredentials()).
func PeerCredentials() credentials.TransportCredentials { return peerCreds{} }

type peerCreds struct{}

// ServerHandshake reads SO_PEERCRED of an accepted unix connection. A
// connection of another kind passes with no credentials: CallerCred then
// says so.
func (peerCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return c, nil, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return nil, nil, fmt.Errorf("peer credentials (SO_PEERCRED): %w", serr)
	}
	return c, PeerCred{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity},
		Pid: int(cred.Pid), Uid: int(cred.Uid), Gid: int(cred.Gid)}, nil
}

// ClientHandshake passes through: these credentials are for the server.
func (peerCreds) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, nil, nil
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}
func (p peerCreds) Clone() credentials.TransportCredentials { return p }
func (peerCreds) OverrideServerName(string) error           { return nil }

// CallerCred returns the credentials of the process that made the call on
// the unix socket.
func CallerCred(ctx context.Context) (PeerCred, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return PeerCred{}, false
	}
	pc, ok := p.AuthInfo.(PeerCred)
	return pc, ok && pc.Pid > 0
}

// netnsPath is the path through which the agent reaches the namespace of a
// request: with netns_fd, /proc/<caller pid>/fd/<netns_fd>, the caller's
// open file (it keeps it open for the call), which works whatever mount
// namespace the caller sees its path in (docs/runtimes.md, "Capabilities"); without
// it, the request's netns, a path in the agent's own mount namespace.
func netnsPath(ctx context.Context, req *sdnv1.CNIRequest) (string, error) {
	if req.NetnsFd == 0 {
		return req.Netns, nil
	}
	if req.NetnsFd < 0 {
		return "", errorf(codes.InvalidArgument, "netns_fd %d is not a file descriptor", req.NetnsFd)
	}
	pc, ok := CallerCred(ctx)
	if !ok {
		return "", errorf(codes.InvalidArgument,
			"netns_fd %d sent, but the caller's process is not known (no SO_PEERCRED on this connection, or the caller is in a pid namespace the agent cannot see); send a netns path the agent can open instead",
			req.NetnsFd)
	}
	path := "/proc/" + strconv.Itoa(pc.Pid) + "/fd/" + strconv.Itoa(int(req.NetnsFd))
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", errorf(codes.InvalidArgument, "netns_fd %d of caller pid %d: no such open file (%s); the caller must keep the namespace open during the call", req.NetnsFd, pc.Pid, path)
		}
		return "", errorf(codes.InvalidArgument, "netns_fd %d of caller pid %d: %v", req.NetnsFd, pc.Pid, err)
	}
	return path, nil
}
