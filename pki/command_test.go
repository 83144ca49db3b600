package pki

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runCommand(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Command("sdnctl tls", args, &o, &e)
	return code, o.String(), e.String()
}

func TestCommandInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	code, out, errOut := runCommand("init", "--dir", dir,
		"--servers", "s1=10.0.0.1:7421,s1=s1.example.com", "--servers", "s2=10.0.0.2",
		"--agents", "h1,h2=10.0.1.2")
	if code != 0 {
		t.Fatalf("init: exit %d\n%s", code, errOut)
	}
	for _, f := range []string{"ca.crt", "ca.key", "server-s1.crt", "server-s1.key", "server-s2.key", "agent-h1.crt", "agent-h2.key", "client-admin.crt", "client-admin.key"} {
		if !exists(filepath.Join(dir, f)) {
			t.Errorf("init did not write %s", f)
		}
		if !strings.Contains(out, filepath.Join(dir, f)) {
			t.Errorf("init did not mention %s:\n%s", f, out)
		}
	}
	for _, want := range []string{
		"sdnd --server --node-name s1 --tls-ca " + filepath.Join(dir, "ca.crt") + " --tls-cert " + filepath.Join(dir, "server-s1.crt") + " --tls-key " + filepath.Join(dir, "server-s1.key"),
		"sdnd --agent --node-name h2 ",
		"sdnctl --tls-ca ",
		"s1 10.0.0.1 s1.example.com localhost 127.0.0.1 ::1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}
	if got := readCert(t, filepath.Join(dir, "server-s2.crt")).DNSNames; strings.Join(got, ",") != "s2,localhost" {
		t.Errorf("server-s2 DNS names %v", got)
	}

	// A second init refuses and says what to do.
	code, _, errOut = runCommand("init", "--dir", dir)
	if code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second init: exit %d: %s", code, errOut)
	}

	code, out, errOut = runCommand("list", "--dir", dir)
	if code != 0 || !strings.Contains(out, "server-s1.crt") || !strings.Contains(out, "agent   h1") {
		t.Errorf("list: exit %d\n%s%s", code, out, errOut)
	}
}

func TestCommandInitChecksEverythingFirst(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	for _, args := range [][]string{
		{"init", "--dir", dir, "--servers", "s1=10.0.0.1", "--agents", "H1"},
		{"init", "--dir", dir, "--servers", "s1=0.0.0.0"},
		{"init", "--dir", dir, "--clients", "admin=10.0.0.1"},
		{"init", "--dir", dir, "--days", "0"},
		{"init", "--servers", "s1"},
		{"init", "--dir", dir, "stray"},
		{"init", "--bogus"},
	} {
		code, _, errOut := runCommand(args...)
		if code != 2 || !strings.Contains(errOut, "sdnctl tls init: ") {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", args, code, errOut)
		}
	}
	if exists(dir) {
		t.Error("a refused init created the directory")
	}
}

func TestCommandIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if code, _, errOut := runCommand("init", "--dir", dir, "--clients="); code != 0 {
		t.Fatal(errOut)
	}
	if exists(filepath.Join(dir, "client-admin.crt")) {
		t.Error(`--clients="" still issued admin`)
	}
	code, out, errOut := runCommand("issue", "--dir", dir, "--role", "server", "--name", "s3", "--host", "10.0.0.3,s3.example.com")
	if code != 0 || !strings.Contains(out, "server-s3.crt") || !strings.Contains(out, "sdnd --server --node-name s3") {
		t.Fatalf("issue: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCommand("issue", "--dir", dir, "--role", "server", "--name", "s3")
	if code != 1 || !strings.Contains(errOut, "--replace") {
		t.Errorf("issue over an existing pair: exit %d: %s", code, errOut)
	}
	if code, _, errOut = runCommand("issue", "--dir", dir, "--role", "server", "--name", "s3", "--replace"); code != 0 {
		t.Errorf("issue --replace: exit %d: %s", code, errOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"issue", "--dir", dir, "--name", "x"}, 2, "--role required"},
		{[]string{"issue", "--dir", dir, "--role", "root", "--name", "x"}, 2, "unknown role"},
		{[]string{"issue", "--dir", dir, "--role", "client", "--name", "bob", "--host", "1.2.3.4"}, 2, "names a user"},
		{[]string{"issue", "--dir", filepath.Join(dir, "nope"), "--role", "agent", "--name", "h1"}, 1, "tls init"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{nil, 2, "Usage: sdnctl tls COMMAND"},
	} {
		code, _, errOut := runCommand(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	code, out, _ = runCommand("help")
	if code != 0 || !strings.Contains(out, "ca.key") || !strings.Contains(out, "keep it") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCommand("issue", "-h"); code != 0 || !strings.Contains(errOut, "--replace") && !strings.Contains(errOut, "-replace") {
		t.Errorf("issue -h: exit %d\n%s", code, errOut)
	}
}

func TestCommandListFindsProblems(t *testing.T) {
	dir := testCluster(t)
	if _, err := issue(dir, request{id: Identity{RoleClient, "old"}, validity: DefaultValidity, now: mustTime(t, "2001-01-01T00:00:00Z")}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCommand("list", "--dir", dir)
	if code != 1 || !strings.Contains(out, "EXPIRED") || !strings.Contains(errOut, "1 of 5 certificates have problems") {
		t.Errorf("list with an expired certificate: exit %d\n%s%s", code, out, errOut)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
