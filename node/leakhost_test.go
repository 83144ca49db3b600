package node

import (
	"slices"
	"testing"
)

// TestListWorldPortsFirst: the leak loop's view of the host lists ports
// before veths, so an ADD that makes its veth and then its port between the
// two lists is seen as a veth alone (left alone for the grace period), never
// as a port alone (removed at once).
func TestListWorldPortsFirst(t *testing.T) {
	const name = "sdn0123456789a"
	var made []string // what the "ADD" made so far, in order
	add := func() { made = append(made, "veth", "port") }
	var order []string
	ports := func() (map[string]int, error) {
		order = append(order, "ports")
		if len(order) == 1 {
			add() // the ADD runs between the two lists
		}
		if slices.Contains(made, "port") && len(order) > 1 {
			return map[string]int{name: 7}, nil
		}
		return map[string]int{}, nil
	}
	veths := func() ([]string, error) {
		order = append(order, "veths")
		if len(order) == 1 {
			add()
		}
		if slices.Contains(made, "veth") {
			return []string{name}, nil
		}
		return nil, nil
	}
	w, err := listWorld(ports, veths)
	if err != nil {
		t.Fatal(err)
	}
	_, port := w.Ports[name]
	if port && !slices.Contains(w.Veths, name) {
		t.Errorf("listed %v: the ADD's port without its veth (the leak loop would unplug it)", order)
	}
	if !slices.Equal(order, []string{"ports", "veths"}) {
		t.Errorf("listed %v; want ports, then veths", order)
	}
}
