package pki

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	res, err := Init(dir, InitOptions{Members: []Member{
		{Identity{RoleServer, "s1"}, []string{"10.0.0.1:7421", "s1.example.com"}},
		{Identity{RoleServer, "s2"}, []string{"10.0.0.2"}},
		{Identity: Identity{RoleAgent, "h1"}},
		{Identity{RoleAgent, "h2"}, []string{"10.0.1.2"}},
		{Identity: Identity{RoleClient, "admin"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.CA != CAPaths(dir) {
		t.Errorf("CA %v, want %v", res.CA, CAPaths(dir))
	}
	var names []string
	for _, is := range res.Issued {
		names = append(names, is.String())
		if is.Paths != PathsFor(dir, is.Role, is.Name) {
			t.Errorf("%s: paths %v", is.Identity, is.Paths)
		}
		if left := time.Until(is.NotAfter); left < DefaultValidity-time.Hour || left > DefaultValidity {
			t.Errorf("%s valid for %s, want DefaultValidity", is.Identity, left)
		}
	}
	if want := "server/s1 server/s2 agent/h1 agent/h2 client/admin"; strings.Join(names, " ") != want {
		t.Errorf("issued %v, want %s in that order", names, want)
	}
	for _, f := range []string{"ca.crt", "ca.key", "server-s1.crt", "server-s1.key", "server-s2.key", "agent-h1.crt", "agent-h2.key", "client-admin.crt", "client-admin.key"} {
		if !exists(filepath.Join(dir, f)) {
			t.Errorf("Init did not write %s", f)
		}
	}
	if got := res.Issued[0].Hosts; strings.Join(got, " ") != "s1 10.0.0.1 s1.example.com localhost 127.0.0.1 ::1" {
		t.Errorf("server s1's hosts %v", got)
	}
	if got := readCert(t, filepath.Join(dir, "server-s2.crt")).DNSNames; strings.Join(got, ",") != "s2,localhost" {
		t.Errorf("server-s2 DNS names %v", got)
	}

	// A second Init refuses and writes nothing.
	res, err = Init(dir, InitOptions{Members: []Member{{Identity: Identity{RoleClient, "bob"}}}})
	if err == nil || !strings.Contains(err.Error(), "already exists") || !res.CA.IsZero() || exists(filepath.Join(dir, "client-bob.crt")) {
		t.Errorf("second Init: %+v, %v", res, err)
	}
}

func TestInitChecksEverythingFirst(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	s1 := Member{Identity{RoleServer, "s1"}, []string{"10.0.0.1"}}
	for _, tc := range []struct {
		o    InitOptions
		want string
	}{
		{InitOptions{Members: []Member{s1, {Identity: Identity{RoleAgent, "H1"}}}}, `agent name "H1"`},
		{InitOptions{Members: []Member{{Identity{RoleServer, "s1"}, []string{"0.0.0.0"}}}}, "unspecified address"},
		{InitOptions{Members: []Member{{Identity{RoleClient, "admin"}, []string{"10.0.0.1"}}}}, "names a user, not hosts"},
		{InitOptions{Members: []Member{s1}, Validity: -time.Hour}, "not positive"},
	} {
		if err := tc.o.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check %+v: %v, want %q", tc.o, err, tc.want)
		}
		if _, err := Init(dir, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Init %+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	if exists(dir) {
		t.Error("a refused Init created the directory")
	}
}

// TestInitFailsPartway: an error after the CA is written says what was.
func TestInitFailsPartway(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	// Long enough to outlive the CA: the first member's issue fails.
	res, err := Init(dir, InitOptions{Members: []Member{{Identity: Identity{RoleClient, "admin"}}}, Validity: 11 * 365 * 24 * time.Hour})
	if err == nil || !strings.Contains(err.Error(), "after the CA itself expires") || res.CA != CAPaths(dir) || len(res.Issued) != 0 {
		t.Errorf("Init with too long a validity: %+v, %v", res, err)
	}
}

func TestList(t *testing.T) {
	dir := testCluster(t)
	if _, err := issue(dir, request{id: Identity{RoleClient, "old"}, validity: DefaultValidity, now: mustTime(t, "2001-01-01T00:00:00Z")}); err != nil {
		t.Fatal(err)
	}
	mustIssue(t, dir, RoleAgent, "open")
	if err := os.Chmod(filepath.Join(dir, "agent-open.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustIssue(t, dir, RoleAgent, "nokey")
	os.Remove(filepath.Join(dir, "agent-nokey.key"))
	os.WriteFile(filepath.Join(dir, "junk.crt"), []byte("not PEM"), 0o644)
	other := testCluster(t)
	data, _ := os.ReadFile(filepath.Join(other, "agent-h1.crt"))
	os.WriteFile(filepath.Join(dir, "agent-foreign.crt"), data, 0o644)

	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		got[filepath.Base(f.Path)] = f.Problem
	}
	for file, want := range map[string]string{
		"ca.crt":            "",
		"server-s1.crt":     "",
		"agent-h1.crt":      "",
		"client-admin.crt":  "",
		"client-old.crt":    "EXPIRED",
		"agent-open.crt":    "key readable by others (-rw-r--r--); chmod 600",
		"agent-nokey.crt":   "no key file agent-nokey.key",
		"agent-foreign.crt": "not signed by ca.crt",
		"junk.crt":          "holds no PEM certificate",
	} {
		if p, ok := got[file]; !ok || !strings.Contains(p, want) || (want == "") != (p == "") {
			t.Errorf("%s: problem %q, want %q", file, p, want)
		}
	}
	if !slices.IsSortedFunc(files, func(a, b CertFile) int { return strings.Compare(a.Path, b.Path) }) {
		t.Error("List is not in file name order")
	}
	for _, f := range files {
		switch filepath.Base(f.Path) {
		case "ca.crt":
			if !f.IsCA || f.Identity != (Identity{}) {
				t.Errorf("ca.crt: %+v", f)
			}
		case "server-s1.crt":
			if f.IsCA || f.Identity != (Identity{RoleServer, "s1"}) || strings.Join(f.Hosts, ",") != "s1,localhost,127.0.0.1,::1" {
				t.Errorf("server-s1.crt: %+v", f)
			}
		}
	}

	if _, err := List(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no certificates (*.crt) in ") {
		t.Errorf("List of an empty directory: %v", err)
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
