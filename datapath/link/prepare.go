package link

import (
	"errors"
	"fmt"
)

// PrepareWorkload is the first half of SetupWorkload, for a caller that
// needs the host end before the workload's address is known (CNI ADD plugs
// it into OVS before it attaches the workload, so that the one realize of
// the attach finds the port): it creates spec's veth pair, or finds it as
// SetupWorkload does, and brings the host end up with spec's MTU. The
// namespace end is left as the kernel made it (down, no address): nothing
// leaves the workload before SetupWorkload, with the whole spec,
// configures it. spec.Addr, Gateway and MAC are not used. It returns the
// host end's interface index, and whether a host end of that name existed
// before the call (a repeated ADD's; the caller should not remove it when
// it fails).
func PrepareWorkload(spec WorkloadIface) (hostIndex int, existed bool, err error) {
	var errs []error
	if err := validIfname(spec.HostName); err != nil {
		errs = append(errs, fmt.Errorf("host end: %w", err))
	}
	if err := validIfname(spec.ContainerIfname); err != nil {
		errs = append(errs, fmt.Errorf("container end: %w", err))
	}
	if spec.NetNSPath == "" {
		errs = append(errs, errors.New("no network namespace path for the container end"))
	}
	if spec.MTU != 0 && (spec.MTU < 68 || spec.MTU > 65535) {
		errs = append(errs, fmt.Errorf("MTU %d out of range (68 to 65535)", spec.MTU))
	}
	if err := errors.Join(errs...); err != nil {
		return 0, false, fmt.Errorf("prepare workload interface %s: invalid spec: %w", spec, err)
	}
	spec.MAC = nil
	hostH, contH, err := openPair(spec)
	if err != nil {
		return 0, false, fmt.Errorf("prepare workload interface %s: %w", spec, err)
	}
	defer hostH.Close()
	defer contH.Close()
	if old, err := hostH.lookup(spec.HostName); err != nil {
		return 0, false, fmt.Errorf("prepare workload interface %s: %w", spec, err)
	} else if old != nil {
		existed = true
	}
	host, _, err := ensurePair(hostH, contH, spec)
	if err != nil {
		return 0, existed, fmt.Errorf("prepare workload interface %s: %w", spec, err)
	}
	for _, s := range hostEndSteps(hostH, host, spec) {
		if err := s.do(); err != nil {
			return 0, existed, fmt.Errorf("prepare workload interface %s: %s: %w", spec, s.what, err)
		}
	}
	return host.Attrs().Index, existed, nil
}
