package ovs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/digitalocean/go-openvswitch/ovsdb"
)

// DefaultSchema is where Debian's openvswitch-common installs the
// Open_vSwitch database schema.
const DefaultSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// InstanceConfig says where an OVS instance keeps its files and in which
// network namespace its daemons run.
type InstanceConfig struct {
	RunDir string // sockets and pidfiles (OVS_RUNDIR); required
	DBDir  string // conf.db (OVS_DBDIR); defaults to RunDir
	LogDir string // daemon logs (OVS_LOGDIR); defaults to RunDir
	// NetNS is the name of an existing network namespace (ip netns add) the
	// daemons run in; "" means the caller's. The netdev datapath creates
	// a tap device named "ovs-netdev", so at most one instance with netdev
	// bridges can run per network namespace.
	NetNS  string
	Schema string       // defaults to DefaultSchema
	Logger *slog.Logger // defaults to slog.Default()
}

// Instance is one ovsdb-server + ovs-vswitchd pair with its own run, db and
// log directories, optionally inside a network namespace. Several
// independent instances on one machine (one per namespace) make a
// multi-host lab. The daemons are detached: they outlive the process that
// started them, as real daemons do, and Stop ends them by their pidfiles.
type Instance struct {
	RunDir, DBDir, LogDir string
	NetNS                 string // "" = the caller's namespace

	log *slog.Logger

	mu     sync.Mutex           // serializes reconciles (one bundle at a time)
	canon  map[string]canonFlow // canonical flows by input line, see canon.go
	gcanon map[string]string    // canonical groups by input text, see groups.go
	// known is, per bridge, what the last successful reconcile of it left
	// there (known.go).
	known map[string]*knownBridge

	dbMu sync.Mutex
	db   *ovsdb.Client // OVSDB JSON-RPC connection (ovsdb.go); nil until used

	ctl   unixctl // ovs-vswitchd's control socket, kept open (unixctl.go)
	spare spares  // started ovs-ofctl processes waiting for input (spare.go)
}

// The daemons this package runs, in start order.
var daemons = []string{"ovsdb-server", "ovs-vswitchd"}

// StartInstance brings up (or adopts, if they already run from cfg.RunDir)
// the instance's ovsdb-server and ovs-vswitchd and waits until
// ovs-vswitchd answers. An existing conf.db is kept (converted if its
// schema is older), so restarting the caller keeps bridges and flows.
func StartInstance(ctx context.Context, cfg InstanceConfig) (*Instance, error) {
	if cfg.RunDir == "" {
		return nil, errors.New("start OVS instance: InstanceConfig.RunDir is empty; give each instance its own directory")
	}
	i := &Instance{RunDir: cfg.RunDir, DBDir: cfg.DBDir, LogDir: cfg.LogDir, NetNS: cfg.NetNS, log: cfg.Logger}
	if i.DBDir == "" {
		i.DBDir = i.RunDir
	}
	if i.LogDir == "" {
		i.LogDir = i.RunDir
	}
	if i.log == nil {
		i.log = slog.Default()
	}
	schema := cfg.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	for _, d := range []*string{&i.RunDir, &i.DBDir, &i.LogDir} {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return nil, fmt.Errorf("start OVS instance: %w", err)
		}
		*d = abs
		if err := os.MkdirAll(abs, 0o750); err != nil {
			return nil, fmt.Errorf("start OVS instance: %w", err)
		}
	}
	if i.NetNS != "" {
		if _, err := os.Stat(filepath.Join("/run/netns", i.NetNS)); err != nil {
			return nil, fmt.Errorf("start OVS instance in netns %q: %w; create it first with `ip netns add %s`", i.NetNS, err, i.NetNS)
		}
	}
	if err := i.ensureDB(ctx, schema); err != nil {
		return nil, err
	}
	if err := i.startDaemon(ctx, "ovsdb-server", i.dbPath(),
		"--remote=punix:"+i.dbSock()); err != nil {
		return nil, err
	}
	if _, err := i.Vsctl(ctx, "--no-wait", "init"); err != nil {
		i.Stop()
		return nil, err
	}
	if err := i.startDaemon(ctx, "ovs-vswitchd", "unix:"+i.dbSock()); err != nil {
		i.Stop()
		return nil, err
	}
	if err := i.waitReady(ctx); err != nil {
		i.Stop()
		return nil, err
	}
	i.log.Info("OVS instance ready", "rundir", i.RunDir, "netns", i.NetNS)
	return i, nil
}

