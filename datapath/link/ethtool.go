package link

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value from <linux/ethtool.h>.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data set. The kernel copies
// sizeof(struct ifreq) (40 bytes on 64-bit) from user space, so the padding
// keeps the Go value at least that large on every architecture.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24]byte
}

// TxChecksum reports whether transmit checksum offload is on for the link
// called ifname (ETHTOOL_GTXCSUM: any of the tx-checksum-* features).
func (h *Handle) TxChecksum(ifname string) (bool, error) {
	v := ethtoolValue{cmd: unix.ETHTOOL_GTXCSUM}
	if err := h.ethtool(ifname, &v); err != nil {
		return false, fmt.Errorf("read tx checksum offload of %q in network namespace %s: %w", ifname, h.where(), err)
	}
	return v.data != 0, nil
}

// SetTxChecksum switches transmit checksum offload of the link called ifname,
// like `ethtool -K IFNAME tx on|off`: ETHTOOL_STXCSUM sets or clears every
// tx-checksum-* feature the device can change (and the kernel then drops the
// features that need them, such as TSO).
func (h *Handle) SetTxChecksum(ifname string, on bool) error {
	v := ethtoolValue{cmd: unix.ETHTOOL_STXCSUM}
	if on {
		v.data = 1
	}
	if err := h.ethtool(ifname, &v); err != nil {
		return fmt.Errorf("set tx checksum offload %s on %q in network namespace %s: %w", onOff(on), ifname, h.where(), err)
	}
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// ethtool issues one SIOCETHTOOL ioctl on a socket inside h's namespace (the
// kernel resolves ifname in the socket's namespace).
func (h *Handle) ethtool(ifname string, v *ethtoolValue) error {
	if err := validIfname(ifname); err != nil {
		return err
	}
	fd, err := h.ioctlSocket()
	if err != nil {
		return err
	}
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(v)
	if errno != 0 {
		return errno
	}
	return nil
}

func (h *Handle) ioctlSocket() (int, error) {
	if h.ioctlFd >= 0 {
		return h.ioctlFd, nil
	}
	fd := -1
	open := func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}
	var err error
	if h.path == "" {
		err = open()
	} else {
		err = runInNS(h.ns, open)
	}
	if err != nil {
		return -1, fmt.Errorf("open ioctl socket in network namespace %s: %w", h.where(), err)
	}
	h.ioctlFd = fd
	return fd, nil
}
