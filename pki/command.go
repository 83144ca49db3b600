package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Command runs the `tls` command of sdnctl and sdnd: prog is how the user
// invoked it ("sdnctl tls" or "sdnd tls"), args what follows. It returns
// the exit code: 0 done, 1 failed, 2 bad usage.
//
//	PROG init  --dir D [--servers NAME[=HOST],...] [--agents NAME[=HOST],...] [--clients NAME,...] [--days N]
//	PROG issue --dir D --role server|agent|client --name NAME [--host HOST]... [--days N] [--replace]
//	PROG list  --dir D
func Command(prog string, args []string, stdout, stderr io.Writer) int {
	c := &command{prog: prog, stdout: stdout, stderr: stderr, now: time.Now}
	return c.run(args)
}

type command struct {
	prog           string
	stdout, stderr io.Writer
	now            func() time.Time
}

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ error }

func (c *command) run(args []string) int {
	if len(args) == 0 {
		c.usage(c.stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "init":
		err = c.init(args[1:])
	case "issue":
		err = c.issue(args[1:])
	case "list":
		err = c.list(args[1:])
	case "help", "-h", "-help", "--help":
		c.usage(c.stdout)
		return 0
	default:
		fmt.Fprintf(c.stderr, "%s: unknown command %q\n\n", c.prog, args[0])
		c.usage(c.stderr)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "%s %s: %v (see %s %s -h)\n", c.prog, args[0], err, c.prog, args[0])
		return 2
	default:
		fmt.Fprintf(c.stderr, "%s %s: %v\n", c.prog, args[0], err)
		return 1
	}
}

const filesHelp = `Files, all in --dir:
  ca.crt           the cluster CA certificate: every server, agent and sdnctl user
                   trusts what it signed (--tls-ca); copy it to all of them
  ca.key           the CA's private key (0600): signs new certificates; keep it
                   where you run "issue", not on cluster hosts
  server-NAME.crt  server NAME's certificate and key (--tls-cert, --tls-key of
  server-NAME.key  sdnd --server --node-name NAME): API, raft, leader forwarding
  agent-NAME.crt   host NAME's agent certificate and key (sdnd --agent
  agent-NAME.key   --node-name NAME)
  client-NAME.crt  user NAME's certificate and key for sdnctl
  client-NAME.key
Copy ca.crt and each host's own pair to that host, nothing else.
`

func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, `Usage: %[1]s COMMAND [flags]

Create the certificates for mutual TLS between sdn's servers, agents and
sdnctl: one CA per cluster, one certificate per server, agent host and user.

Commands:
  init    create the cluster CA and the certificates listed, at once
  issue   create one more certificate (a new host or user), or renew one with --replace
  list    show the certificates in a directory: role, name, hosts, expiry, problems

Examples:
  %[1]s init --dir tls --servers s1=10.0.0.1,s2=10.0.0.2,s3=10.0.0.3 --agents h1,h2 --clients admin
  %[1]s issue --dir tls --role agent --name h3
  %[1]s issue --dir tls --role server --name s1 --host 10.0.0.1 --host s1.example.com --replace

%[2]s`, c.prog, filesHelp)
}

// newFlags returns a flag set for a subcommand that writes its usage (the
// synopsis, the flags, then more) to stderr.
func (c *command) newFlags(name, synopsis, more string) *flag.FlagSet {
	fs := flag.NewFlagSet(c.prog+" "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: %s %s %s\n\nFlags:\n", c.prog, name, synopsis)
		fs.PrintDefaults()
		if more != "" {
			fmt.Fprintf(c.stderr, "\n%s", more)
		}
	}
	return fs
}

// parse parses args into fs and rejects positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q; every value is given with a flag", fs.Args())}
	}
	return nil
}

// listFlag collects a repeatable flag whose values may be comma lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// member is one certificate to issue: a role, a name and its hosts.
type member struct {
	id    Identity
	hosts []string
}

// members turns NAME or NAME=HOST items into members of role, in the order
// names first appear; a name repeated with another host gains that host.
func members(role Role, items []string, hostsAllowed bool) ([]member, error) {
	var out []member
	for _, it := range items {
		name, host, hasHost := strings.Cut(it, "=")
		name = strings.TrimSpace(name)
		if hasHost && !hostsAllowed {
			return nil, usageError{fmt.Errorf("%q: a %s certificate names a user, not hosts; give NAME only", it, role)}
		}
		i := slices.IndexFunc(out, func(m member) bool { return m.id.Name == name })
		if i < 0 {
			out = append(out, member{id: Identity{role, name}})
			i = len(out) - 1
		}
		if hasHost {
			out[i].hosts = append(out[i].hosts, strings.TrimSpace(host))
		}
	}
	return out, nil
}

