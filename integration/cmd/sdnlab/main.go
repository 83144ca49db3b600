// Command sdnlab runs the multi-host sdn lab on one machine (package
// integration/lab): `make lab` and `make lab-down` call it.
//
// Usage (as root, from the module's root):
//
//	sdnlab up     [--name lab] [--dir .lab] [--hosts 3] [--bin bin] [--isolation MODE] [--policy FILE|none]
//	sdnlab matrix [--name lab] [--dir .lab]
//	sdnlab down   [--name lab] [--dir .lab]
//	sdnlab prepare [--name vm] [--dir .vm-lab] [--hosts 2] [--servers 1] [--isolation MODE] [-f FILE|DIR]   (VM labs: node.go)
//	sdnlab node-args|node-attach --index I ...   (on a VM lab's host itself: node.go)
//
// up brings the lab up (or repairs it), applies examples/, attaches one
// workload per network on every host with the CNI plugin, applies one
// policy (examples/policy/hello-web.hcl unless --policy says otherwise),
// prints who reaches whom, naming the policy that denies each pair it
// denies, and exits 1 if the pings differ from what the model (the
// servers' verdict for each pair) says. matrix redoes the last part on a
// running lab. down removes the lab.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sdn-dev/sdn/integration/lab"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	verb := os.Args[1]
	if verb == "prepare" {
		if err := prepare(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "sdnlab:", err)
			os.Exit(1)
		}
		return
	}
	if verb == "node-args" || verb == "node-attach" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := nodeMain(ctx, verb, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "sdnlab:", err)
			os.Exit(1)
		}
		return
	}
	fs := flag.NewFlagSet("sdnlab "+verb, flag.ExitOnError)
	var cfg lab.Config
	var policy string
	fs.StringVar(&cfg.Name, "name", "lab", "lab name: prefix of every namespace (lowercase letters and digits)")
	fs.StringVar(&cfg.Dir, "dir", ".lab", "directory for the lab's files")
	if verb == "up" {
		fs.IntVar(&cfg.Hosts, "hosts", 3, "number of hosts")
		fs.StringVar(&cfg.Bin, "bin", "bin", "directory with sdnd, sdnctl and sdn (the CNI plugin)")
		fs.StringVar(&cfg.Isolation, "isolation", "", "override the HCL files' isolation: flat, multitenant or policy")
		fs.StringVar(&cfg.Examples, "f", "", "HCL file or directory to apply (default: the module's examples/)")
		fs.BoolVar(&cfg.Docker, "docker", false, "every host's sdnd serves the Docker network driver on HOSTDIR/docker-plugins/sdn.sock")
		fs.StringVar(&policy, "policy", "", "policy file applied once the workloads are attached (default: policy/hello-web.hcl beside the applied examples; none: no policy)")
	}
	if err := fs.Parse(os.Args[2:]); err != nil || fs.NArg() > 0 {
		usage()
	}
	cfg.Logger = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch verb {
	case "up":
		err = up(ctx, cfg, policy)
	case "matrix":
		err = matrix(cfg)
	case "down":
		err = down(cfg)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdnlab:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sdnlab up|matrix|down [--name lab] [--dir .lab] [--hosts 3] [--bin bin] [--isolation MODE] [--policy FILE|none]")
	os.Exit(2)
}

func up(ctx context.Context, cfg lab.Config, policy string) error {
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		return err
	}
	ws, err := l.AttachDefaults(ctx)
	if err != nil {
		return err
	}
	if policy != "none" {
		if policy == "" {
			policy = filepath.Join(l.ExamplesDir(), "policy", "hello-web.hcl")
		}
		fmt.Printf("applying %s\n", policy)
		out, err := l.ApplyFile(policy)
		if err != nil {
			return fmt.Errorf("apply the policy: %w", err)
		}
		fmt.Print(out)
	}
	fmt.Println()
	merr := l.CheckMatrix(os.Stdout, ws)
	serr := l.ServiceDemo(ctx, os.Stdout, ws)
	l.Hints(os.Stdout, ws)
	return errors.Join(merr, serr)
}

func matrix(cfg lab.Config) error {
	l, err := lab.Open(cfg.Name, cfg.Dir, os.Stdout)
	if err != nil {
		return err
	}
	ws, err := l.Workloads()
	if err != nil {
		return err
	}
	if len(ws) < 2 {
		return errors.New("fewer than two workloads attached; run `sdnlab up` first")
	}
	return l.CheckMatrix(os.Stdout, ws)
}

func down(cfg lab.Config) error {
	l, err := lab.Open(cfg.Name, cfg.Dir, os.Stdout)
	if err != nil {
		return err
	}
	if err := l.Down(); err != nil {
		return err
	}
	fmt.Printf("lab %q is down\n", l.Name)
	return nil
}
