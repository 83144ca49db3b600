package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Output formats of get and status.
const (
	formatTable = "table"
	formatJSON  = "json"
	// formatWide is the table with more columns (workloads, policies).
	formatWide = "wide"
)

func checkFormat(f string) error {
	switch f {
	case formatTable, formatJSON:
		return nil
	}
	return usagef("unknown output format %q; use -o table or -o json", f)
}

// newTable returns a tabwriter for aligned columns; Flush it when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
}

// row writes one tab-separated table row; empty cells are shown as "-" so
// columns stay readable.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// formatLabels renders labels as "k=v,k2=v2", sorted by key; "" when there
// are none.
func formatLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
	}
	return b.String()
}

// formatOrigin names where an object came from: "hcl", "cni", "agent",
// "api", "attach" or "docker"; "" when unknown.
func formatOrigin(o *sdnv1.Origin) string {
	switch o.GetKind() {
	case sdnv1.OriginKind_ORIGIN_KIND_HCL:
		return "hcl"
	case sdnv1.OriginKind_ORIGIN_KIND_CNI:
		return "cni"
	case sdnv1.OriginKind_ORIGIN_KIND_AGENT:
		return "agent"
	case sdnv1.OriginKind_ORIGIN_KIND_API:
		return "api"
	case sdnv1.OriginKind_ORIGIN_KIND_ATTACH:
		return "attach"
	case sdnv1.OriginKind_ORIGIN_KIND_DOCKER:
		return "docker"
	}
	return ""
}

func formatNodeState(s sdnv1.NodeState) string {
	switch s {
	case sdnv1.NodeState_NODE_STATE_READY:
		return "ready"
	case sdnv1.NodeState_NODE_STATE_DOWN:
		return "down"
	case sdnv1.NodeState_NODE_STATE_DRAINED:
		return "drained"
	}
	return "unknown"
}

// writeNodesTable prints the hosts with their status (ready, drained,
// down for how long) and, when the answer came from the leader
// (heartbeats), how long ago it last heard from each.
func writeNodesTable(w io.Writer, nodes []*sdnv1.Node, heartbeats bool, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tUNDERLAY-IP\tMTU\tSUBNET\tGATEWAY\tSTATUS\tHEARTBEAT")
	for _, n := range sortedNodes(nodes) {
		hb := ""
		if heartbeats {
			hb = formatAgo(n.GetLastHeartbeatUnixMs(), now)
		}
		row(tw, n.GetName(), n.GetUnderlayIp(), uintCell(n.GetUnderlayMtu()), n.GetSubnet(), n.GetGatewayIp(),
			formatNodeStatus(n.GetDownSinceUnixMs(), n.GetDrained(), now), hb)
	}
	return tw.Flush()
}

// formatNodeStatus renders a host's liveness: "ready", "drained",
// "down for 3m12s", "down for 3m12s, drained".
func formatNodeStatus(downSinceUnixMs int64, drained bool, now time.Time) string {
	s := "ready"
	if downSinceUnixMs != 0 {
		s = "down for " + formatDuration(now.Sub(time.UnixMilli(downSinceUnixMs)))
		if drained {
			s += ", drained"
		}
		return s
	}
	if drained {
		s = "drained"
	}
	return s
}

// formatDuration renders an elapsed time coarsely: "12s", "3m12s",
// "5h02m", "3d".
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

func writeNetworksTable(w io.Writer, networks []*sdnv1.Network) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tVNID\tADMIN\tLABELS\tORIGIN")
	for _, n := range sortedNetworks(networks) {
		admin := "no"
		if n.GetAdmin() {
			admin = "yes"
		}
		row(tw, n.GetName(), fmt.Sprint(n.GetVnid()), admin, formatLabels(n.GetLabels()), formatOrigin(n.GetOrigin()))
	}
	return tw.Flush()
}

func writeWorkloadsTable(w io.Writer, workloads []*sdnv1.Workload, wide bool) error {
	return writeWorkloadsTableOn(w, workloads, nil, wide)
}

// workloadStatus is a workload's STATUS: why it has no address yet, else
// whether its host is gone or down (nodes by name; nil when not known),
// else ready. A workload whose namespace is gone is released by its
// host's leak loop (node/leaks) and leaves the list.
func workloadStatus(wl *sdnv1.Workload, nodes map[string]*sdnv1.Node) string {
	if p := wl.GetPending(); p != "" {
		return p
	}
	if nodes == nil {
		return "ready"
	}
	n, ok := nodes[wl.GetNode()]
	switch {
	case !ok:
		return "host gone (see sdnctl ipam check)"
	case n.GetDownSinceUnixMs() != 0:
		return "host down since " + time.UnixMilli(n.GetDownSinceUnixMs()).UTC().Format(time.RFC3339)
	}
	return "ready"
}

