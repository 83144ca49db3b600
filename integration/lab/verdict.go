package lab

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/grpc"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Key is the workload's key in the model: "proj1/host1-proj1".
func (w *Workload) Key() string { return w.Network + "/" + w.SDNName() }

// Verdicter asks the servers' model (PolicyService.Verdict) what it
// decides for a packet, over one connection.
type Verdicter struct {
	conn *grpc.ClientConn
	c    sdnv1.PolicyServiceClient
}

// Verdicter connects to the lab's API for verdicts; Close it.
func (l *Lab) Verdicter() (*Verdicter, error) {
	conn, err := l.Dial()
	if err != nil {
		return nil, err
	}
	return &Verdicter{conn: conn, c: sdnv1.NewPolicyServiceClient(conn)}, nil
}

// Close closes the connection.
func (v *Verdicter) Close() { _ = v.conn.Close() }

// Verdict is the model's verdict on the first packet from `from` to `to`
// by protocol ("tcp", "udp", "icmp") and port (0 for icmp).
func (v *Verdicter) Verdict(ctx context.Context, from, to *Workload, protocol string, port int) (*sdnv1.VerdictResponse, error) {
	r, err := v.c.Verdict(ctx, &sdnv1.VerdictRequest{
		From:     &sdnv1.Endpoint{Workload: from.Key()},
		To:       &sdnv1.Endpoint{Workload: to.Key()},
		Protocol: protocol, Port: uint32(port),
	})
	if err != nil {
		return nil, fmt.Errorf("verdict %s -> %s %s/%d: %w", from.Key(), to.Key(), protocol, port, err)
	}
	return r, nil
}

// Denial is the decision that denied a verdict (egress first, as the
// packet meets it), nil when it is allowed.
func Denial(r *sdnv1.VerdictResponse) *sdnv1.Decision {
	switch {
	case r.GetAllowed():
		return nil
	case r.GetEgress() != nil && !r.GetEgress().GetAllowed():
		return r.GetEgress()
	default:
		return r.GetIngress()
	}
}

// DeniedBy names the policy that denied a verdict ("proj1/hello-web"), or
// "" when it is allowed or the baseline (the isolation mode) denied it.
func DeniedBy(r *sdnv1.VerdictResponse) string {
	d := Denial(r)
	if d == nil || d.GetBy() == "baseline" {
		return ""
	}
	if d.GetPolicy() != "" {
		return d.GetPolicy()
	}
	return d.GetBy()
}

// ModelMatrix asks the model about a ping (one ICMP echo) of every ordered
// pair of ws: who it lets reach whom, and for each denied pair the policy
// that denied it (Matrix.Why) and the model's words (Matrix.Reason).
func (l *Lab) ModelMatrix(ctx context.Context, ws []*Workload) (Matrix, error) {
	v, err := l.Verdicter()
	if err != nil {
		return Matrix{}, err
	}
	defer v.Close()
	m := newMatrix(ws)
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
	)
	sem := make(chan struct{}, 8)
	for _, a := range ws {
		for _, b := range ws {
			if a == b {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				r, err := v.Verdict(ctx, a, b, "icmp", 0)
				<-sem
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					first = cmpOr(first, err)
					return
				}
				m.set(a.ID(), b.ID(), r.GetAllowed())
				if d := Denial(r); d != nil {
					m.explain(a.ID(), b.ID(), DeniedBy(r), d.GetReason())
				}
			}()
		}
	}
	wg.Wait()
	return m, first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// shortPolicy is how a matrix cell names a policy: its name without the
// network ("hello-web" for "proj1/hello-web").
func shortPolicy(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[i+1:]
	}
	return key
}
