package dockerdrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/sdn-dev/sdn/model"
)

// NetworkOption is the one driver option: `--opt network=NAME` names the
// sdn network a Docker network maps to.
const NetworkOption = "network"

// genericOptions is where Docker puts `docker network create --opt k=v`.
const genericOptions = "com.docker.network.generic"

// createNetwork records which sdn network the Docker network maps to, after
// checking that it exists and that Docker left the addresses to sdn.
func (d *Driver) createNetwork(ctx context.Context, req *createNetworkRequest) (any, error) {
	name, err := networkOption(req.Options)
	if err != nil {
		return nil, err
	}
	if err := nullIPAM(req.IPv4Data, req.IPv6Data); err != nil {
		return nil, err
	}
	var known bool
	d.cfg.Agent.View(func(m *model.Desired) { _, known = m.Networks[name] })
	if !known {
		return nil, fmt.Errorf("no sdn network named %q (`sdnctl get networks` lists them; declare it in HCL and `sdnctl apply` it first)", name)
	}
	if err := d.nets.put(req.NetworkID, name); err != nil {
		return nil, err
	}
	d.log.Info("Docker network created", "docker_network", short(req.NetworkID), "network", name)
	return struct{}{}, nil
}

// networkOption returns --opt network=NAME and refuses any other option.
func networkOption(opts map[string]any) (string, error) {
	generic, _ := opts[genericOptions].(map[string]any)
	var unknown []string
	for k := range generic {
		if k != NetworkOption {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return "", fmt.Errorf("unknown driver option(s) %s: the sdn driver takes only --opt %s=NAME", strings.Join(unknown, ", "), NetworkOption)
	}
	name, _ := generic[NetworkOption].(string)
	if name == "" {
		return "", fmt.Errorf("say which sdn network this Docker network is: docker network create -d sdn --ipam-driver null --opt %s=NAME NAME", NetworkOption)
	}
	return name, nil
}

// nullIPAM refuses pools from an IPAM driver other than "null": sdn
// allocates every address itself (from the host's block), and Docker does
// not let a driver replace an address its IPAM chose.
func nullIPAM(v4, v6 []ipamData) error {
	for _, p := range append(slices.Clone(v4), v6...) {
		if p.Pool != "" && p.Pool != "0.0.0.0/0" && p.Pool != "::/0" {
			return fmt.Errorf("Docker's IPAM gave this network the pool %s, but sdn assigns the addresses: create it with --ipam-driver null (and no --subnet)", p.Pool)
		}
	}
	return nil
}

// deleteNetwork forgets the mapping. Docker refuses to delete a network
// with endpoints, so there is nothing else to release.
func (d *Driver) deleteNetwork(ctx context.Context, req *networkRequest) (any, error) {
	if err := d.nets.del(req.NetworkID); err != nil {
		return nil, err
	}
	d.log.Info("Docker network deleted", "docker_network", short(req.NetworkID))
	return struct{}{}, nil
}

// network returns the sdn network a Docker network maps to.
func (d *Driver) network(nid string) (string, error) {
	if name := d.nets.get(nid); name != "" {
		return name, nil
	}
	return "", fmt.Errorf("Docker network %s was not created through this host's sdn driver (its record in %s is missing); remove it and create it again with -d sdn --opt %s=NAME",
		short(nid), d.cfg.StateFile, NetworkOption)
}

// netStore is the file of Docker network id → sdn network, rewritten whole
// (write, fsync, rename) on every change.
type netStore struct {
	path string
	mu   sync.Mutex
	m    map[string]string
}

func openNetStore(path string) (*netStore, error) {
	s := &netStore{path: path, m: map[string]string{}}
	if path == "" {
		return nil, errors.New("Docker network driver: no state file configured")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("Docker network driver: %w", err)
	}
	if err := json.Unmarshal(b, &s.m); err != nil {
		return nil, fmt.Errorf("Docker network driver: %s: %w (move it aside to start afresh; Docker networks made through sdn must then be created again)", path, err)
	}
	return s, nil
}

func (s *netStore) get(nid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[nid]
}

func (s *netStore) put(nid, network string) error {
	return s.change(func(m map[string]string) { m[nid] = network })
}

func (s *netStore) del(nid string) error {
	return s.change(func(m map[string]string) { delete(m, nid) })
}

// change applies fn to a copy and saves it; memory changes only once the
// file has.
func (s *netStore) change(fn func(map[string]string)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := maps.Clone(s.m)
	fn(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(s.path, b); err != nil {
		return fmt.Errorf("save the Docker networks to %s: %w", s.path, err)
	}
	s.m = m
	return nil
}

func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// short is how logs and errors show a Docker id.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
