package ovs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// unixctl is a kept-open connection to ovs-vswitchd's control socket
// (RunDir/ovs-vswitchd.PID.ctl), which speaks JSON-RPC 1.0 as ovs-appctl
// does. A realize asks ovs-vswitchd at least once (revalidator/purge,
// reconcile.go); a fork of ovs-appctl costs ~7 ms, a request on this
// connection well under one.
type unixctl struct {
	mu   sync.Mutex
	path string // the socket conn is connected to
	conn net.Conn
	dec  *json.Decoder
	id   int
}

// unixctlTimeout bounds one request when the caller's context has no
// deadline.
const unixctlTimeout = 30 * time.Second

// errUnixctlTransport wraps failures of the connection itself (as opposed
// to an error ovs-vswitchd answered): the caller may retry with ovs-appctl.
var errUnixctlTransport = errors.New("ovs-vswitchd control socket")

// vswitchdCtl runs one ovs-appctl command against this instance's
// ovs-vswitchd over the kept-open connection, reconnecting when
// ovs-vswitchd is another process (a new pid, so a new socket).
func (i *Instance) vswitchdCtl(ctx context.Context, args ...string) (string, error) {
	pid, err := os.ReadFile(i.pidfile("ovs-vswitchd"))
	if err != nil {
		return "", fmt.Errorf("%w: %v", errUnixctlTransport, err)
	}
	path := filepath.Join(i.RunDir, fmt.Sprintf("ovs-vswitchd.%s.ctl", strings.TrimSpace(string(pid))))
	c := &i.ctl
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && c.path != path {
		c.closeLocked()
	}
	if c.conn == nil {
		conn, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
		if err != nil {
			return "", fmt.Errorf("%w: %v", errUnixctlTransport, err)
		}
		c.conn, c.path, c.dec = conn, path, json.NewDecoder(conn)
	}
	out, err := c.requestLocked(ctx, args)
	if errors.Is(err, errUnixctlTransport) {
		c.closeLocked()
	}
	return out, err
}

// requestLocked sends one request and reads its answer.
func (c *unixctl) requestLocked(ctx context.Context, args []string) (string, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(unixctlTimeout)
	}
	_ = c.conn.SetDeadline(deadline)
	c.id++
	params := args[1:]
	if params == nil {
		params = []string{}
	}
	req, _ := json.Marshal(map[string]any{"id": c.id, "method": args[0], "params": params})
	if _, err := c.conn.Write(req); err != nil {
		return "", fmt.Errorf("%w: %v", errUnixctlTransport, err)
	}
	var resp struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := c.dec.Decode(&resp); err != nil {
		return "", fmt.Errorf("%w: %v", errUnixctlTransport, err)
	}
	if resp.ID != c.id {
		return "", fmt.Errorf("%w: answer to request %d, want %d", errUnixctlTransport, resp.ID, c.id)
	}
	if len(resp.Error) > 0 && !bytes.Equal(resp.Error, []byte("null")) {
		var msg string
		if json.Unmarshal(resp.Error, &msg) != nil {
			msg = string(resp.Error)
		}
		return "", fmt.Errorf("ovs-vswitchd %s: %s", strings.Join(args, " "), strings.TrimSpace(msg))
	}
	var out string
	if err := json.Unmarshal(resp.Result, &out); err != nil {
		return "", fmt.Errorf("%w: result %s: %v", errUnixctlTransport, resp.Result, err)
	}
	return out, nil
}

func (c *unixctl) closeLocked() {
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn, c.dec, c.path = nil, nil, ""
}