func (i *Instance) dbPath() string { return filepath.Join(i.DBDir, "conf.db") }
func (i *Instance) dbSock() string { return filepath.Join(i.RunDir, "db.sock") }
func (i *Instance) pidfile(daemon string) string {
	return filepath.Join(i.RunDir, daemon+".pid")
}

// mgmt is the OpenFlow management socket ovs-vswitchd opens for a bridge.
func (i *Instance) mgmt(bridge string) string {
	return "unix:" + filepath.Join(i.RunDir, bridge+".mgmt")
}

func (i *Instance) ensureDB(ctx context.Context, schema string) error {
	if _, err := os.Stat(i.dbPath()); errors.Is(err, os.ErrNotExist) {
		_, err := i.run(ctx, nil, "ovsdb-tool", "create", i.dbPath(), schema)
		return err
	}
	out, err := i.run(ctx, nil, "ovsdb-tool", "needs-conversion", i.dbPath(), schema)
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == "yes" {
		_, err = i.run(ctx, nil, "ovsdb-tool", "convert", i.dbPath(), schema)
	}
	return err
}

// startDaemon starts one detached daemon unless it already runs from RunDir.
func (i *Instance) startDaemon(ctx context.Context, daemon string, args ...string) error {
	if pid := i.livePID(daemon); pid != 0 {
		i.log.Info("adopting running OVS daemon", "daemon", daemon, "pid", pid, "rundir", i.RunDir)
		return nil
	}
	args = append(args,
		"--pidfile="+i.pidfile(daemon), "--detach", "--no-chdir",
		"--log-file="+filepath.Join(i.LogDir, daemon+".log"), "-vconsole:off")
	name := daemon
	if i.NetNS != "" {
		args = append([]string{"netns", "exec", i.NetNS, daemon}, args...)
		name = "ip"
	}
	if _, err := i.run(ctx, nil, name, args...); err != nil {
		return fmt.Errorf("%w; see %s", err, filepath.Join(i.LogDir, daemon+".log"))
	}
	return nil
}

// waitReady waits until ovs-vswitchd answers on its control socket.
func (i *Instance) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		_, err := i.Appctl(ctx, "ovs-vswitchd", "version")
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("OVS instance %s: ovs-vswitchd not ready: %w", i.RunDir, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// livePID returns the pid in the daemon's pidfile if that process is
// alive and is this instance's daemon (its command line names RunDir),
// and 0 otherwise. Zombies count as dead.
func (i *Instance) livePID(daemon string) int {
	b, err := os.ReadFile(i.pidfile(daemon))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(daemon)) ||
		!bytes.Contains(cmdline, []byte("--pidfile="+i.pidfile(daemon))) {
		return 0
	}
	if zombie(pid) {
		reap(pid)
		return 0
	}
	return pid
}

func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// Format: pid (comm) state ...; comm may hold spaces, so look after ')'.
	j := bytes.LastIndexByte(stat, ')')
	return j < 0 || j+2 >= len(stat) || stat[j+2] == 'Z' || stat[j+2] == 'X'
}

// reap collects the exit status of a daemon that is our child, which it is
// when this process is a child subreaper (see the tests); otherwise its
// parent (init) does. It reports whether pid is gone for good: reaped now,
// or not ours to reap.
func reap(pid int) bool {
	var ws syscall.WaitStatus
	got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	return got == pid || err == syscall.ECHILD
}

