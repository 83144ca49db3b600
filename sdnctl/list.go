package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// listAll reads a whole list with ListStream: pages of one snapshot, each
// small enough for any gRPC client, merged into one ListResponse as List
// answers it, so `get` prints what it always printed, for lists of any
// length. A server older than ListStream answers Unimplemented; then it is
// asked with List, in one message (docs/design.md, "Message sizes and
// paging").
func listAll(ctx context.Context, c *client, req *sdnv1.ListRequest) (*sdnv1.ListResponse, error) {
	st, err := c.config.ListStream(ctx, req)
	if err != nil {
		return nil, err
	}
	var out *sdnv1.ListResponse
	for {
		page, err := st.Recv()
		switch {
		case errors.Is(err, io.EOF) && out == nil:
			return nil, errors.New("sdnd ended the list without sending any of it; run the command again")
		case errors.Is(err, io.EOF) && out.More:
			return nil, fmt.Errorf("sdnd ended the list after %s, before its last page; run the command again", count(objects(out), "object"))
		case errors.Is(err, io.EOF):
			return out, nil
		case err != nil && out == nil && status.Code(err) == codes.Unimplemented:
			return c.config.List(ctx, req) // an older server
		case err != nil:
			return nil, err
		}
		if out == nil {
			out = page
			continue
		}
		if page.Revision != out.Revision {
			return nil, fmt.Errorf("sdnd sent pages of one list at revisions %d and %d (a bug in sdnd); run the command again", out.Revision, page.Revision)
		}
		out.Networks = append(out.Networks, page.Networks...)
		out.Nodes = append(out.Nodes, page.Nodes...)
		out.Workloads = append(out.Workloads, page.Workloads...)
		out.Policies = append(out.Policies, page.Policies...)
		out.AddressGroups = append(out.AddressGroups, page.AddressGroups...)
		out.Services = append(out.Services, page.Services...)
		out.ServiceEndpoints = append(out.ServiceEndpoints, page.ServiceEndpoints...)
		out.More = page.More
	}
}

// objects counts the objects of a list.
func objects(l *sdnv1.ListResponse) int {
	return len(l.GetNetworks()) + len(l.GetNodes()) + len(l.GetWorkloads()) + len(l.GetPolicies()) + len(l.GetAddressGroups()) +
		len(l.GetServices()) + len(l.GetServiceEndpoints())
}
