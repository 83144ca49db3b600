package node

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sdn-dev/sdn/datapath/host"
	"github.com/sdn-dev/sdn/node/dpsvc"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// DatapathListenOff turns the datapath service off (--datapath-listen off).
const DatapathListenOff = "off"

// listenDatapath opens the datapath service's listener (node/dpsvc) as
// --datapath-listen asks: "" is the underlay address with dpsvc.DefaultPort,
// "off" is none (nil listener, "" address). It returns the address the
// agent registers for the servers to dial: a wildcard host becomes the
// underlay address.
func listenDatapath(spec string, underlay net.IP) (net.Listener, string, error) {
	if spec == DatapathListenOff {
		return nil, "", nil
	}
	if spec == "" {
		spec = net.JoinHostPort(underlay.String(), strconv.Itoa(dpsvc.DefaultPort))
	}
	host, port, err := net.SplitHostPort(spec)
	if err != nil {
		return nil, "", fmt.Errorf("--datapath-listen %q: want ip:port or off: %v", spec, err)
	}
	lis, err := net.Listen("tcp", spec)
	if err != nil {
		return nil, "", fmt.Errorf("datapath service: %w (--datapath-listen chooses another address, or off)", err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = underlay.String()
	}
	if port == "0" {
		_, port, _ = net.SplitHostPort(lis.Addr().String())
	}
	return lis, net.JoinHostPort(host, port), nil
}

// tracerOf is the host datapath as the datapath service sees it: the real
// host datapath traces and counts; any other (a test's) answers that it
// cannot.
func tracerOf(dp hostDatapath) dpsvc.Tracer {
	if h, ok := dp.(*host.Datapath); ok {
		return hostTracer{h}
	}
	return noTracer{}
}

// hostTracer adapts the host datapath to the service's packet type.
type hostTracer struct{ dp *host.Datapath }

func (h hostTracer) Trace(ctx context.Context, p dpsvc.Packet) (*sdnv1.HostTrace, error) {
	return h.dp.Trace(ctx, host.TracePacket{InWorkload: p.InWorkload, TunnelVNID: p.TunnelVNID,
		Src: p.Src, Dst: p.Dst, Protocol: p.Protocol, Port: p.Port})
}

func (h hostTracer) RuleCounters(ctx context.Context) ([]*sdnv1.HostRuleCounters, error) {
	return h.dp.RuleCounters(ctx)
}

// noTracer answers that this datapath cannot trace.
type noTracer struct{}

var errNoTrace = status.Error(codes.Unimplemented, "this agent's datapath cannot trace packets or read rule counters")

func (noTracer) Trace(context.Context, dpsvc.Packet) (*sdnv1.HostTrace, error) {
	return nil, errNoTrace
}
func (noTracer) RuleCounters(context.Context) ([]*sdnv1.HostRuleCounters, error) {
	return nil, errNoTrace
}
