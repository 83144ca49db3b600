package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sdn-dev/sdn/datapath/ovs"
)

// ovsState is what OVS's database holds of the bridges and interfaces this
// package manages, read in one ovs-vsctl run so Realize can compare before
// it writes (a second Realize with the same input writes nothing).
type ovsState struct {
	bridges map[string]bridgeRow
	ifaces  map[string]ifaceRow
}

type bridgeRow struct {
	datapathType, failMode string
	protocols              []string
	otherConfig            map[string]string
	ports                  []string // port names, sorted
}

type ifaceRow struct {
	typ            string
	options        map[string]string
	mac            string
	mtuRequest     int
	ofportRequest  int
	ofport         int // -1 when OVS could not open the interface, 0 unknown
	err            string
	bridge         string // the bridge whose port it is
	portOnlyIfaces bool   // its port holds this one interface
}

// vsctlTables parses the output of `ovs-vsctl --format=json` listing n
// tables: per table, its rows as column name to value.
func vsctlTables(out string, n int) ([][]map[string]any, error) {
	tables := make([][]map[string]any, n)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	for k := range tables {
		var t struct {
			Headings []string `json:"headings"`
			Data     [][]any  `json:"data"`
		}
		if err := dec.Decode(&t); err != nil {
			return nil, fmt.Errorf("parse ovs-vsctl output: %w", err)
		}
		for _, row := range t.Data {
			r := map[string]any{}
			for j, h := range t.Headings {
				if j < len(row) {
					r[h] = row[j]
				}
			}
			tables[k] = append(tables[k], r)
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("unexpected output after the %d tables", n)
	}
	return tables, nil
}

// readOVS reads the Bridge, Port and Interface tables.
func readOVS(ctx context.Context, inst *ovs.Instance) (*ovsState, error) {
	out, err := inst.Vsctl(ctx, "--format=json",
		"--", "--columns=name,datapath_type,fail_mode,protocols,other_config,ports", "list", "Bridge",
		"--", "--columns=_uuid,name,interfaces", "list", "Port",
		"--", "--columns=_uuid,name,type,options,mac,mtu_request,ofport_request,ofport,error", "list", "Interface")
	if err != nil {
		return nil, fmt.Errorf("read OVS database: %w", err)
	}
	tables, err := vsctlTables(out, 3)
	if err != nil {
		return nil, fmt.Errorf("read OVS database: %w", err)
	}

	portName := map[string]string{}     // port uuid -> name
	ifacePort := map[string]string{}    // interface uuid -> port name
	portIfaces := map[string][]string{} // port name -> interface uuids
	for _, p := range tables[1] {
		name := atom(p["name"])
		portName[uuid(p["_uuid"])] = name
		for _, i := range set(p["interfaces"]) {
			ifacePort[uuid(i)] = name
			portIfaces[name] = append(portIfaces[name], uuid(i))
		}
	}
	s := &ovsState{bridges: map[string]bridgeRow{}, ifaces: map[string]ifaceRow{}}
	portBridge := map[string]string{}
	for _, b := range tables[0] {
		row := bridgeRow{datapathType: atom(b["datapath_type"]), failMode: atom(b["fail_mode"]), otherConfig: omap(b["other_config"])}
		for _, p := range set(b["protocols"]) {
			row.protocols = append(row.protocols, atom(p))
		}
		for _, p := range set(b["ports"]) {
			name := portName[uuid(p)]
			row.ports = append(row.ports, name)
			portBridge[name] = atom(b["name"])
		}
		slices.Sort(row.ports)
		slices.Sort(row.protocols)
		s.bridges[atom(b["name"])] = row
	}
	for _, i := range tables[2] {
		port := ifacePort[uuid(i["_uuid"])]
		s.ifaces[atom(i["name"])] = ifaceRow{
			typ: atom(i["type"]), options: omap(i["options"]), mac: atom(i["mac"]),
			mtuRequest: integer(i["mtu_request"]), ofportRequest: integer(i["ofport_request"]), ofport: integer(i["ofport"]),
			err: atom(i["error"]), bridge: portBridge[port], portOnlyIfaces: port == atom(i["name"]) && len(portIfaces[port]) == 1,
		}
	}
	return s, nil
}

// OVSDB's JSON: an atom is a string, number or boolean; ["uuid", U];
// ["set", [...]] (a one-element set is shown as its element);
// ["map", [[k, v], ...]].
func tagged(v any, tag string) ([]any, bool) {
	a, ok := v.([]any)
	if ok && len(a) == 2 && a[0] == tag {
		return a, true
	}
	return nil, false
}

func atom(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	if s := set(v); len(s) == 1 {
		return atom(s[0])
	}
	return ""
}

func uuid(v any) string {
	if a, ok := tagged(v, "uuid"); ok {
		s, _ := a[1].(string)
		return s
	}
	return ""
}

func set(v any) []any {
	if a, ok := tagged(v, "set"); ok {
		s, _ := a[1].([]any)
		return s
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func omap(v any) map[string]string {
	m := map[string]string{}
	if a, ok := tagged(v, "map"); ok {
		pairs, _ := a[1].([]any)
		for _, p := range pairs {
			if kv, ok := p.([]any); ok && len(kv) == 2 {
				m[atom(kv[0])] = atom(kv[1])
			}
		}
	}
	return m
}

func integer(v any) int {
	n, err := strconv.Atoi(atom(v))
	if err != nil {
		return 0
	}
	return n
}

// bridgeWant is a bridge as this package wants it.
type bridgeWant struct {
	name, datapathType string
	otherConfig        map[string]string // keys we set; others are left alone
}

// differs reports what of the bridge differs from w (nil if nothing).
func (s *ovsState) bridgeDiffers(w bridgeWant) []string {
	b, ok := s.bridges[w.name]
	if !ok {
		return []string{"missing"}
	}
	var d []string
	if b.datapathType != w.datapathType && !(w.datapathType == "system" && b.datapathType == "") {
		d = append(d, fmt.Sprintf("datapath_type %q", b.datapathType))
	}
	if b.failMode != "secure" {
		d = append(d, fmt.Sprintf("fail_mode %q", b.failMode))
	}
	if want := strings.Split(ovs.Protocols, ","); !slices.Equal(b.protocols, want) {
		d = append(d, fmt.Sprintf("protocols %v", b.protocols))
	}
	oc := maps.Clone(w.otherConfig)
	if oc == nil {
		oc = map[string]string{}
	}
	oc["disable-in-band"] = "true"
	for _, k := range slices.Sorted(maps.Keys(oc)) {
		if b.otherConfig[k] != oc[k] {
			d = append(d, fmt.Sprintf("other_config:%s %q", k, b.otherConfig[k]))
		}
	}
	return d
}

// ifaceWant is a port with one interface as this package wants it.
type ifaceWant struct {
	bridge, name string
	typ          string            // "" = a system interface (veth, NIC)
	options      map[string]string // exactly these
	mac          string            // "" = not set
	mtuRequest   int               // 0 = not set
	ofport       int               // ofport_request; 0 = OVS chooses
}

// args renders w as EnsurePort's extra settings.
func (w ifaceWant) args() []string {
	var a []string
	if w.typ != "" {
		a = append(a, "type="+w.typ)
	}
	if len(w.options) > 0 { // the whole map, so stale keys go
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(w.options)) {
			kv = append(kv, fmt.Sprintf("%s=%q", k, w.options[k]))
		}
		a = append(a, "options={"+strings.Join(kv, ",")+"}")
	}
	if w.mac != "" {
		a = append(a, fmt.Sprintf("mac=%q", w.mac))
	}
	if w.mtuRequest > 0 {
		a = append(a, "mtu_request="+strconv.Itoa(w.mtuRequest))
	}
	return a
}

// ifaceDiffers reports what of the interface differs from w (nil if
// nothing).
func (s *ovsState) ifaceDiffers(w ifaceWant) []string {
	i, ok := s.ifaces[w.name]
	if !ok || i.bridge != w.bridge || !i.portOnlyIfaces {
		return []string{"missing"}
	}
	var d []string
	typ := w.typ
	if typ == "" {
		typ = "system"
	}
	if it := i.typ; it != typ && !(typ == "system" && it == "") {
		d = append(d, fmt.Sprintf("type %q", i.typ))
	}
	if !maps.Equal(i.options, w.options) && (len(i.options) > 0 || len(w.options) > 0) {
		d = append(d, fmt.Sprintf("options %v", i.options))
	}
	if w.mac != "" && !strings.EqualFold(i.mac, w.mac) {
		d = append(d, fmt.Sprintf("mac %q", i.mac))
	}
	if i.mtuRequest != w.mtuRequest && w.mtuRequest > 0 {
		d = append(d, fmt.Sprintf("mtu_request %d", i.mtuRequest))
	}
	if w.ofport > 0 && (i.ofportRequest != w.ofport || i.ofport != w.ofport) {
		d = append(d, fmt.Sprintf("OpenFlow port %d (requested %d)", i.ofport, i.ofportRequest))
	}
	return d
}

// ports returns the bridge's interfaces with their OpenFlow ports, like
// ovs.Instance.Ports.
func (s *ovsState) ports(bridge string) map[string]int {
	m := map[string]int{}
	for name, i := range s.ifaces {
		if i.bridge == bridge && name != bridge {
			m[name] = i.ofport
		}
	}
	return m
}
