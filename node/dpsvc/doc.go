// Package dpsvc is the agent's datapath service (DatapathService in
// proto/sdn/v1/policy.proto): what the servers ask a host's datapath. Trace
// runs a packet through the host's pipeline (ofproto/trace, told in the
// pipeline's words) and RuleCounters reads the policy rules' flow
// statistics. It adapts a Tracer (the host datapath, datapath/host) to
// gRPC and serves it on a TCP listener the agent opens (sdnd
// --datapath-listen).
//
// Only servers may call it: with mutual TLS (pki.HostServiceTLS) every
// call's certificate must be a server's, and others are refused with
// PermissionDenied; without TLS (sdnd --dev) nothing is checked.
package dpsvc