func validity(days int) (time.Duration, error) {
	if days < 1 {
		return 0, usageError{fmt.Errorf("--days %d: a certificate must be valid for at least one day", days)}
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

func (c *command) init(args []string) error {
	var servers, agents listFlag
	clients := listFlag{"admin"}
	clientsSet := false
	fs := c.newFlags("init", "--dir DIR [--servers NAME[=HOST],...] [--agents NAME[=HOST],...] [--clients NAME,...] [--days N]",
		`Creates ca.crt and ca.key in DIR (made 0700 if new), then a certificate and
key for each server, agent and client listed. It refuses to touch a DIR that
already holds a CA: add certificates to it with "issue".

A server's certificate is valid for its name, every HOST given for it, and
localhost, 127.0.0.1 and ::1. Give the addresses agents, sdnctl and the other
servers dial (API and raft), e.g. --servers s1=10.0.0.1,s1=s1.example.com.

`+filesHelp)
	dir := fs.String("dir", "", "directory for the CA and the certificates (required)")
	fs.Var(&servers, "servers", "servers to issue certificates for: NAME (the node name) or NAME=HOST; repeat NAME=HOST for more hosts (repeatable, comma-separated)")
	fs.Var(&agents, "agents", "agent hosts to issue certificates for: NAME (the node name), or NAME=HOST if the agent also serves TLS (repeatable, comma-separated)")
	fs.Func("clients", "sdnctl users to issue certificates for, by name (repeatable, comma-separated; \"\" for none) (default admin)", func(s string) error {
		if !clientsSet {
			clients, clientsSet = nil, true
		}
		return clients.Set(s)
	})
	days := fs.Int("days", 365, "days the server, agent and client certificates are valid (the CA: 10 years)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{errors.New("--dir is required: the directory to create the CA in")}
	}
	valid, err := validity(*days)
	if err != nil {
		return err
	}
	var all []member
	for _, g := range []struct {
		role  Role
		items []string
	}{{RoleServer, servers}, {RoleAgent, agents}, {RoleClient, clients}} {
		ms, err := members(g.role, g.items, g.role != RoleClient)
		if err != nil {
			return err
		}
		all = append(all, ms...)
	}
	// Check everything before creating anything, so a typo leaves no
	// half-made directory behind.
	for _, m := range all {
		if err := m.id.Validate(); err != nil {
			return usageError{err}
		}
		if _, err := sansFor(m.id, m.hosts); err != nil {
			return usageError{err}
		}
	}
	if err := InitCA(*dir); err != nil {
		return err
	}
	ca := CAPaths(*dir)
	w := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "%s\tthe cluster CA certificate, valid 10 years: copy it to every server, agent and sdnctl user\n", ca.Cert)
	fmt.Fprintf(w, "%s\tthe CA's private key: keep it here to issue certificates, not on cluster hosts\n", ca.Key)
	var issued []Issued
	for _, m := range all {
		is, err := issue(*dir, request{id: m.id, hosts: m.hosts, validity: valid, now: c.now()})
		if err != nil {
			w.Flush()
			return fmt.Errorf("%w (the CA and the files listed above were written)", err)
		}
		issued = append(issued, is)
		c.describe(w, is)
	}
	w.Flush()
	c.next(issued)
	return nil
}

func (c *command) issue(args []string) error {
	var hosts listFlag
	fs := c.newFlags("issue", "--dir DIR --role server|agent|client --name NAME [--host HOST]... [--days N] [--replace]",
		`Creates ROLE-NAME.crt and ROLE-NAME.key in DIR, signed by the CA there
(ca.crt, ca.key). With --replace it renews an existing pair; processes using
it load the new one at their next handshake, without a restart.

A server certificate is valid for NAME, every --host and localhost, 127.0.0.1
and ::1; an agent certificate names hosts only if --host is given; a client
certificate names none.

`+filesHelp)
	dir := fs.String("dir", "", "directory holding the CA (required)")
	roleName := fs.String("role", "", "server (an sdnd server), agent (an sdnd agent host) or client (an sdnctl user) (required)")
	name := fs.String("name", "", "the server's or agent's node name, or the user's name (required)")
	fs.Var(&hosts, "host", "an address or DNS name the holder is dialed at; a port is ignored (repeatable, comma-separated)")
	days := fs.Int("days", 365, "days the certificate is valid")
	replace := fs.Bool("replace", false, "replace an existing certificate and key of this role and name (renewal)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ v, n string }{{*dir, "--dir"}, {*roleName, "--role"}, {*name, "--name"}} {
		if f.v == "" {
			missing = append(missing, f.n)
		}
	}
	if len(missing) > 0 {
		return usageError{fmt.Errorf("%s required", strings.Join(missing, ", "))}
	}
	role, err := ParseRole(*roleName)
	if err != nil {
		return usageError{err}
	}
	valid, err := validity(*days)
	if err != nil {
		return err
	}
	r := request{id: Identity{role, *name}, hosts: hosts, validity: valid, now: c.now(), replace: *replace}
	if err := r.id.Validate(); err != nil {
		return usageError{err}
	}
	if _, err := sansFor(r.id, r.hosts); err != nil {
		return usageError{err}
	}
	is, err := issue(*dir, r)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	c.describe(w, is)
	w.Flush()
	c.next([]Issued{is})
	return nil
}

// describe prints one line per written pair.
func (c *command) describe(w io.Writer, is Issued) {
	what := string(is.Role) + " " + is.Name
	if len(is.Hosts) > 0 {
		what += ", for " + strings.Join(is.Hosts, " ")
	}
	fmt.Fprintf(w, "%s\t%s, valid until %s\n", is.Cert, what, is.NotAfter.Format(time.DateOnly))
	fmt.Fprintf(w, "%s\tits private key (0600)\n", is.Key)
}

// next prints what to do with the files: where to copy them and the flags
// each process runs with.
func (c *command) next(issued []Issued) {
	if len(issued) == 0 {
		fmt.Fprintf(c.stdout, "\nNo certificates yet: add them with `%s issue --dir DIR --role ROLE --name NAME`.\n", c.prog)
		return
	}
	fmt.Fprintf(c.stdout, "\nCopy ca.crt and each host's own .crt and .key to that host (keys readable by root only), then run:\n")
	w := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	for _, is := range issued {
		flags := fmt.Sprintf("--%s %s --%s %s --%s %s", FlagCA, is.CA, FlagCert, is.Cert, FlagKey, is.Key)
		switch is.Role {
		case RoleServer:
			fmt.Fprintf(w, "  on server %s:\tsdnd --server --node-name %s %s ...\n", is.Name, is.Name, flags)
		case RoleAgent:
			fmt.Fprintf(w, "  on host %s:\tsdnd --agent --node-name %s %s ...\n", is.Name, is.Name, flags)
		case RoleClient:
			fmt.Fprintf(w, "  as %s:\tsdnctl %s --server HOST:PORT get nodes\n", is.Name, flags)
		}
	}
	w.Flush()
	fmt.Fprintf(c.stdout, "(paths as seen here; use where you copy them to)\n")
}

func (c *command) list(args []string) error {
	fs := c.newFlags("list", "--dir DIR", "Shows every certificate in DIR and what is wrong with it, if anything.\n")
	dir := fs.String("dir", "", "directory holding the CA and the certificates (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{errors.New("--dir is required")}
	}
	files, err := filepath.Glob(filepath.Join(*dir, "*.crt"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no certificates (*.crt) in %s", *dir)
	}
	caFile := CAPaths(*dir).CA
	pool, poolErr := loadPool(caFile)
	now := c.now()
	w := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "FILE\tROLE\tNAME\tHOSTS\tEXPIRES\tSTATUS")
	bad := 0
	for _, f := range files {
		role, name, hosts, expires, problem := inspect(f, caFile, pool, poolErr, now)
		if problem != "ok" && !strings.HasPrefix(problem, "ok,") {
			bad++
		}
		if hosts == "" {
			hosts = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", filepath.Base(f), role, name, hosts, expires, problem)
	}
	w.Flush()
	if bad > 0 {
		return fmt.Errorf("%d of %d certificates have problems (STATUS column)", bad, len(files))
	}
	return nil
}

// inspect describes one certificate file for list.
func inspect(f, caFile string, pool *x509.CertPool, poolErr error, now time.Time) (role, name, hosts, expires, status string) {
	data, err := os.ReadFile(f)
	if err != nil {
		return "?", "?", "", "?", err.Error()
	}
	certs, err := parseCerts(f, data)
	if err != nil {
		return "?", "?", "", "?", err.Error()
	}
	leaf := certs[0]
	expires = leaf.NotAfter.Format(time.DateOnly)
	var hs []string
	hs = append(hs, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		hs = append(hs, ip.String())
	}
	hosts = strings.Join(hs, ",")
	left := leaf.NotAfter.Sub(now)
	switch {
	case now.After(leaf.NotAfter):
		status = "EXPIRED"
	case now.Before(leaf.NotBefore):
		status = "not valid yet"
	case left < 30*24*time.Hour:
		status = fmt.Sprintf("ok, expires in %d days: renew with issue --replace", int(left.Hours()/24))
	default:
		status = "ok"
	}
	if f == caFile || leaf.IsCA {
		return "ca", leaf.Subject.CommonName, "", expires, status
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return "?", leaf.Subject.CommonName, hosts, expires, "no sdn identity"
	}
	role, name = string(id.Role), id.Name
	if status == "EXPIRED" || status == "not valid yet" {
		return role, name, hosts, expires, status
	}
	if poolErr != nil {
		return role, name, hosts, expires, "cannot check: no usable ca.crt"
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return role, name, hosts, expires, "not signed by ca.crt"
	}
	keyFile := strings.TrimSuffix(f, ".crt") + ".key"
	if _, err := tls.LoadX509KeyPair(f, keyFile); err != nil {
		if !exists(keyFile) {
			return role, name, hosts, expires, "no key file " + filepath.Base(keyFile)
		}
		return role, name, hosts, expires, "key does not match"
	}
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return role, name, hosts, expires, fmt.Sprintf("key readable by others (%v); chmod 600", fi.Mode().Perm())
	}
	return role, name, hosts, expires, status
}
