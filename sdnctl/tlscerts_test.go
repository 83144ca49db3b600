package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/pki"
)

// checkCerts checks with pki that dir holds a CA and, for each of want
// (ROLE/NAME), a certificate naming it, signed by that CA, with its key.
func checkCerts(t *testing.T, dir string, want ...string) {
	t.Helper()
	files, err := pki.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range files {
		if f.Problem != "" {
			t.Errorf("%s: %s", f.Path, f.Problem)
		}
		if f.IsCA {
			got["ca"] = true
		} else {
			got[f.Identity.String()] = true
		}
	}
	for _, w := range append([]string{"ca"}, want...) {
		if !got[w] {
			t.Errorf("%s holds no valid certificate for %s", dir, w)
		}
	}
}

// TestTLSInitWithGlobalFlags: sdnctl's global flags are taken anywhere on
// the command line, after `tls init` too, and mean nothing to it.
func TestTLSInitWithGlobalFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	r := sdnctl(t, "", "tls", "init", "--dir", dir, "--servers", "s1=127.0.0.1", "--agents", "h1", "--clients", "admin",
		"--server", "127.0.0.1:1", "--timeout=5s", "--tls-ca", "/nonexistent/ca.crt")
	if r.code != 0 || !strings.Contains(r.stdout, "sdnctl --tls-ca "+dir+"/ca.crt --tls-cert "+dir+"/client-admin.crt") {
		t.Fatalf("tls init: %+v", r)
	}
	checkCerts(t, dir, "server/s1", "agent/h1", "client/admin")
	cert, err := pki.ReadCertificate(filepath.Join(dir, "server-s1.crt"))
	if err != nil || cert.VerifyHostname("127.0.0.1") != nil {
		t.Errorf("server-s1.crt is not valid for 127.0.0.1: %v", err)
	}

	for _, args := range [][]string{
		{"--server", "10.0.0.1:7420", "--timeout=5s", "tls", "list", "--dir", dir},
		{"tls", "list", "--dir", dir, "--server", "10.0.0.1:7420", "--tls-cert", "x.crt"},
		{"tls", "--server=10.0.0.1:7420", "list", "--dir", dir},
	} {
		if r := sdnctl(t, "", args...); r.code != 0 || !strings.Contains(r.stdout, "client-admin.crt") {
			t.Errorf("%q: %+v", args, r)
		}
	}
	r = sdnctl(t, "", "tls", "issue", "--dir", dir, "--role", "client", "--name", "bob", "--server", "10.0.0.1:7420")
	if r.code != 0 {
		t.Errorf("tls issue with --server after it: %+v", r)
	}
	checkCerts(t, dir, "client/bob")
}

// TestTLSUsageErrors: a mistake on the command line exits 2, says what is
// wrong and where the help is, and writes nothing.
func TestTLSUsageErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tls", "init", "--servers", "s1"}, "sdnctl: --dir is required: the directory to create the CA in\nRun 'sdnctl tls init --help' for usage.\n"},
		{[]string{"tls", "init", "--dir", dir, "--bogus"}, "sdnctl: unknown flag: --bogus\n"},
		{[]string{"tls", "init", "--dir", dir, "-o", "json"}, "sdnctl: unknown shorthand flag: 'o' in -o\n"},
		{[]string{"tls", "init", "--dir", dir, "stray"}, `sdnctl: unexpected arguments ["stray"]; every value is given with a flag`},
		{[]string{"tls", "init", "--dir", dir, "--servers", "s1=10.0.0.1", "--agents", "H1"}, `sdnctl: agent name "H1": it contains 'H'`},
		{[]string{"tls", "init", "--dir", dir, "--servers", "s1=0.0.0.0"}, `sdnctl: server/s1: host "0.0.0.0" is the unspecified address`},
		{[]string{"tls", "init", "--dir", dir, "--clients", "admin=10.0.0.1"}, `sdnctl: "admin=10.0.0.1": a client certificate names a user, not hosts; give NAME only`},
		{[]string{"tls", "init", "--dir", dir, "--days", "0"}, "sdnctl: --days 0: a certificate must be valid for at least one day"},
		{[]string{"tls", "init", "--dir", dir, "--days", "x"}, `sdnctl: invalid argument "x" for "--days" flag`},
		{[]string{"tls", "issue", "--dir", dir}, "sdnctl: --role, --name required\nRun 'sdnctl tls issue --help' for usage.\n"},
		{[]string{"tls", "issue", "--dir", dir, "--name", "x"}, "sdnctl: --role required"},
		{[]string{"tls", "issue", "--dir", dir, "--role", "root", "--name", "x"}, `sdnctl: unknown role "root"`},
		{[]string{"tls", "issue", "--dir", dir, "--role", "client", "--name", "bob", "--host", "1.2.3.4"}, "sdnctl: client/bob: a client certificate names a user, not hosts"},
		{[]string{"tls", "issue", "--dir", dir, "--role", "agent", "--name", "h1", "--days", "-1"}, "sdnctl: --days -1: a certificate must be valid for at least one day"},
		{[]string{"tls", "list"}, "sdnctl: --dir is required\nRun 'sdnctl tls list --help' for usage.\n"},
		{[]string{"tls", "list", "--dir", dir, "x"}, "sdnctl: unexpected arguments"},
		{[]string{"tls"}, "sdnctl: tls needs a subcommand: init, issue, list, revoke or revoked\nRun 'sdnctl tls --help' for usage.\n"},
		{[]string{"tls", "frobnicate"}, `sdnctl: unknown command "frobnicate" for "sdnctl tls"`},
		{[]string{"tls", "help", "frobnicate"}, `sdnctl: unknown command "frobnicate" for "sdnctl tls"`},
	} {
		r := sdnctl(t, "", tc.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("a refused init created the directory")
	}
}

