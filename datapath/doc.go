// Package datapath will hold everything that touches a host's network: the
// flow compiler (desired state to Open vSwitch flows, pure), the OVS
// reconciler and the netlink plumbing. It is the next milestone; the agent
// (sdnd/agent) already hands it the complete desired state through its
// one-method Realizer interface.
package datapath
