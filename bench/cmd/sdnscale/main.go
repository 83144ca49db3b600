// Command sdnscale runs one configuration of the scale benchmark (the
// scale suite of bench/suites, bench/README.md) and prints its figures:
// N simulated agents (bench/scalesim) against fresh sdnd servers on
// loopback. It is for iterating on the server:
//
//	go run ./bench/cmd/sdnscale -hosts 1000 -servers 3
//	make build && go run ./bench/cmd/sdnscale -sdnd bin/sdnd -hosts 5000 -servers 3
//
// Without -sdnd it builds sdnd from this tree into a temporary directory.
// The servers' data and logs go under -dir (default: a temporary
// directory, removed at the end unless -keep). It exits 1 when the run
// failed (the figures measured before are printed), 2 on bad flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/bench/suites"
)

func main() {
	o := suites.ScaleOptions{}
	flag.IntVar(&o.Hosts, "hosts", 1000, "simulated hosts")
	flag.IntVar(&o.Servers, "servers", 1, "sdnd servers: 1 (sdnd --dev) or more (one raft cluster)")
	flag.IntVar(&o.Burst, "burst", 1000, "attaches in the burst (negative: no burst)")
	flag.IntVar(&o.BurstClients, "burst-clients", 32, "concurrent clients of the burst")
	flag.IntVar(&o.Singles, "singles", 20, "single attaches of the fan-out phase")
	flag.DurationVar(&o.Rest, "rest", 20*time.Second, "how long server CPU and RSS are measured at rest after the registration")
	flag.BoolVar(&o.NoStorm, "no-storm", false, "skip the reconnect storm (killing the leader; with more than one server)")
	flag.BoolVar(&o.Unfiltered, "unfiltered", false, "the hosts ask for the original, unfiltered watch")
	flag.Uint64Var(&o.Seed, "seed", 0, "seed of the attaches' hosts and the backoff jitter (0: random)")
	rssLimit := flag.Int64("rss-limit-mib", 8192, "kill the servers and fail when one's RSS passes this")
	flag.StringVar(&o.SDND, "sdnd", "", "the sdnd binary (default: build ./sdnd into a temporary directory)")
	flag.StringVar(&o.Dir, "dir", "", "directory for the servers' data and logs (default: a temporary one)")
	keep := flag.Bool("keep", false, "keep the temporary directory (data, logs)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (the simulator) to this file")
	memProfile := flag.String("memprofile", "", "write a heap profile of this process (the simulator) to this file after the registration")
	flag.Parse()
	if flag.NArg() > 0 || o.Hosts < 1 || o.Servers < 1 {
		fmt.Fprintln(os.Stderr, "sdnscale: want -hosts and -servers of at least 1, and no arguments")
		os.Exit(2)
	}
	o.RSSLimit = *rssLimit << 20
	o.Logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sdnscale: -cpuprofile:", err)
			os.Exit(2)
		}
	}
	if *memProfile != "" {
		o.AfterPhase = func(name string) {
			if name == "registration" {
				writeHeapProfile(*memProfile)
			}
		}
	}
	code := run(o, *keep)
	pprof.StopCPUProfile()
	os.Exit(code)
}

func run(o suites.ScaleOptions, keep bool) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "sdnscale-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "sdnscale:", err)
			return 1
		}
		o.Dir = dir
		if keep {
			fmt.Fprintln(os.Stderr, "sdnscale: data and logs in", dir)
		} else {
			defer os.RemoveAll(dir)
		}
	}
	if o.SDND == "" {
		o.SDND = filepath.Join(o.Dir, "sdnd")
		o.Logf("building sdnd into %s", o.SDND)
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", o.SDND, "github.com/sdn-dev/sdn/sdnd").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "sdnscale: go build sdnd (run from the repository): %v: %s\n", err, out)
			return 1
		}
	}
	o.Dir = filepath.Join(o.Dir, "run")
	res, err := suites.RunScale(ctx, o)
	print(o, res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdnscale: FAILED:", err)
		return 1
	}
	return 0
}

// print writes the figures measured, then the notes.
func print(o suites.ScaleOptions, res *suites.ScaleResult) {
	fmt.Printf("scale: %d hosts, %d server(s)\n\n", o.Hosts, o.Servers)
	for _, f := range suites.ScaleFigures() {
		if v, ok := res.Figures[f.Name]; ok {
			fmt.Printf("  %-90s %12s %s\n", f.Name, bench.FormatValue(v), f.Unit)
		}
	}
	fmt.Println()
	for _, n := range res.Notes {
		fmt.Printf("  %s: %s\n", n.Key, n.Value)
	}
}

// writeHeapProfile writes a heap profile (after a GC) to path.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdnscale: -memprofile:", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "sdnscale: -memprofile:", err)
	}
}