// TestTLSHelp: help goes to stdout, exit 0, and tells what the files are.
func TestTLSHelp(t *testing.T) {
	for _, args := range [][]string{{"tls", "help"}, {"tls", "--help"}, {"help", "tls"}} {
		r := sdnctl(t, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "keep it\n                   where you run \"issue\"") ||
			!strings.Contains(r.stdout, "sdnctl tls issue --dir tls --role agent --name h3") || !strings.Contains(r.stdout, "revoked") {
			t.Errorf("%q: %+v", args, r)
		}
	}
	for _, args := range [][]string{{"tls", "issue", "-h"}, {"tls", "help", "issue"}} {
		r := sdnctl(t, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "--replace") || !strings.Contains(r.stdout, "--days int") ||
			!strings.Contains(r.stdout, "(default 365)") || !strings.Contains(r.stdout, "Global Flags:") {
			t.Errorf("%q: %+v", args, r)
		}
	}
	if r := sdnctl(t, "", "tls", "init", "--help"); !strings.Contains(r.stdout, "--clients strings") || !strings.Contains(r.stdout, "(default admin)") {
		t.Errorf("tls init --help: %+v", r)
	}
}

// TestTLSInitOutput: init lists what it wrote and the flags each process
// runs with.
func TestTLSInitOutput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	r := sdnctl(t, "", "tls", "init", "--dir", dir,
		"--servers", "s1=10.0.0.1:7421,s1=s1.example.com", "--servers", "s2=10.0.0.2",
		"--agents", "h1,h2=10.0.1.2")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("init: %+v", r)
	}
	for _, f := range []string{"ca.crt", "ca.key", "server-s1.crt", "server-s1.key", "server-s2.key", "agent-h1.crt", "agent-h2.key", "client-admin.crt", "client-admin.key"} {
		if !strings.Contains(r.stdout, filepath.Join(dir, f)+" ") {
			t.Errorf("init did not mention %s:\n%s", f, r.stdout)
		}
	}
	for _, want := range []string{
		dir + "/ca.crt            the cluster CA certificate, valid 10 years: copy it to every server, agent and sdnctl user\n",
		dir + "/server-s1.crt     server s1, for s1 10.0.0.1 s1.example.com localhost 127.0.0.1 ::1, valid until ",
		dir + "/agent-h1.crt      agent h1, valid until ",
		dir + "/agent-h1.key      its private key (0600)\n",
		"\nCopy ca.crt and each host's own .crt and .key to that host (keys readable by root only), then run:\n",
		"  on server s1:  sdnd --server --node-name s1 --tls-ca " + dir + "/ca.crt --tls-cert " + dir + "/server-s1.crt --tls-key " + dir + "/server-s1.key ...\n",
		"  on host h2:    sdnd --agent --node-name h2 ",
		"  as admin:      sdnctl --tls-ca " + dir + "/ca.crt --tls-cert " + dir + "/client-admin.crt --tls-key " + dir + "/client-admin.key --server HOST:PORT get nodes\n",
		"(paths as seen here; use where you copy them to)\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("init output lacks %q:\n%s", want, r.stdout)
		}
	}
	checkCerts(t, dir, "server/s1", "server/s2", "agent/h1", "agent/h2", "client/admin")

	// A second init refuses (a failure, not a usage error) and says what
	// to do.
	r = sdnctl(t, "", "tls", "init", "--dir", dir)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "sdnctl: a CA already exists in "+dir) || !strings.Contains(r.stderr, "`tls issue --dir") {
		t.Errorf("second init: %+v", r)
	}

	// --clients="" issues no client; with nothing issued, init says how to.
	other := filepath.Join(t.TempDir(), "tls")
	r = sdnctl(t, "", "tls", "init", "--dir", other, "--clients=")
	if r.code != 0 || !strings.HasSuffix(r.stdout, "\nNo certificates yet: add them with `sdnctl tls issue --dir DIR --role ROLE --name NAME`.\n") {
		t.Errorf(`init --clients="": %+v`, r)
	}
	if _, err := os.Stat(filepath.Join(other, "client-admin.crt")); err == nil {
		t.Error(`--clients="" still issued admin`)
	}
}

