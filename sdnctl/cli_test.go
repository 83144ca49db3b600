package main

// Rendering tests: the CLI's root command runs in-process against a real
// gRPC server on loopback whose services are a TEST DOUBLE of sdnd. The
// double returns canned responses and records requests; it checks what
// sdnctl sends and how it renders answers, nothing about sdnd's behaviour.
// End-to-end tests against a real sdnd live in integration/.

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

type result struct {
	stdout, stderr string
	code           int
}

// sdnctl runs the root command in-process with --server addr.
func sdnctl(t *testing.T, addr string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	if addr != "" {
		args = append([]string{"--server", addr}, args...)
	}
	code := run(context.Background(), args, &out, &errb, func(string) string { return "" })
	return result{out.String(), errb.String(), code}
}

// writeFiles writes name→content into a fresh directory and makes it the
// working directory, so diagnostics name files as the user typed them.
func writeFiles(t *testing.T, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
}

const fileHCL = `network "proj1" {
  admin  = false
  labels = { env = "dev" }
}

workload "db1" {
  network = "proj1"
  node    = "host1"
}
`

func applyErr(t *testing.T, code codes.Code, msg string, vs ...*sdnv1.Violation) error {
	t.Helper()
	st, err := status.New(code, msg).WithDetails(&sdnv1.ApplyError{Violations: vs})
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func TestRenderApplyViolations(t *testing.T) {
	writeFiles(t, map[string]string{"file.hcl": fileHCL})
	f := &fakeSDND{applyErr: applyErr(t, codes.InvalidArgument, "2 violations",
		&sdnv1.Violation{Kind: "network", Name: "proj1", Field: "labels", Message: "label env is reserved",
			Range: &sdnv1.SourceRange{File: "file.hcl", StartLine: 3, StartColumn: 3, EndLine: 3, EndColumn: 9}},
		&sdnv1.Violation{Kind: "workload", Name: "proj1/db1", Message: "node host1 is draining"},
	)}
	addr := serve(t, f)
	for _, cmd := range []string{"apply", "plan"} {
		r := sdnctl(t, addr, cmd, "-f", "file.hcl")
		if r.code != 1 {
			t.Errorf("%s: exit code %d, want 1; stderr:\n%s", cmd, r.code, r.stderr)
		}
		summary := map[string]string{
			"apply": "\nsdnctl: sdnd refused the apply: 2 problems (see above); nothing was applied\n",
			"plan":  "\nsdnctl: sdnd refused the plan: 2 problems (see above)\n",
		}[cmd]
		for _, want := range []string{
			"file.hcl:3,3-9: Invalid labels in network \"proj1\"; label env is reserved\n",
			"  labels = { env = \"dev\" }\n", // the source line under the diagnostic
			"  ^^^^^^\n",
			"node host1 is draining",
			summary,
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd, want, r.stderr)
			}
		}
		if r.stdout != "" {
			t.Errorf("%s: stdout = %q, want nothing", cmd, r.stdout)
		}
	}
}

