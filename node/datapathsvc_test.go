package node

import (
	"net"
	"strings"
	"testing"
)

// The datapath service listens where --datapath-listen says and registers
// an address the servers can dial: a wildcard host is the underlay address,
// port 0 the port the kernel chose; "off" opens nothing.
func TestListenDatapath(t *testing.T) {
	underlay := net.ParseIP("127.0.0.1")
	lis, addr, err := listenDatapath("0.0.0.0:0", underlay)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	if addr != "127.0.0.1:"+port || port == "0" {
		t.Fatalf("registered %q for listener %s", addr, lis.Addr())
	}
	if lis, addr, err := listenDatapath(DatapathListenOff, underlay); lis != nil || addr != "" || err != nil {
		t.Fatalf("off: %v %q %v", lis, addr, err)
	}
	if _, _, err := listenDatapath("nonsense", underlay); err == nil || !strings.Contains(err.Error(), "want ip:port or off") {
		t.Fatalf("bad address: %v", err)
	}
}