// TestTLSInitFailsPartway: when issuing fails after the CA was written,
// init lists what it wrote and says so.
func TestTLSInitFailsPartway(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	r := sdnctl(t, "", "tls", "init", "--dir", dir, "--days", "4000")
	if r.code != 1 || !strings.Contains(r.stdout, dir+"/ca.key") || !strings.Contains(r.stderr, "after the CA itself expires") ||
		!strings.HasSuffix(r.stderr, "(the CA and the files listed above were written)\n") {
		t.Errorf("init with too long a validity: %+v", r)
	}
}

func TestTLSIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if r := sdnctl(t, "", "tls", "init", "--dir", dir, "--clients="); r.code != 0 {
		t.Fatal(r)
	}
	r := sdnctl(t, "", "tls", "issue", "--dir", dir, "--role", "server", "--name", "s3", "--host", "10.0.0.3,s3.example.com")
	if r.code != 0 || !strings.HasPrefix(r.stdout, dir+"/server-s3.crt  server s3, for s3 10.0.0.3 s3.example.com localhost 127.0.0.1 ::1, valid until ") ||
		!strings.Contains(r.stdout, "\n"+dir+"/server-s3.key  its private key (0600)\n") ||
		!strings.Contains(r.stdout, "  on server s3:  sdnd --server --node-name s3 --tls-ca "+dir+"/ca.crt ") {
		t.Fatalf("issue: %+v", r)
	}
	checkCerts(t, dir, "server/s3")
	before, _ := os.ReadFile(filepath.Join(dir, "server-s3.crt"))

	r = sdnctl(t, "", "tls", "issue", "--dir", dir, "--role", "server", "--name", "s3")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "sdnctl: "+dir+"/server-s3.crt already exists") || !strings.Contains(r.stderr, "--replace") {
		t.Errorf("issue over an existing pair: %+v", r)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "server-s3.crt")); string(after) != string(before) {
		t.Error("a refused issue changed the certificate")
	}
	if r = sdnctl(t, "", "tls", "issue", "--dir", dir, "--role", "server", "--name", "s3", "--replace"); r.code != 0 {
		t.Errorf("issue --replace: %+v", r)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "server-s3.crt")); string(after) == string(before) {
		t.Error("issue --replace did not replace the certificate")
	}
	checkCerts(t, dir, "server/s3")

	r = sdnctl(t, "", "tls", "issue", "--dir", filepath.Join(dir, "nope"), "--role", "agent", "--name", "h1")
	if r.code != 1 || !strings.Contains(r.stderr, "run `tls init --dir ") {
		t.Errorf("issue without a CA: %+v", r)
	}
}

func TestTLSList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if r := sdnctl(t, "", "tls", "init", "--dir", dir, "--servers", "s1=10.0.0.1", "--agents", "h1"); r.code != 0 {
		t.Fatal(r)
	}
	if r := sdnctl(t, "", "tls", "issue", "--dir", dir, "--role", "agent", "--name", "h2", "--days", "10"); r.code != 0 {
		t.Fatal(r)
	}
	r := sdnctl(t, "", "tls", "list", "--dir", dir)
	for _, want := range []string{
		"FILE              ROLE    NAME                     HOSTS                                EXPIRES     STATUS\n",
		"agent-h1.crt      agent   h1                       -                                    ",
		"  ok, expires in 9 days: renew with issue --replace\n",
		"ca.crt            ca      sdn cluster CA ",
		"server-s1.crt     server  s1                       s1,localhost,10.0.0.1,127.0.0.1,::1  ",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("list lacks %q: %+v", want, r)
		}
	}

	if err := os.Chmod(filepath.Join(dir, "agent-h1.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = sdnctl(t, "", "tls", "list", "--dir", dir)
	if r.code != 1 || !strings.Contains(r.stdout, "key readable by others (-rw-r--r--); chmod 600\n") ||
		r.stderr != "sdnctl: 1 of 5 certificates have problems (STATUS column)\n" {
		t.Errorf("list with a problem: %+v", r)
	}

	r = sdnctl(t, "", "tls", "list", "--dir", t.TempDir())
	if r.code != 1 || !strings.HasPrefix(r.stderr, "sdnctl: no certificates (*.crt) in ") {
		t.Errorf("list of an empty directory: %+v", r)
	}
}
