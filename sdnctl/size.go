package main

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Request sizes (docs/design.md, "Message sizes and paging"): a server
// takes an apply of up to model.MaxRequestBytes. sdnctl sends its objects
// without their source ranges (model.ClearRanges; it attaches them to
// refusals itself), and refuses a bigger request before sending any of it.

// maxRequestBytes is model.MaxRequestBytes (a variable for tests).
var maxRequestBytes = model.MaxRequestBytes

// splitAdvice says how to apply (or plan: verb) files that are too large
// for one request.
func splitAdvice(verb string, prune bool) string {
	s := "split the objects over several files (or directories) and " + verb + " each on its own"
	if prune {
		s += ", without --prune: each part would delete what the others declare"
	}
	return s
}

// checkRequestSize refuses a request larger than a server takes, before
// anything is sent.
func checkRequestSize(req *sdnv1.ApplyRequest, verb string) error {
	n := proto.Size(req)
	if n <= maxRequestBytes {
		return nil
	}
	got, limit := model.FormatOver(n, maxRequestBytes)
	return fmt.Errorf("the files declare %s and %s: %s in one request, more than the %s a server takes (docs/design.md, \"Message sizes and paging\"); nothing was sent. To %s them, %s",
		count(len(req.GetNetworks()), "network"), count(len(req.GetWorkloads()), "workload"),
		got, limit, verb, splitAdvice(verb, req.GetPrune()))
}

// tooLargeForServer explains gRPC's own refusal of a request past a
// server's message limit: an older sdnd takes 4 MiB, a newer one answers
// in words up to twice model.MaxRequestBytes (cluster/api's limits.go).
// It returns nil for any other error.
func (a *app) tooLargeForServer(err error, req *sdnv1.ApplyRequest) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "received message larger than max") {
		return nil
	}
	return fmt.Errorf("sdnd at %s refused the request (%.1f MiB) as larger than it takes (%s); nothing was changed. An older sdnd takes 4 MiB at most; %s",
		a.server, float64(proto.Size(req))/(1<<20), st.Message(), splitAdvice("apply", req.GetPrune()))
}