// Close lets go of what the instance keeps open: its OVSDB connection,
// ovs-vswitchd's control socket and its spare ovs-ofctl processes
// (spare.go). The daemons go on running. The instance still works after
// Close (connections are made again when needed, tools start as fresh
// processes); sdnd calls it when it shuts down.
func (i *Instance) Close() {
	i.dbMu.Lock()
	if i.db != nil {
		_ = i.db.Close()
		i.db = nil
	}
	i.dbMu.Unlock()
	i.ctl.mu.Lock()
	i.ctl.closeLocked()
	i.ctl.mu.Unlock()
	i.spare.closeSpares()
}

// Stop ends the instance's daemons (ovs-vswitchd first) by their
// pidfiles: SIGTERM, then SIGKILL after 5 s. It is idempotent. Tap devices
// of netdev bridges persist in the namespace; delete the namespace (or
// the links) to remove them.
func (i *Instance) Stop() error {
	i.Close()
	var errs []error
	for k := len(daemons) - 1; k >= 0; k-- {
		if err := i.stopDaemon(daemons[k]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (i *Instance) stopDaemon(daemon string) error {
	pid := i.livePID(daemon)
	if pid == 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	// Wait on the pid, not the pidfile: OVS removes its pidfile before it
	// exits.
	if waitExit(pid, 5*time.Second) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if waitExit(pid, time.Second) {
		return nil
	}
	return fmt.Errorf("stop %s (pid %d) of OVS instance %s: still alive after SIGKILL", daemon, pid, i.RunDir)
}

// waitExit waits until pid has exited, and reaps it if it is our child.
func waitExit(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		// A multi-threaded daemon's /proc stat shows Z as soon as its main
		// thread is gone, before the other threads are; only wait4 knows.
		if zombie(pid) && reap(pid) {
			return true
		}
	}
	return false
}

// Env returns the environment under which the OVS command-line tools
// (ovs-vsctl, ovs-ofctl BRIDGE, ovs-appctl -t ovs-vswitchd) talk to this
// instance, e.g. for `env $(...) ovs-ofctl -O OpenFlow15 dump-flows br-int`.
func (i *Instance) Env() []string {
	return []string{"OVS_RUNDIR=" + i.RunDir, "OVS_DBDIR=" + i.DBDir, "OVS_LOGDIR=" + i.LogDir}
}

// Vsctl runs ovs-vsctl against this instance's database.
func (i *Instance) Vsctl(ctx context.Context, args ...string) (string, error) {
	return i.run(ctx, nil, "ovs-vsctl", append([]string{"--db=unix:" + i.dbSock(), "--timeout=30"}, args...)...)
}

// Ofctl runs ovs-ofctl. Bridge names resolve to RunDir/BRIDGE.mgmt through
// OVS_RUNDIR. Pass -O OpenFlow15 (or 13/14) yourself: bridges set up by
// EnsureBridge do not speak OpenFlow 1.0, ovs-ofctl's default.
func (i *Instance) Ofctl(ctx context.Context, args ...string) (string, error) {
	return i.run(ctx, nil, "ovs-ofctl", args...)
}

// Appctl runs ovs-appctl -t target (e.g. "ovs-vswitchd"; resolved through
// OVS_RUNDIR/target.pid).
func (i *Instance) Appctl(ctx context.Context, target string, args ...string) (string, error) {
	if target == "ovs-vswitchd" && len(args) > 0 {
		out, err := i.vswitchdCtl(ctx, args...)
		if !errors.Is(err, errUnixctlTransport) {
			return out, err
		}
		// The connection failed (ovs-vswitchd restarting, say): ovs-appctl
		// says what is wrong in its own words.
	}
	return i.run(ctx, nil, "ovs-appctl", append([]string{"-t", target}, args...)...)
}

// run executes an OVS tool with this instance's environment and returns
// its stdout. Clients need no `ip netns exec`: they reach the daemons
// through unix sockets in RunDir, which a network namespace does not hide.
func (i *Instance) run(ctx context.Context, stdin io.Reader, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), i.Env()...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &CommandError{Args: append([]string{name}, args...), Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.String(), nil
}

// CommandError is a failed OVS tool run, with what it wrote to stderr.
type CommandError struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Args, " "), e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }
