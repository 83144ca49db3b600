package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Sdnctl runs bin/sdnctl against the lab's API (host1's unix socket, with
// the lab's client-admin certificate) and returns its combined output.
func (l *Lab) Sdnctl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(l.Bin, "sdnctl"), append(append([]string{"--server", l.SdnctlServer()}, l.SdnctlTLSFlags()...), args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("sdnctl %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Exec runs a command inside a network namespace (`ip netns exec ns ...`)
// and returns its combined output.
func (l *Lab) Exec(ns string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("ip netns exec %s %s: %w: %s", ns, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func (l *Lab) dial() (*grpc.ClientConn, error) { return l.Dial() }

// Dial connects to host1's API socket with mutual TLS, as server/lab (see
// DialServer).
func (l *Lab) Dial() (*grpc.ClientConn, error) {
	return l.dialTLS("unix://" + l.APISocket())
}

// dialTLS connects to target as server/lab.
func (l *Lab) dialTLS(target string) (*grpc.ClientConn, error) {
	if err := l.ensureTLS(0); err != nil {
		return nil, err
	}
	cfg, err := pki.PathsFor(l.TLSDir(), pki.RoleServer, labIdentity).Client()
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
}

// poll calls check every 200 ms until it returns true or an error, or
// until timeout; what names the wait in the timeout error, and hint is
// appended to it.
func poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) (bool, error), hint func() string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := check(cctx)
		ccancel()
		if ok {
			return nil
		}
		var g giveUp
		if errors.As(err, &g) {
			return fmt.Errorf("waiting for %s: %w", what, g.err)
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("timed out after %s waiting for %s", timeout, what)
			if last != nil {
				msg += fmt.Sprintf(" (last error: %v)", last)
			}
			return fmt.Errorf("%s%s", msg, hint())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// giveUp, returned by a poll check, ends the wait at once; its error says
// all (poll adds no hint).
type giveUp struct{ err error }

func (g giveUp) Error() string { return g.err.Error() }

// sdndHint names a host's sdnd log and says whether the process died.
func (l *Lab) sdndHint(i int) func() string {
	return func() string {
		s := ""
		if l.sdnd(i).pid() == 0 {
			s = fmt.Sprintf("; %s's sdnd is not running", HostName(i))
			// Its reaper writes how it ended (exit status or signal) to
			// the log: give it a moment, that line is the diagnosis.
			time.Sleep(time.Second)
		}
		return fmt.Sprintf("%s; last lines of %s:\n%s", s, l.sdndLog(i), tail(l.sdndLog(i), 15))
	}
}

// waitServing waits until host1's API answers health checks with SERVING.
func (l *Lab) waitServing(ctx context.Context) error {
	conn, err := l.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	return poll(ctx, 90*time.Second, "host1's sdnd API at "+l.SdnctlServer(), func(ctx context.Context) (bool, error) {
		if l.sdnd(1).pid() == 0 {
			return false, giveUp{fmt.Errorf("host1's sdnd exited%s", l.sdndHint(1)())}
		}
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING, err
	}, l.sdndHint(1))
}

// waitRegistered waits until every host's agent has registered its node,
// logging each as it appears.
func (l *Lab) waitRegistered(ctx context.Context) error {
	conn, err := l.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	sc := sdnv1.NewStatusServiceClient(conn)
	seen := map[string]bool{}
	var pending []int
	for i := 1; i <= l.Hosts; i++ {
		pending = append(pending, i)
	}
	err = poll(ctx, 90*time.Second, "the agents to register", func(ctx context.Context) (bool, error) {
		for _, i := range pending {
			if l.sdnd(i).pid() == 0 {
				return false, giveUp{fmt.Errorf("%s's sdnd exited%s", HostName(i), l.sdndHint(i)())}
			}
		}
		r, err := sc.Status(ctx, &sdnv1.StatusRequest{})
		if err != nil {
			return false, err
		}
		for _, n := range r.GetNodes() {
			if !seen[n.GetName()] && n.GetState() == sdnv1.NodeState_NODE_STATE_READY {
				seen[n.GetName()] = true
				l.logf("%s: sdnd agent registered", n.GetName())
			}
		}
		pending = pending[:0]
		for i := 1; i <= l.Hosts; i++ {
			if !seen[HostName(i)] {
				pending = append(pending, i)
			}
		}
		return len(pending) == 0, nil
	}, func() string {
		var s []string
		for _, i := range pending {
			s = append(s, l.sdndHint(i)())
		}
		return strings.Join(s, "\n")
	})
	return err
}

// WaitRealized waits until every registered host has realized the
// cluster's current revision (e.g. after attaching workloads, so every
// host knows every workload).
func (l *Lab) WaitRealized(ctx context.Context, timeout time.Duration) error {
	conn, err := l.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	sc := sdnv1.NewStatusServiceClient(conn)
	var behind []string
	return poll(ctx, timeout, "every host to realize the current revision", func(ctx context.Context) (bool, error) {
		r, err := sc.Status(ctx, &sdnv1.StatusRequest{})
		if err != nil {
			return false, err
		}
		behind = behind[:0]
		for _, n := range r.GetNodes() {
			if n.GetRealizedRevision() < r.GetRevision() && !n.GetCurrent() {
				s := fmt.Sprintf("%s at %d of %d", n.GetName(), n.GetRealizedRevision(), r.GetRevision())
				if e := n.GetError(); e != "" {
					s += ": " + e
				}
				behind = append(behind, s)
			}
		}
		slices.Sort(behind)
		return len(behind) == 0, nil
	}, func() string { return "; behind: " + strings.Join(behind, ", ") })
}
