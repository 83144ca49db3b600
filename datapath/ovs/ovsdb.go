package ovs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/digitalocean/go-openvswitch/ovsdb"
)

// Ports through OVSDB's JSON-RPC (github.com/digitalocean/go-openvswitch's
// client, one connection per Instance kept open): adding a workload's port
// and learning its OpenFlow port, the OVS part of every CNI ADD, took 7.5
// ms against 35 ms for EnsurePort's two ovs-vsctl runs
// (BenchmarkPortAdd; docs/performance.md, "Attach (CNI ADD)"). The
// transactions are those ovs-vsctl sends: insert the Interface and the
// Port, add the Port to the bridge and bump next_cfg; then an OVSDB "wait"
// until ovs-vswitchd gave the interface an OpenFlow port, and a select of
// it.

// dbOp is one OVSDB transact operation (RFC 7047, 5.2), sent as is.
type dbOp map[string]any

func (o dbOp) MarshalJSON() ([]byte, error) { return json.Marshal(map[string]any(o)) }

// dbClient returns the instance's OVSDB connection, dialing it if needed.
func (i *Instance) dbClient() (*ovsdb.Client, error) {
	i.dbMu.Lock()
	defer i.dbMu.Unlock()
	if i.db != nil {
		return i.db, nil
	}
	c, err := ovsdb.Dial("unix", i.dbSock())
	if err != nil {
		return nil, fmt.Errorf("connect to OVSDB at %s: %w", i.dbSock(), err)
	}
	i.db = c
	return c, nil
}

// dropDB closes the OVSDB connection after a failure (the next call dials
// again).
func (i *Instance) dropDB(c *ovsdb.Client) {
	i.dbMu.Lock()
	defer i.dbMu.Unlock()
	if i.db == c {
		_ = c.Close()
		i.db = nil
	}
}

// AddPort is EnsurePort for a plain system port (a workload's veth)
// without settings, through OVSDB's JSON-RPC instead of ovs-vsctl: it adds
// port to bridge unless a port of that name exists, waits until OVS gave
// it an OpenFlow port, and returns it. A port that exists already, or any
// failure of the connection, goes through EnsurePort (ovs-vsctl), which
// handles every case and says what went wrong.
func (i *Instance) AddPort(ctx context.Context, bridge, port string) (int, error) {
	if err := checkIfName("port", port); err != nil {
		return 0, err
	}
	c, err := i.dbClient()
	if err == nil {
		var n int
		if n, err = addPortDB(ctx, c, bridge, port); err == nil {
			return n, nil
		}
		if ctx.Err() == nil {
			i.dropDB(c)
		}
	}
	i.log.Debug("adding the port through OVSDB failed; using ovs-vsctl", "port", port, "bridge", bridge, "err", err)
	return i.EnsurePort(ctx, bridge, port, 0)
}

// addPortDB adds port to bridge in one transaction that fails if a port of
// that name exists, then waits for its OpenFlow port.
func addPortDB(ctx context.Context, c *ovsdb.Client, bridge, port string) (int, error) {
	byName := []any{[]any{"name", "==", port}}
	rows, err := c.Transact(ctx, "Open_vSwitch", []ovsdb.TransactOp{
		dbOp{"op": "wait", "table": "Port", "where": byName, "columns": []string{"name"}, "until": "==", "rows": []any{}, "timeout": 0},
		dbOp{"op": "insert", "table": "Interface", "row": map[string]any{"name": port}, "uuid-name": "iface"},
		dbOp{"op": "insert", "table": "Port", "row": map[string]any{"name": port, "interfaces": []any{"named-uuid", "iface"}}, "uuid-name": "port"},
		dbOp{"op": "mutate", "table": "Bridge", "where": []any{[]any{"name", "==", bridge}},
			"mutations": []any{[]any{"ports", "insert", []any{"set", []any{[]any{"named-uuid", "port"}}}}}},
		dbOp{"op": "mutate", "table": "Open_vSwitch", "where": []any{}, "mutations": []any{[]any{"next_cfg", "+=", 1}}},
		// Only a committed transaction returns this row (OVSDB stops at
		// the first failed operation), and only if the bridge exists.
		dbOp{"op": "select", "table": "Bridge", "where": []any{[]any{"name", "==", bridge}}, "columns": []string{"name"}},
	})
	if err != nil {
		return 0, fmt.Errorf("add port %q to bridge %q: %w", port, bridge, err)
	}
	if len(rows) != 1 {
		return 0, fmt.Errorf("add port %q to bridge %q: not committed (the port exists, or the bridge does not)", port, bridge)
	}
	rows, err = c.Transact(ctx, "Open_vSwitch", []ovsdb.TransactOp{
		dbOp{"op": "wait", "table": "Interface", "where": byName, "columns": []string{"ofport"}, "until": "!=",
			"rows": []any{map[string]any{"ofport": []any{"set", []any{}}}}, "timeout": 30000},
		dbOp{"op": "select", "table": "Interface", "where": byName, "columns": []string{"ofport"}},
	})
	if err != nil {
		return 0, fmt.Errorf("OpenFlow port of %q: %w", port, err)
	}
	if len(rows) != 1 {
		return 0, fmt.Errorf("OpenFlow port of %q: OVS gave it none within 30 s", port)
	}
	n, err := strconv.Atoi(fmt.Sprint(rows[0]["ofport"]))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("OpenFlow port of %q: OVS could not open it (ofport %v)", port, rows[0]["ofport"])
	}
	return n, nil
}
