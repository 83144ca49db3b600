package ovs

import (
	"context"
	"fmt"
)

// # Trusted reconciles
//
// Reading a bridge back costs a dump of every flow and group (one
// ovs-ofctl process each, and parsing), and every group text not seen
// before a round trip through CanonBridge: at 1,000 services, most of the
// time a one-endpoint change takes. A reconcile with Desired.Trusted
// diffs the desired flows and groups against what the last successful
// reconcile of the bridge left there (knownBridge) and sends only what
// differs. Only a successful reconcile leaves the bridge known: a failed
// one of any kind forgets it, and the next reads the bridge; so does a
// restarted ovs-vswitchd (another pid), which may have come back with
// none of the flows. A full reconcile (without Trusted) reads the bridge,
// so what changed behind sdn's back otherwise is repaired at the next one
// (datapath/host runs one at start, at every resync and for every new
// workload).

// knownBridge is what one reconcile left on a bridge: the flows of ours
// in dump form (canonical, with their cookies), and the owned groups by
// input text. nil slices and maps are "not known".
type knownBridge struct {
	flows  []Flow
	groups map[uint32]string
	// vswitchd is the pid of the ovs-vswitchd that holds them.
	vswitchd int
}

// flowsIf returns the known flows when trusted, else nil (read the
// bridge).
func (k *knownBridge) flowsIf(trusted bool) []Flow {
	if k == nil || !trusted {
		return nil
	}
	return k.flows
}

// groupsIf returns the known groups when trusted, else nil.
func (k *knownBridge) groupsIf(trusted bool) map[uint32]string {
	if k == nil || !trusted {
		return nil
	}
	return k.groups
}

// groupInputs renders groups by ID as they are handed to ovs-ofctl.
func groupInputs(groups []Group, texts []string) map[uint32]string {
	m := make(map[uint32]string, len(groups))
	for k, g := range groups {
		m[g.ID] = texts[k]
	}
	return m
}

// groupTexts are the groups' input texts, made once per reconcile (a
// change realize diffs 1,000 of them).
func groupTexts(groups []Group) []string {
	out := make([]string, len(groups))
	for k, g := range groups {
		out[k] = g.input()
	}
	return out
}

// remember records what a successful reconcile left on bridge.
func (i *Instance) remember(bridge string, k *knownBridge) {
	if i.known == nil {
		i.known = map[string]*knownBridge{}
	}
	k.vswitchd = i.livePID("ovs-vswitchd")
	i.known[bridge] = k
}

// recall returns what the last reconcile left on bridge, and forgets it
// (a reconcile remembers anew only when it succeeds). A bridge of another
// ovs-vswitchd than the one now running is not known.
func (i *Instance) recall(bridge string) *knownBridge {
	k := i.known[bridge]
	delete(i.known, bridge)
	if k == nil || k.vswitchd == 0 || k.vswitchd != i.livePID("ovs-vswitchd") {
		return nil
	}
	return k
}

// planBridgeFlows diffs the bridge's flows of ours (known ones, or dumped
// when known is nil) against d.Flows, and returns the ops and the flows
// the bridge holds after them.
func (i *Instance) planBridgeFlows(ctx context.Context, bridge string, d Desired, known []Flow, res *Result) (dels, adds []op, after []Flow, err error) {
	canon, err := i.canonicalize(ctx, d.Flows, d.lines)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reconcile bridge %q: %w", bridge, err)
	}
	if d.OwnedGroups != (GroupRange{}) {
		if err := checkGroupRefs(d, canon); err != nil {
			return nil, nil, nil, fmt.Errorf("reconcile bridge %q: %w", bridge, err)
		}
	}
	current := known
	if current == nil {
		if current, err = i.DumpFlows(ctx, bridge, TagCookie(), TagMask); err != nil {
			return nil, nil, nil, fmt.Errorf("reconcile bridge %q: %w", bridge, err)
		}
	}
	dels, adds, after, err = planFlows(current, d.Flows, canon, d.Generation, res)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reconcile bridge %q: %w", bridge, err)
	}
	return dels, adds, after, nil
}
