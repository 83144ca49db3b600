// Package node is the host side of sdn: what runs on every host that carries
// workloads. Start opens the host's Open vSwitch and datapath
// (datapath/host), starts the agent (node/agent: watch the servers, keep the
// host's desired state, realize it, report) and serves the CNI plugin
// (node/cnisrv) on a root-only unix socket.
//
// The pieces meet through small interfaces defined where they are used: the
// agent calls a one-method Realizer with the whole desired state
// (model.Desired), which *host.Datapath implements; the CNI service plugs
// workload ports through its Datapath interface and reads the agent's state
// through its Agent interface. The datapath imports neither: it takes its
// input from package model. sdnd only turns flags into a Config.
package node