// writeWorkloadsTableOn is writeWorkloadsTable with each workload's STATUS
// joined with its host's liveness.
func writeWorkloadsTableOn(w io.Writer, workloads []*sdnv1.Workload, nodes map[string]*sdnv1.Node, wide bool) error {
	tw := newTable(w)
	header := "NETWORK\tNAME\tNODE\tIP\tMAC\tLABELS\tORIGIN\tSTATUS"
	if wide {
		header += "\tNAMED PORTS"
	}
	fmt.Fprintln(tw, header)
	for _, wl := range sortedWorkloads(workloads) {
		st := workloadStatus(wl, nodes)
		cells := []string{wl.GetNetwork(), wl.GetName(), wl.GetNode(), wl.GetIp(), wl.GetMac(),
			formatLabels(wl.GetLabels()), formatOrigin(wl.GetOrigin()), st}
		if wide {
			cells = append(cells, formatNamedPorts(wl.GetNamedPorts()))
		}
		row(tw, cells...)
	}
	return tw.Flush()
}

// formatNamedPorts renders named ports as "http=tcp/8080,dns=udp/53", "-"
// for none.
func formatNamedPorts(ports []*sdnv1.NamedPort) string {
	if len(ports) == 0 {
		return "-"
	}
	parts := make([]string, len(ports))
	for i, np := range ports {
		proto := np.GetProtocol()
		if proto == "" {
			proto = "tcp"
		}
		parts[i] = fmt.Sprintf("%s=%s/%d", np.GetName(), proto, np.GetPort())
	}
	return strings.Join(parts, ",")
}

// writeClusterTable prints the cluster settings as aligned key/value lines.
func writeClusterTable(w io.Writer, c *sdnv1.ClusterSettings, revision uint64) error {
	if c == nil {
		_, err := fmt.Fprintf(w, "No cluster settings yet (revision %d); declare a cluster block and apply it.\n", revision)
		return err
	}
	mtu := "auto"
	if c.GetMtu() != 0 {
		mtu = fmt.Sprint(c.GetMtu())
	}
	effective := "unknown until a host registers"
	if c.GetEffectiveMtu() != 0 {
		effective = fmt.Sprint(c.GetEffectiveMtu())
	}
	origin := formatOrigin(c.GetOrigin())
	if f := c.GetOrigin().GetFile(); f != "" {
		origin += " (" + f + ")"
	}
	tw := newTable(w)
	for _, kv := range [][2]string{
		{"cidr", c.GetCidr()},
		{"host-prefix", uintCell(c.GetHostPrefix())},
		{"service-cidr", c.GetServiceCidr()},
		{"vxlan-port", uintCell(c.GetVxlanPort())},
		{"isolation", model.IsolationName(c.GetIsolation())},
		{"mtu", mtu},
		{"effective-mtu", effective},
		{"node-release-after", model.FormatNodeReleaseAfter(c.GetNodeReleaseAfterSeconds())},
		{"origin", origin},
		{"revision", uint64Cell(c.GetModRevision())},
	} {
		row(tw, kv[0]+":", kv[1])
	}
	return tw.Flush()
}

func uintCell(v uint32) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprint(v)
}

func uint64Cell(v uint64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprint(v)
}

func sortedNodes(in []*sdnv1.Node) []*sdnv1.Node {
	out := append([]*sdnv1.Node(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

func sortedNetworks(in []*sdnv1.Network) []*sdnv1.Network {
	out := append([]*sdnv1.Network(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

func sortedWorkloads(in []*sdnv1.Workload) []*sdnv1.Workload {
	out := append([]*sdnv1.Workload(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.GetNetwork() != b.GetNetwork() {
			return a.GetNetwork() < b.GetNetwork()
		}
		return a.GetName() < b.GetName()
	})
	return out
}

// jsonOptions emit default values so that, e.g., the admin network's VNID 0
// is present rather than missing.
var jsonOptions = protojson.MarshalOptions{EmitDefaultValues: true}

// inputOnlyFields are request-only fields (source ranges), left out of the
// output: EmitDefaultValues would otherwise print them as {}.
var inputOnlyFields = map[string]bool{"ranges": true}

// marshalJSON renders one message (or null for a nil one) as indented JSON
// whose bytes do not depend on protojson's deliberately unstable spacing.
func marshalJSON(m proto.Message) ([]byte, error) {
	if m == nil || !m.ProtoReflect().IsValid() {
		return []byte("null\n"), nil
	}
	b, err := marshalObject(m)
	if err != nil {
		return nil, err
	}
	return stableJSON(b)
}

// marshalJSONList renders messages as an indented JSON array ("[]" when
// there are none).
func marshalJSONList[M proto.Message](ms []M) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, m := range ms {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := marshalObject(m)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	buf.WriteByte(']')
	return stableJSON(buf.Bytes())
}

// marshalObject is protojson without the top-level input-only fields, in
// protojson's (field number) order.
func marshalObject(m proto.Message) ([]byte, error) {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("protojson gave %q, not an object", b)
	}
	var out bytes.Buffer
	out.WriteByte('{')
	first := true
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		if inputOnlyFields[key] {
			continue
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(key)
		out.Write(k)
		out.WriteByte(':')
		out.Write(val)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

func stableJSON(b []byte) ([]byte, error) {
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return nil, err
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
