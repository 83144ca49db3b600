// Command sdnbench runs sdn's benchmark suites (bench/suites) and writes one
// report, markdown and JSON, under bench/results/ (see bench/README.md).
// `make bench` runs it; as root, since suites start OVS in namespaces.
//
//	sdnbench [-suite NAME[,NAME]] [-quick] [-runs N] [-out DIR] [-list]
//
// It exits 1 when a suite or variant failed (the report still holds what was
// measured) and 2 on bad flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sdn-dev/sdn/bench"
	"github.com/sdn-dev/sdn/bench/suites"
)

func main() {
	suite := flag.String("suite", "", "run only these suites (comma-separated); default all")
	quick := flag.Bool("quick", false, "smaller sizes and 3 rounds unless -runs is given: a smoke test, figures not to be judged")
	runs := flag.Int("runs", 0, "rounds per figure (default 5, or 3 with -quick)")
	out := flag.String("out", "bench/results", "directory for the report")
	list := flag.Bool("list", false, "list the suites and exit")
	flag.Parse()

	all := suites.All()
	if err := bench.Validate(all); err != nil {
		fmt.Fprintln(os.Stderr, "sdnbench:", err)
		os.Exit(2)
	}
	if *list {
		for _, s := range all {
			fmt.Printf("%-12s %s\n", s.Name, s.Description)
		}
		return
	}
	var names []string
	if *suite != "" {
		names = strings.Split(*suite, ",")
	}
	selected, err := bench.Select(all, names)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdnbench:", err)
		os.Exit(2)
	}
	if *runs == 0 {
		*runs = 5
		if *quick {
			*runs = 3
		}
	}

	// OVS daemons detach; as a child subreaper this process adopts them, so
	// stopping them reaps them instead of leaving zombies (as the ovs tests do).
	const prSetChildSubreaper = 36
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep := bench.Run(ctx, selected, bench.Options{Runs: *runs, Quick: *quick, Progress: os.Stderr})
	path, err := rep.Write(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdnbench:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "report: %s (and latest.md, latest.json beside it)\n", path)
	if errs := rep.Errors(); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(os.Stderr, "sdnbench: FAILED:", e)
		}
		os.Exit(1)
	}
}
