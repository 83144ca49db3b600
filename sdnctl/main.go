// Command sdnctl is the command-line client of sdn. It applies HCL files to
// the cluster and shows what the cluster holds, speaking only the gRPC API of
// sdnd (package sdnv1); it never links the cluster, datapath or daemon code.
//
// Commands:
//
//	sdnctl validate -f FILE_OR_DIR...           check HCL files locally, no server needed
//	sdnctl plan  -f FILE_OR_DIR... [--prune]    show what apply would change; changes nothing
//	sdnctl apply -f FILE_OR_DIR... [--prune] [--wait [--wait-timeout 2m]]
//	                                            apply the files atomically; with --wait, return
//	                                            when every host realized the new revision
//	sdnctl get cluster|nodes|networks|workloads [-o table|json] [--network N] [--node N] [--stale]
//	sdnctl delete network|workload|node NAME    (a workload NAME is network/name)
//	sdnctl node list [-o table|json] [--stale]  hosts: status (ready, drained, down for how long), heartbeat
//	sdnctl node drain|undrain HOST              refuse (or accept again) new workloads on a host
//	sdnctl node remove HOST [--force]           release a host's subnet and workload addresses
//	sdnctl status [-o table|json]               desired revision and what each host realized
//	sdnctl cluster members [-o table|json] [--stale]   the raft servers: leader, state, indexes
//	sdnctl cluster join ADDRESS [--id ID]       add a running server with no state as a voter
//	sdnctl cluster remove ID                    remove a server from raft
//	sdnctl cluster transfer-leader [ID]         hand leadership to another voter
//	sdnctl snapshot save FILE                   the whole state to FILE (atomically), for backups
//	sdnctl snapshot restore FILE [--force]      replace the whole cluster's state with FILE's
//	sdnctl snapshot inspect FILE [-o table|json]  a snapshot file's header, checksum verified
//	sdnctl version
//	sdnctl tls init|issue|list|revoke|revoked    the cluster CA, certificates and revocations (mutual TLS)
//	sdnctl cni install [--network N] [--force]   install the CNI plugin and its conflist for a runtime (docs/runtimes.md)
//
// Global flags: --server ADDR[,ADDR...] (default $SDN_SERVER, else
// 127.0.0.1:7420; several servers are tried in order, and any of them
// answers any command), --timeout (default 30s, for each unary call), and
// for mutual TLS --tls-ca, --tls-cert and --tls-key (default $SDN_TLS_CA,
// $SDN_TLS_CERT, $SDN_TLS_KEY): the cluster CA and a client certificate.
// Without them sdnctl speaks plaintext, which only sdnd --dev (or
// --insecure-plaintext) accepts.
//
// Results go to stdout, progress and errors to stderr. Errors are prefixed
// "sdnctl: "; the exit code is 1 for a failure and 2 for a usage error.
// SIGINT (Ctrl-C) and SIGTERM stop any command at once, with exit code 130
// and 143 (128 + the signal's number); a write whose request had left
// says its outcome is unknown.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sdn-dev/sdn/pki"
)

const defaultServer = "127.0.0.1:7420"

func main() {
	ctx, stop := signalContext(context.Background())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// app holds what every command shares: the global flags and the output
// streams.
type app struct {
	stdout, stderr io.Writer
	server         string
	timeout        time.Duration
	tlsCA, tlsCert string // mutual TLS; none of the three: plaintext
	tlsKey         string
	now            func() time.Time
	conns          *connLog // the connections made, for the errors (trace.go)

	// started is set when a command's own code begins to run; an error
	// before that came from parsing the command line (exit code 2).
	started bool
}

// run executes sdnctl with args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, now: time.Now}
	root := a.rootCommand(getenv)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ex *exitError
	var ue *usageError
	var ie *interruptedError
	switch sig := interruptSignal(ctx); {
	case sig != 0:
		// Whatever the command was doing when the signal came, it says
		// so if it knows (a write's outcome); else it was cut short.
		msg := "interrupted"
		if errors.As(err, &ie) {
			msg = ie.msg
		}
		fmt.Fprintf(stderr, "sdnctl: %s\n", msg)
		return 128 + int(sig)
	case errors.As(err, &ex):
		if ex.msg != "" {
			fmt.Fprintf(stderr, "sdnctl: %s\n", ex.msg)
		}
		return ex.code
	case errors.As(err, &ue) || !a.started:
		fmt.Fprintf(stderr, "sdnctl: %s\n", err)
		path := root.CommandPath()
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
		return 2
	default:
		fmt.Fprintf(stderr, "sdnctl: %s\n", err)
		return 1
	}
}

// usageError is a mistake in the command line (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitError ends sdnctl with code after printing msg; an empty msg means the
// problem was already reported (e.g. as HCL diagnostics).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.msg
}

func (a *app) rootCommand(getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "sdnctl",
		Short: "Apply HCL files to an sdn cluster and inspect it",
		Long: "sdnctl applies HCL files to an sdn cluster through the gRPC API of sdnd\n" +
			"and shows what the cluster holds and what each host has realized.",
		SilenceErrors: true,
		SilenceUsage:  true,
		// No completion command: it would need a shell to be useful and
		// clutters the command list.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	server := getenv("SDN_SERVER")
	if server == "" {
		server = defaultServer
	}
	root.PersistentFlags().StringVar(&a.server, "server", server,
		"address of sdnd's gRPC API, host:port or unix:///path; several servers as host:port,host:port (env SDN_SERVER)")
	root.PersistentFlags().DurationVar(&a.timeout, "timeout", 30*time.Second,
		"how long to wait for each request to sdnd")
	root.PersistentFlags().StringVar(&a.tlsCA, pki.FlagCA, getenv("SDN_TLS_CA"),
		"mutual TLS: the cluster CA certificate, ca.crt (env SDN_TLS_CA); without the three TLS flags sdnctl speaks plaintext, as sdnd --dev does")
	root.PersistentFlags().StringVar(&a.tlsCert, pki.FlagCert, getenv("SDN_TLS_CERT"),
		"mutual TLS: your client certificate, client-NAME.crt from \"sdnctl tls init\" or \"sdnctl tls issue --role client\" (env SDN_TLS_CERT)")
	root.PersistentFlags().StringVar(&a.tlsKey, pki.FlagKey, getenv("SDN_TLS_KEY"),
		"mutual TLS: the key of --tls-cert (env SDN_TLS_KEY)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{err}
	})
	root.AddCommand(
		a.validateCommand(),
		a.planCommand(),
		a.applyCommand(),
		a.getCommand(),
		a.deleteCommand(),
		a.labelCommand(),
		a.nodeCommand(),
		a.statusCommand(),
		a.verdictCommand(),
		a.clusterCommand(),
		a.snapshotCommand(),
		a.traceCommand(),
		a.versionCommand(),
		a.tlsCommand(),
		a.cniCommand(),
		a.attachCommand(),
		a.detachCommand(),
		a.ipamCommand(),
	)
	return root
}

// runE wraps a command's body so that errors it returns count as failures
// (exit 1) rather than usage errors.
func (a *app) runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.started = true
		if a.timeout <= 0 {
			return usagef("--timeout must be positive, got %s", a.timeout)
		}
		return f(cmd, args)
	}
}
