package host

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

func TestOVSDBValues(t *testing.T) {
	// As `ovs-vsctl --format=json list` prints them (OVS 3.1).
	row := `[["uuid","d5db"],"br-int",["set",[]],["set",["OpenFlow13","OpenFlow15"]],"OpenFlow14",["map",[["hwaddr","aa:bb:cc:dd:ee:ff"],["k","v"]]],5,["set",[["uuid","p1"],["uuid","p2"]]]]`
	dec := json.NewDecoder(strings.NewReader(row))
	dec.UseNumber()
	var v []any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if uuid(v[0]) != "d5db" || atom(v[1]) != "br-int" || atom(v[2]) != "" || integer(v[2]) != 0 {
		t.Errorf("uuid/atom of %v", v[:3])
	}
	if s := set(v[3]); len(s) != 2 || atom(s[1]) != "OpenFlow15" {
		t.Errorf("set = %v", s)
	}
	if s := set(v[4]); len(s) != 1 || atom(s[0]) != "OpenFlow14" {
		t.Errorf("a one-element set is its element: %v", s)
	}
	if m := omap(v[5]); !maps.Equal(m, map[string]string{"hwaddr": "aa:bb:cc:dd:ee:ff", "k": "v"}) {
		t.Errorf("map = %v", m)
	}
	if integer(v[6]) != 5 || len(set(v[7])) != 2 || uuid(set(v[7])[1]) != "p2" {
		t.Errorf("integer/uuid set of %v", v[6:])
	}
}

func TestIfaceWantArgs(t *testing.T) {
	w := ifaceWant{typ: "vxlan", options: map[string]string{"remote_ip": "flow", "local_ip": "198.18.0.1"}, mac: "0a:58:0a:80:00:01", mtuRequest: 1450}
	got := strings.Join(w.args(), " ")
	want := `type=vxlan options={local_ip="198.18.0.1",remote_ip="flow"} mac="0a:58:0a:80:00:01" mtu_request=1450`
	if got != want {
		t.Errorf("args = %s\nwant   %s", got, want)
	}
	st := &ovsState{ifaces: map[string]ifaceRow{"t": {typ: "vxlan", options: map[string]string{"remote_ip": "flow", "local_ip": "198.18.0.1"},
		mac: "0a:58:0a:80:00:01", mtuRequest: 1450, ofport: 1, ofportRequest: 1, bridge: "br-int", portOnlyIfaces: true}}}
	w.name, w.bridge, w.ofport = "t", "br-int", 1
	if d := st.ifaceDiffers(w); d != nil {
		t.Errorf("ifaceDiffers(same) = %v", d)
	}
	w.options["dst_port"] = "4789"
	if d := st.ifaceDiffers(w); len(d) != 1 || !strings.HasPrefix(d[0], "options") {
		t.Errorf("ifaceDiffers(new option) = %v", d)
	}
	w.bridge = "br-phy"
	if d := st.ifaceDiffers(w); len(d) != 1 || d[0] != "missing" {
		t.Errorf("ifaceDiffers(other bridge) = %v", d)
	}
}
