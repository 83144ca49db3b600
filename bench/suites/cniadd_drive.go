package suites

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/datapath/link"
	"github.com/sdn-dev/sdn/integration/lab"
)

// bridgePluginDir is where Debian's containernetworking-plugins installs
// its plugins.
const bridgePluginDir = "/usr/lib/cni"

// cniDriver runs one CNI plugin for the suite, as a runtime does: the
// binary executed per container with CNI_* variables and the network
// configuration on stdin.
type cniDriver struct {
	name, prefix string // variant name; container name prefix
	lab          *lab.Lab
	plugin       string                 // the binary
	cniPath      string                 // CNI_PATH (where the IPAM plugin is)
	conf         func(id string) []byte // the network configuration of container id
	extraArgs    func(id string) string // CNI_ARGS
	// hostNS, when set, is the network namespace the plugin runs in
	// (started from a thread in it): bridge's host side.
	hostNS string
	load   []string // containers attached as the host's load
}

// newSDNDriver drives bin/sdn against the lab's host1.
func newSDNDriver(l *lab.Lab, bin string) (*cniDriver, error) {
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "sdn-" + cniNetwork, "type": "sdn", "network": cniNetwork, "socket": l.CNISocket(1),
	})
	if err != nil {
		return nil, err
	}
	return &cniDriver{name: "sdn", prefix: "s", lab: l, plugin: filepath.Join(bin, "sdn"), cniPath: bin, conf: func(string) []byte { return conf },
		extraArgs: func(id string) string { return "SDN_NAME=" + id }}, nil
}

// bridgePorts is how many containers share one Linux bridge in the
// bridge driver: a bridge holds at most 1,024 ports (BR_MAX_PORTS; the
// 1,025th fails with "exchange full"), so 3,000 containers need several.
const bridgePorts = 1000

// newBridgeDriver drives containernetworking-plugins' bridge with
// host-local IPAM, its host side in a namespace of its own (so the bridge
// and its veths stay out of the machine's). Container number n goes to
// bridge cni-brK, K = n / bridgePorts, subnet 10.(200+K).0.0/16.
func newBridgeDriver(l *lab.Lab, dir string) (*cniDriver, error) {
	hostNS := l.Name + "-host1-cnibr"
	if _, err := link.NewNS(hostNS); err != nil {
		return nil, err
	}
	confs := map[int][]byte{}
	var mu sync.Mutex
	conf := func(id string) []byte {
		var n int
		fmt.Sscanf(strings.TrimLeft(id, "b"), "%d", &n)
		k := n / bridgePorts
		mu.Lock()
		defer mu.Unlock()
		if c, ok := confs[k]; ok {
			return c
		}
		c, _ := json.Marshal(map[string]any{
			"cniVersion": "1.0.0", "name": fmt.Sprintf("brbench%d", k), "type": "bridge", "bridge": fmt.Sprintf("cni-br%d", k), "isGateway": true, "ipMasq": false,
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": fmt.Sprintf("10.%d.0.0/16", 200+k)}}},
				"dataDir": filepath.Join(dir, "host-local")},
		})
		confs[k] = c
		return c
	}
	return &cniDriver{name: "bridge", prefix: "b", lab: l, plugin: filepath.Join(bridgePluginDir, "bridge"), cniPath: bridgePluginDir,
		conf: conf, extraArgs: func(string) string { return "IgnoreUnknown=1" }, hostNS: link.NSPath(hostNS)}, nil
}

// nsName is the namespace of container id (a workload namespace of the
// lab's host1, so that the lab's Down removes what a crash left).
func (d *cniDriver) nsName(id string) string { return d.lab.Name + "-host1-" + id }

// addAll makes a namespace per container (not timed), then ADDs them with
// conc plugin runs at a time, timing each run.
func (d *cniDriver) addAll(ctx context.Context, ids []string, conc int) (loadResult, error) {
	for _, id := range ids {
		if _, err := link.NewNS(d.nsName(id)); err != nil {
			return loadResult{}, err
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
	return loadResult{Ops: len(ids), Window: time.Since(start), Latency: lat}, err
}

// delAll DELs the containers, conc at a time, and deletes their
// namespaces.
func (d *cniDriver) delAll(ctx context.Context, ids []string, conc int) error {
	return d.each(ctx, ids, conc, func(_ int, id string) error {
		err := d.run(ctx, "DEL", id)
		return errors.Join(err, link.DeleteNS(d.nsName(id)))
	})
}

// each runs fn for every container on conc workers, each a locked thread
// in the driver's host namespace when it has one; it stops at the first
// error.
func (d *cniDriver) each(ctx context.Context, ids []string, conc int, fn func(i int, id string) error) error {
	work := make(chan int)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			if err := d.enterHostNS(); err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
				for range work {
				}
				return
			}
			for i := range work {
				if err := fn(i, ids[i]); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
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
func (d *cniDriver) enterHostNS() error {
	if d.hostNS == "" {
		return nil
	}
	runtime.LockOSThread()
	h, err := netns.GetFromPath(d.hostNS)
	if err != nil {
		return fmt.Errorf("open %s: %w", d.hostNS, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter %s: %w", d.hostNS, err)
	}
	return nil
}

// run executes the plugin once for container id.
func (d *cniDriver) run(ctx context.Context, command, id string) error {
	cmd := exec.CommandContext(ctx, d.plugin)
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND="+command, "CNI_CONTAINERID="+d.nsName(id), "CNI_NETNS="+link.NSPath(d.nsName(id)),
		"CNI_IFNAME=eth0", "CNI_PATH="+d.cniPath, "CNI_ARGS="+d.extraArgs(id))
	cmd.Stdin = bytes.NewReader(d.conf(id))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s of %s: %w: %s", d.name, command, id, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// close deletes the load's namespaces and the bridge's host namespace
// (the lab's Down removes the rest).
func (d *cniDriver) close(env *bench.Env) {
	for _, id := range d.load {
		if err := link.DeleteNS(d.nsName(id)); err != nil {
			env.Logf("teardown: %v", err)
		}
	}
	if d.hostNS != "" {
		if err := link.DeleteNS(filepath.Base(d.hostNS)); err != nil {
			env.Logf("teardown: %v", err)
		}
	}
}
