package dockerdrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// DefaultSocket is where Docker looks for plugin sockets; the driver's name
// is the socket's base name without ".sock", so this one is driver "sdn".
const DefaultSocket = "/run/docker/plugins/sdn.sock"

// Datapath plugs workload ports into the host's integration bridge
// (datapath/host); both calls are idempotent.
type Datapath interface {
	PlugWorkload(ctx context.Context, hostIfname string) (int, error)
	UnplugWorkload(ctx context.Context, hostIfname string) error
}

// Agent is this host's agent (*agent.Agent).
type Agent interface {
	View(fn func(m *model.Desired))
	Sync(ctx context.Context, rev uint64) error
}

// Config configures the driver.
type Config struct {
	// Node is this host's name, as the agent registered it.
	Node      string
	Workloads sdnv1.WorkloadServiceClient
	Agent     Agent
	Datapath  Datapath
	// StateFile keeps which sdn network each Docker network maps to
	// (Docker never repeats CreateNetwork); e.g. DATA_DIR/docker/networks.json.
	StateFile string
	// HostNSPath is the namespace of the veth pairs ("" = this process's).
	HostNSPath string
	// TxChecksumOff switches tx checksum offload off on the container end
	// (the userspace datapath needs it for TCP).
	TxChecksumOff bool
	// RealizeTimeout bounds Join's wait for the datapath; 0 means 20 s.
	RealizeTimeout time.Duration
	Logger         *slog.Logger
}

// Driver serves Docker's remote network-driver protocol.
type Driver struct {
	cfg  Config
	log  *slog.Logger
	nets *netStore
}

// New returns the driver, reading the networks it recorded before.
func New(cfg Config) (*Driver, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RealizeTimeout == 0 {
		cfg.RealizeTimeout = 20 * time.Second
	}
	nets, err := openNetStore(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	return &Driver{cfg: cfg, log: cfg.Logger, nets: nets}, nil
}

// Serve answers Docker on lis until ctx ends.
func (d *Driver) Serve(ctx context.Context, lis net.Listener) error {
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	d.log.Info("Docker network driver ready", "socket", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("Docker network driver on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// Handler is the protocol's HTTP handler: POST /Plugin.Activate and POST
// /NetworkDriver.<Method>.
func (d *Driver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /Plugin.Activate", func(w http.ResponseWriter, r *http.Request) {
		reply(w, activateResponse{Implements: []string{"NetworkDriver"}})
	})
	mux.HandleFunc("POST /NetworkDriver.GetCapabilities", func(w http.ResponseWriter, r *http.Request) {
		// local: each host's Docker keeps its own networks; sdn's servers
		// make them one network across hosts.
		reply(w, capabilitiesResponse{Scope: "local", ConnectivityScope: "global"})
	})
	handle(mux, "CreateNetwork", d.createNetwork)
	handle(mux, "DeleteNetwork", d.deleteNetwork)
	handle(mux, "CreateEndpoint", d.createEndpoint)
	handle(mux, "DeleteEndpoint", d.deleteEndpoint)
	handle(mux, "EndpointOperInfo", d.endpointInfo)
	handle(mux, "Join", d.join)
	handle(mux, "Leave", d.leave)
	// Nothing to do: sdn learns hosts from its servers, not from Docker's
	// discovery; external connectivity is sdn's SNAT (and `-p` is refused
	// at CreateEndpoint); AllocateNetwork is for swarm's global scope.
	for _, m := range []string{"DiscoverNew", "DiscoverDelete", "ProgramExternalConnectivity", "RevokeExternalConnectivity", "AllocateNetwork", "FreeNetwork"} {
		handle(mux, m, func(ctx context.Context, _ *json.RawMessage) (any, error) { return struct{}{}, nil })
	}
	return mux
}

// handle registers /NetworkDriver.method: decode Req, call fn, answer its
// result or {"Err": ...}.
func handle[Req any](mux *http.ServeMux, method string, fn func(ctx context.Context, req *Req) (any, error)) {
	mux.HandleFunc("POST /NetworkDriver."+method, func(w http.ResponseWriter, r *http.Request) {
		req := new(Req)
		if err := json.NewDecoder(r.Body).Decode(req); err != nil && !errors.Is(err, io.EOF) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(errResponse{Err: fmt.Sprintf("%s: cannot decode the request: %v", method, err)})
			return
		}
		res, err := fn(r.Context(), req)
		if err != nil {
			reply(w, errResponse{Err: err.Error()})
			return
		}
		reply(w, res)
	})
}

// contentType is the plugin protocol's media type.
const contentType = "application/vnd.docker.plugins.v1+json"

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", contentType)
	json.NewEncoder(w).Encode(v)
}
