// Package cnidrive runs CNI plugins as a container runtime does, for the
// CNI ADD benchmarks: the plugin binary executed once per container with
// the CNI_* variables and the network configuration on stdin, in a fresh
// network namespace per container made before the clock starts, and the
// run of each ADD timed from the plugin's start to its exit.
//
// The cniadd suite (bench/suites) drives it on this machine; the
// cniaddvm suite drives it inside a VM through the cnidrive command
// (bench/cmd/cnidrive), which prints a Result as JSON.
package cnidrive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/sdn-dev/sdn/datapath/link"
)

// Driver runs one CNI plugin.
type Driver struct {
	Name      string                 // the variant ("sdn", "bridge"), in errors
	NSPrefix  string                 // container id's namespace is NSPrefix+id
	Plugin    string                 // the binary
	CNIPath   string                 // CNI_PATH (where the IPAM plugin is)
	Conf      func(id string) []byte // the network configuration of container id
	ExtraArgs func(id string) string // CNI_ARGS
	// HostNS, when set, is the path of the network namespace the plugin
	// runs in (started from a thread in it): bridge's host side.
	HostNS string
}

// SDN drives sdn's plugin (plugin; its directory is CNI_PATH) on network
// through the agent's CNI socket.
func SDN(nsPrefix, plugin, network, socket string) (*Driver, error) {
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "sdn-" + network, "type": "sdn", "network": network, "socket": socket,
	})
	if err != nil {
		return nil, err
	}
	return &Driver{Name: "sdn", NSPrefix: nsPrefix, Plugin: plugin, CNIPath: dirOf(plugin),
		Conf: func(string) []byte { return conf }, ExtraArgs: func(id string) string { return "SDN_NAME=" + id }}, nil
}

// BridgePorts is how many containers share one Linux bridge in the
// bridge driver: a bridge holds at most 1,024 ports (BR_MAX_PORTS; the
// 1,025th fails with "exchange full"), so 3,000 containers need several.
const BridgePorts = 1000

// Bridge drives containernetworking-plugins' bridge (pluginDir/bridge)
// with host-local IPAM (its leases under dataDir), run in the namespace
// hostNS (a path; the caller makes it) so that the bridges and their
// veths stay out of the machine's. Container number n (the digits ending
// its id) goes to bridge cni-brK, K = n / BridgePorts, subnet
// 10.(200+K).0.0/16.
func Bridge(nsPrefix, pluginDir, hostNS, dataDir string) *Driver {
	confs := map[int][]byte{}
	var mu sync.Mutex
	conf := func(id string) []byte {
		k := Number(id) / BridgePorts
		mu.Lock()
		defer mu.Unlock()
		if c, ok := confs[k]; ok {
			return c
		}
		c, _ := json.Marshal(map[string]any{
			"cniVersion": "1.0.0", "name": fmt.Sprintf("brbench%d", k), "type": "bridge", "bridge": fmt.Sprintf("cni-br%d", k), "isGateway": true, "ipMasq": false,
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": fmt.Sprintf("10.%d.0.0/16", 200+k)}}},
				"dataDir": dataDir},
		})
		confs[k] = c
		return c
	}
	return &Driver{Name: "bridge", NSPrefix: nsPrefix, Plugin: pluginDir + "/bridge", CNIPath: pluginDir,
		Conf: conf, ExtraArgs: func(string) string { return "IgnoreUnknown=1" }, HostNS: hostNS}
}

// Number is the number ending a container id ("b00042" → 42), 0 without
// digits.
func Number(id string) int {
	i := len(id)
	for i > 0 && id[i-1] >= '0' && id[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(id[i:])
	return n
}

// IDs are n container ids: prefix and the numbers first, first+1, ...
// (5 digits at least).
func IDs(prefix string, first, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%05d", prefix, first+i)
	}
	return ids
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i > 0 {
		return path[:i]
	}
	return "."
}

// NS is the namespace of container id.
func (d *Driver) NS(id string) string { return d.NSPrefix + id }

// AddAll makes a namespace per container (not timed), then ADDs them with
// conc plugin runs at a time, timing each run.
func (d *Driver) AddAll(ctx context.Context, ids []string, conc int) (Result, error) {
	for _, id := range ids {
		if _, err := link.NewNS(d.NS(id)); err != nil {
			return Result{}, err
		}
	}
	lat := make([]time.Duration, len(ids))
	start := time.Now()
	err := d.each(ctx, ids, conc, func(i int, id string) error {
		t0 := time.Now()
		if err := d.run(ctx, "ADD", id); err != nil {
			return err
		}
		lat[i] = time.Since(t0)
		return nil
	})
	return Result{Ops: len(ids), Window: time.Since(start), Latency: lat}, err
}

// DelAll DELs the containers, conc at a time, and deletes their
// namespaces.
func (d *Driver) DelAll(ctx context.Context, ids []string, conc int) error {
	return d.each(ctx, ids, conc, func(_ int, id string) error {
		err := d.run(ctx, "DEL", id)
		return errors.Join(err, link.DeleteNS(d.NS(id)))
	})
}

// each runs fn for every container on conc workers, each a locked thread
// in the driver's host namespace when it has one; it stops at the first
// error.
func (d *Driver) each(ctx context.Context, ids []string, conc int, fn func(i int, id string) error) error {
	work := make(chan int)
	var mu sync.Mutex
	var first error
	fail := func(err error) {
		mu.Lock()
		first = cmpErr(first, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			if err := d.enterHostNS(); err != nil {
				fail(err)
				for range work {
				}
				return
			}
			for i := range work {
				if err := fn(i, ids[i]); err != nil {
					fail(err)
				}
			}
		})
	}
	for i := range ids {
		mu.Lock()
		stop := first != nil || ctx.Err() != nil
		mu.Unlock()
		if stop {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return cmpErr(first, ctx.Err())
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// enterHostNS moves the calling goroutine's thread into the driver's host
// namespace for good (the thread ends with its goroutine, never unlocked):
// the plugins it starts run there.
func (d *Driver) enterHostNS() error {
	if d.HostNS == "" {
		return nil
	}
	runtime.LockOSThread()
	h, err := netns.GetFromPath(d.HostNS)
	if err != nil {
		return fmt.Errorf("open %s: %w", d.HostNS, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter %s: %w", d.HostNS, err)
	}
	return nil
}

// run executes the plugin once for container id.
func (d *Driver) run(ctx context.Context, command, id string) error {
	cmd := exec.CommandContext(ctx, d.Plugin)
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND="+command, "CNI_CONTAINERID="+d.NS(id), "CNI_NETNS="+link.NSPath(d.NS(id)),
		"CNI_IFNAME=eth0", "CNI_PATH="+d.CNIPath, "CNI_ARGS="+d.ExtraArgs(id))
	cmd.Stdin = bytes.NewReader(d.Conf(id))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s of %s: %w: %s", d.Name, command, id, err, strings.TrimSpace(out.String()))
	}
	return nil
}
