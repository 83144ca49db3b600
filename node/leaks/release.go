package leaks

import (
	"context"
	"fmt"
	"slices"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// release detaches a gone attachment on the servers and removes its port,
// holding the container's CNI lock (or after Grace without one).
func (l *Loop) release(ctx context.Context, g gone, dry bool, out *Outcome) error {
	o := g.w.GetOrigin()
	key := g.w.Network + "/" + g.w.Name
	what := fmt.Sprintf("workload %s (%s, container %s interface %s)", key, g.w.Ip, o.GetContainerId(), o.GetIfname())
	if l.cfg.Lock != nil {
		unlock, ok := l.cfg.Lock(o.GetContainerId())
		if !ok {
			out.Skipped = append(out.Skipped, what+": a CNI operation on its container is in progress; left alone")
			return nil
		}
		defer unlock()
		// Under the lock: an ADD that finished since the scan made the veth.
		world, err := l.cfg.Host.World(ctx)
		if err != nil {
			return fmt.Errorf("release %s: read the host's veths: %w", what, err)
		}
		if slices.Contains(world.Veths, g.hostIf) {
			out.Skipped = append(out.Skipped, what+": its veth came back; left alone")
			return nil
		}
	} else if age := l.cfg.Now().Sub(g.since); age < l.cfg.Grace {
		out.Skipped = append(out.Skipped, fmt.Sprintf("%s: veth %s missing for %s, less than the grace period %s; left alone", what, g.hostIf, age.Round(1e9), l.cfg.Grace))
		return nil
	}
	reason := fmt.Sprintf("its host veth %s is gone (namespace destroyed; DEL never ran or failed)", g.hostIf)
	if dry {
		out.Actions = append(out.Actions, fmt.Sprintf("would release %s: %s", what, reason))
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, detachTimeout)
	defer cancel()
	det, err := l.cfg.Workloads.Detach(dctx, &sdnv1.DetachWorkloadRequest{ContainerId: o.GetContainerId(), Ifname: o.GetIfname()})
	if err != nil {
		return fmt.Errorf("release %s: detach on the servers: %w", what, err)
	}
	if g.port {
		if err := l.cfg.Host.RemovePort(ctx, g.hostIf); err != nil {
			return fmt.Errorf("release %s: remove its port %s: %w", what, g.hostIf, err)
		}
	}
	delete(l.missingSince, g.hostIf)
	if !det.GetRemoved() {
		// Detached already (a DEL, or a pass before this state caught up).
		out.Actions = append(out.Actions, fmt.Sprintf("%s was released already", what))
		return nil
	}
	l.released.Add(1)
	l.log.Info("released a leaked attachment", "workload", key, "ip", g.w.Ip, "container", o.GetContainerId(), "ifname", o.GetIfname(),
		"reason", reason, "port_removed", g.port, "released_total", l.released.Load())
	out.Actions = append(out.Actions, fmt.Sprintf("released %s: %s", what, reason))
	return nil
}

// remove deletes a leftover veth and port once out of grace.
func (l *Loop) remove(ctx context.Context, lo leftover, dry bool, out *Outcome) error {
	what := describe(lo)
	if l.inGrace(lo, l.cfg.Now()) {
		out.Skipped = append(out.Skipped, fmt.Sprintf("%s: without an owner for less than the grace period %s (an ADD may be making it); left alone", what, l.cfg.Grace))
		return nil
	}
	if dry {
		out.Actions = append(out.Actions, "would remove "+what)
		return nil
	}
	if lo.port {
		if err := l.cfg.Host.RemovePort(ctx, lo.name); err != nil {
			return fmt.Errorf("remove %s: %w", what, err)
		}
	}
	if lo.veth {
		if err := l.cfg.Host.RemoveVeth(ctx, lo.name); err != nil {
			return fmt.Errorf("remove %s: %w", what, err)
		}
	}
	delete(l.orphanSince, lo.name)
	l.removed.Add(1)
	l.log.Info("removed a leftover workload interface", "name", lo.name, "veth", lo.veth, "port", lo.port,
		"reason", "no workload of this host owns it", "removed_total", l.removed.Load())
	out.Actions = append(out.Actions, "removed "+what)
	return nil
}

// describe names a leftover: "veth and port sdn0123456789a with no workload".
func describe(lo leftover) string {
	kind := "port"
	switch {
	case lo.veth && lo.port:
		kind = "veth and port"
	case lo.veth:
		kind = "veth"
	}
	return fmt.Sprintf("%s %s with no workload", kind, lo.name)
}
