package main

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// TestApplySendsNoRanges: apply sends its objects without source ranges
// (a third of the size) and points a refusal without ranges at the files
// itself.
func TestApplySendsNoRanges(t *testing.T) {
	writeFiles(t, map[string]string{"file.hcl": fileHCL})
	f := &fakeSDND{applyErr: applyErr(t, codes.FailedPrecondition, "1 violation",
		&sdnv1.Violation{Kind: "workload", Name: "proj1/db1", Field: "node", Message: "node host1 is drained"})}
	addr := serve(t, f)
	r := sdnctl(t, addr, "apply", "-f", "file.hcl")
	if want := "file.hcl:8,13-20: Invalid node in workload \"proj1/db1\"; node host1 is drained\n"; r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant it to contain %q", r.code, r.stderr, want)
	}
	req := f.applyReqs[0]
	if len(req.Networks) != 1 || len(req.Workloads) != 1 || req.Networks[0].Labels["env"] != "dev" {
		t.Fatalf("apply sent %v", req)
	}
	if req.Networks[0].Ranges != nil || req.Workloads[0].Ranges != nil {
		t.Errorf("apply sent source ranges: %v", req)
	}
}

// TestApplyTooLarge: a request larger than a server takes is refused
// before anything is sent, saying how to split it; an older server's
// refusal in gRPC's words is explained.
func TestApplyTooLarge(t *testing.T) {
	writeFiles(t, map[string]string{"file.hcl": fileHCL})
	f := &fakeSDND{applyErr: status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5000000 vs. 4194304)")}
	addr := serve(t, f)
	r := sdnctl(t, addr, "apply", "-f", "file.hcl")
	if want := "sdnctl: sdnd at " + addr + " refused the request (0.0 MiB) as larger than it takes (grpc: received message larger than max (5000000 vs. 4194304)); nothing was changed. An older sdnd takes 4 MiB at most; split the objects over several files (or directories) and apply each on its own\n"; r.code != 1 || r.stderr != want {
		t.Errorf("refused by an older server: exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
	}

	defer func(old int) { maxRequestBytes = old }(maxRequestBytes)
	maxRequestBytes = 40
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apply"}, "sdnctl: the files declare 1 network and 1 workload: 70 bytes in one request, more than the 40 bytes a server takes (docs/design.md, \"Message sizes and paging\"); nothing was sent. To apply them, split the objects over several files (or directories) and apply each on its own\n"},
		{[]string{"apply", "--prune"}, "sdnctl: the files declare 1 network and 1 workload: 72 bytes in one request, more than the 40 bytes a server takes (docs/design.md, \"Message sizes and paging\"); nothing was sent. To apply them, split the objects over several files (or directories) and apply each on its own, without --prune: each part would delete what the others declare\n"},
		{[]string{"plan"}, "sdnctl: the files declare 1 network and 1 workload: 72 bytes in one request, more than the 40 bytes a server takes (docs/design.md, \"Message sizes and paging\"); nothing was sent. To plan them, split the objects over several files (or directories) and plan each on its own\n"},
	} {
		r := sdnctl(t, addr, append(tc.args, "-f", "file.hcl")...)
		if r.code != 1 || r.stderr != tc.want {
			t.Errorf("sdnctl %s: exit %d, stderr:\n%s\nwant:\n%s", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	if len(f.applyReqs) != 1 {
		t.Errorf("%d requests sent, want only the first", len(f.applyReqs))
	}
}