func TestRenderApplyAndPlan(t *testing.T) {
	writeFiles(t, map[string]string{"file.hcl": fileHCL})
	f := &fakeSDND{applyResp: &sdnv1.ApplyResponse{Revision: 13, Changes: []*sdnv1.Change{
		{Op: opCreate, Kind: "network", Name: "proj1"},
		{Op: opDelete, Kind: "workload", Name: "proj1/old"},
	}}}
	addr := serve(t, f)

	r := sdnctl(t, addr, "plan", "-f", ".", "--prune")
	if r.code != 0 || r.stdout != "+ network proj1\n- workload proj1/old\n\nPlan: 1 to create, 0 to update, 1 to delete.\n" {
		t.Errorf("plan: code %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = sdnctl(t, addr, "apply", "-f", "file.hcl")
	if r.code != 0 || !strings.HasSuffix(r.stdout, "\nApplied at revision 13: 1 created, 0 updated, 1 deleted.\n") {
		t.Errorf("apply: code %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if len(f.applyReqs) != 2 {
		t.Fatalf("server saw %d Apply calls, want 2", len(f.applyReqs))
	}
	plan, apply := f.applyReqs[0], f.applyReqs[1]
	if !plan.DryRun || !plan.Prune || apply.DryRun || apply.Prune {
		t.Errorf("plan sent dry_run=%v prune=%v, apply sent dry_run=%v prune=%v; want true true false false",
			plan.DryRun, plan.Prune, apply.DryRun, apply.Prune)
	}
	if len(apply.Networks) != 1 || apply.Networks[0].Name != "proj1" || len(apply.Workloads) != 1 {
		t.Errorf("apply request does not carry the file's objects: %v", apply)
	}
}

func TestRenderServerError(t *testing.T) {
	writeFiles(t, map[string]string{"file.hcl": fileHCL})
	f := &fakeSDND{
		applyErr:  status.Error(codes.FailedPrecondition, "no raft leader; retry when a server is elected"),
		deleteErr: status.Error(codes.FailedPrecondition, `network "proj2" still has 3 workloads; delete them first`),
	}
	addr := serve(t, f)
	r := sdnctl(t, addr, "apply", "-f", "file.hcl")
	if r.code != 1 || r.stderr != "sdnctl: no raft leader; retry when a server is elected\n" {
		t.Errorf("apply: code %d, stderr %q", r.code, r.stderr)
	}
	r = sdnctl(t, addr, "delete", "network", "proj2")
	if r.code != 1 || r.stderr != "sdnctl: network \"proj2\" still has 3 workloads; delete them first\n" {
		t.Errorf("delete: code %d, stderr %q", r.code, r.stderr)
	}
}

func TestRenderWait(t *testing.T) {
	writeFiles(t, map[string]string{"file.hcl": fileHCL})
	resp := &sdnv1.ApplyResponse{Revision: 13, Changes: []*sdnv1.Change{{Op: opCreate, Kind: "network", Name: "proj1"}}}
	tests := []struct {
		name       string
		progress   []*sdnv1.WaitRealizedProgress
		waitErr    error
		waitCuts   int
		waits      int // WaitRealized calls expected; 0 means 1, -1 any
		code       int
		stdoutTail string
		stderr     string
	}{
		{
			name: "realized",
			progress: []*sdnv1.WaitRealizedProgress{
				{Realized: 1, Total: 3, Pending: []string{"host2", "host3"}},
				{Realized: 1, Total: 3, Pending: []string{"host2", "host3"}}, // repeated: printed once
				{Realized: 2, Total: 3, Pending: []string{"host3"}},
				{Realized: 3, Total: 3, Done: true},
			},
			stdoutTail: "revision 13 realized on all 3 hosts\n",
			stderr: "waiting for hosts to realize revision 13: 1/3 realized (pending: host2, host3)\n" +
				"waiting for hosts to realize revision 13: 2/3 realized (pending: host3)\n",
		},
		{
			name: "server gives up",
			progress: []*sdnv1.WaitRealizedProgress{
				{Realized: 2, Total: 3, Pending: []string{"host3"}},
				{Realized: 2, Total: 3, Pending: []string{"host3"}, Done: true},
			},
			code: 1,
			stderr: "waiting for hosts to realize revision 13: 2/3 realized (pending: host3)\n" +
				"sdnctl: timed out after 2s waiting for hosts to realize revision 13: 2/3 realized; pending: host3; see `sdnctl status`\n",
		},
		{
			name:     "deadline exceeded",
			progress: []*sdnv1.WaitRealizedProgress{{Realized: 0, Total: 1, Pending: []string{"host1"}}},
			waitErr:  status.Error(codes.DeadlineExceeded, "timeout"),
			code:     1,
			stderr: "waiting for hosts to realize revision 13: 0/1 realized (pending: host1)\n" +
				"sdnctl: timed out after 2s waiting for hosts to realize revision 13: 0/1 realized; pending: host1; see `sdnctl status`\n",
		},
		{
			name: "leader changes twice",
			progress: []*sdnv1.WaitRealizedProgress{
				{Realized: 1, Total: 3, Pending: []string{"host2", "host3"}},
				{Realized: 3, Total: 3, Done: true},
			},
			waitCuts:   2,
			waits:      3,
			stdoutTail: "revision 13 realized on all 3 hosts\n",
			stderr: "waiting for hosts to realize revision 13: 1/3 realized (pending: host2, host3)\n" +
				"the wait for revision 13 was cut off (this server stopped leading while waiting for hosts to realize the revision; ask the new leader); asking again\n",
		},
		{
			name:     "cut off until the timeout",
			progress: []*sdnv1.WaitRealizedProgress{{Realized: 1, Total: 3, Pending: []string{"host2", "host3"}}},
			waitCuts: 1000,
			waits:    -1,
			code:     1,
			stderr: "waiting for hosts to realize revision 13: 1/3 realized (pending: host2, host3)\n" +
				"the wait for revision 13 was cut off (this server stopped leading while waiting for hosts to realize the revision; ask the new leader); asking again\n" +
				"sdnctl: timed out after 2s waiting for hosts to realize revision 13: 1/3 realized; pending: host2, host3; see `sdnctl status`\n",
		},
		{
			name:       "no hosts",
			progress:   []*sdnv1.WaitRealizedProgress{{Total: 0, Done: true}},
			stdoutTail: "no hosts registered; nothing to wait for\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSDND{applyResp: resp, progress: tt.progress, waitErr: tt.waitErr, waitCuts: tt.waitCuts}
			r := sdnctl(t, serve(t, f), "apply", "-f", "file.hcl", "--wait", "--wait-timeout", "2s")
			if r.code != tt.code || r.stderr != tt.stderr || !strings.HasSuffix(r.stdout, tt.stdoutTail) {
				t.Errorf("code %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant stderr:\n%s",
					r.code, tt.code, r.stdout, r.stderr, tt.stderr)
			}
			waits := max(tt.waits, 1)
			if tt.waits < 0 {
				waits = len(f.waitReqs) // as many as fit in the timeout
			}
			if len(f.waitReqs) != waits || f.waitReqs[0].Revision != 13 || f.waitReqs[0].TimeoutMs != 2000 {
				t.Errorf("WaitRealized requests: %v; want %d for revision 13, the first with timeout_ms 2000", f.waitReqs, waits)
			}
			for _, req := range f.waitReqs[1:] {
				if req.Revision != 13 || req.TimeoutMs >= 2000 || req.TimeoutMs <= 0 {
					t.Errorf("WaitRealized asked again with %v; want revision 13 and the time left of 2s", req)
				}
			}
		})
	}
}

func TestRenderGet(t *testing.T) {
	f := &fakeSDND{listResp: &sdnv1.ListResponse{Revision: 5, Workloads: []*sdnv1.Workload{
		{Network: "proj1", Name: "db1", Node: "host1", Ip: "10.128.0.5", Mac: "0a:58:0a:80:00:05",
			Origin: &sdnv1.Origin{Kind: sdnv1.OriginKind_ORIGIN_KIND_HCL}},
	}, Nodes: []*sdnv1.Node{{Name: "host1"}}}}
	addr := serve(t, f)
	r := sdnctl(t, addr, "get", "workload", "--network", "proj1", "--node", "host1", "--stale")
	want := "NETWORK   NAME   NODE    IP           MAC                 LABELS   ORIGIN   STATUS\n" +
		"proj1     db1    host1   10.128.0.5   0a:58:0a:80:00:05   -        hcl      ready\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("get workload: code %d\n%s\nwant:\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}
	got := f.listReqs[0]
	if got.Kind != "workloads" || got.Network != "proj1" || got.Node != "host1" || !got.Stale {
		t.Errorf("ListRequest = %v", got)
	}

	r = sdnctl(t, addr, "get", "networks", "-o", "json")
	if r.code != 0 || r.stdout != "[]\n" {
		t.Errorf("get networks -o json with none: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = sdnctl(t, addr, "get", "workloads", "-o", "json")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "[\n  {\n    \"name\": \"db1\",\n    \"network\": \"proj1\",") {
		t.Errorf("get workloads -o json: code %d, stdout:\n%s", r.code, r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"get", "pods"}, `sdnctl: unknown kind "pods"; valid kinds: cluster, nodes, networks, workloads`},
		{[]string{"get"}, "sdnctl: get needs one kind"},
		{[]string{"get", "networks", "--network", "x"}, "sdnctl: --network filters workloads, policies and services, --node workloads and address groups"},
		{[]string{"get", "nodes", "-o", "yaml"}, `sdnctl: unknown output format "yaml"`},
		{[]string{"delete", "workload", "db1"}, "sdnctl: a workload is named network/name"},
		{[]string{"delete", "cluster", "x"}, `sdnctl: unknown kind "cluster"`},
		{[]string{"apply"}, `sdnctl: required flag(s) "file" not set`},
		{[]string{"apply", "-f", "x.hcl", "--wait-timeout", "1m"}, "sdnctl: --wait-timeout needs --wait"},
		{[]string{"status", "--bogus"}, "sdnctl: unknown flag: --bogus"},
		{[]string{"frobnicate"}, `sdnctl: unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		r := sdnctl(t, "127.0.0.1:1", tt.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, tt.want) {
			t.Errorf("sdnctl %v: code %d, stderr %q; want code 2 and %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
}

func TestUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now

	var out, errb bytes.Buffer
	env := func(k string) string {
		if k == "SDN_SERVER" {
			return addr
		}
		return ""
	}
	code := run(context.Background(), []string{"get", "nodes"}, &out, &errb, env)
	want := "sdnctl: cannot reach sdnd at " + addr + ": "
	if code != 1 || !strings.HasPrefix(errb.String(), want) ||
		!strings.HasSuffix(errb.String(), "; is `sdnd --dev` running? (set --server or SDN_SERVER)\n") {
		t.Errorf("code %d, stderr %q; want code 1 and %q...", code, errb.String(), want)
	}
}

func TestValidate(t *testing.T) {
	writeFiles(t, map[string]string{
		"a.hcl": "cluster {\n  cidr = \"10.128.0.0/14\"\n}\n" + fileHCL,
		"b.hcl": "network \"proj2\" {}\nnetwork \"proj3\" {}\n",
	})
	r := sdnctl(t, "", "validate", "-f", ".")
	if r.code != 0 || r.stdout != "2 files valid: 1 cluster, 3 networks, 1 workload\n" || r.stderr != "" {
		t.Errorf("validate: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	writeFiles(t, map[string]string{"bad.hcl": "network \"proj1\" {\n  prot = 1\n}\n"})
	r = sdnctl(t, "", "validate", "-f", "bad.hcl")
	if r.code != 1 || r.stdout != "" ||
		!strings.HasPrefix(r.stderr, "bad.hcl:2,3-7: ") ||
		!strings.HasSuffix(r.stderr, "\nsdnctl: 1 error in the files\n") {
		t.Errorf("validate bad.hcl: code %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestRenderStatusAndDelete(t *testing.T) {
	f := &fakeSDND{
		statusResp: &sdnv1.StatusResponse{Revision: 14, CompactedRevision: 3},
		deleteResp: &sdnv1.DeleteResponse{Revision: 15},
	}
	addr := serve(t, f)
	r := sdnctl(t, addr, "status")
	if r.code != 0 || r.stdout != "revision 14 (watch history from 3)\nNODE   STATE   REALIZED   LAG   LAST-REPORT   HEARTBEAT   ERROR\n" {
		t.Errorf("status: code %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = sdnctl(t, addr, "status", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"revision": "14"`) {
		t.Errorf("status -o json: code %d, stdout:\n%s", r.code, r.stdout)
	}
	r = sdnctl(t, addr, "delete", "workloads", "proj1/db1")
	if r.code != 0 || r.stdout != "deleted workload proj1/db1 (revision 15)\n" {
		t.Errorf("delete: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := f.deleteReqs[0]; got.Kind != "workload" || got.Name != "proj1/db1" {
		t.Errorf("DeleteRequest = %v", got)
	}
}
