package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sdn-dev/sdn/pki"
)

// The commands that make and check certificates: `sdnctl tls init`,
// `issue` and `list`. They parse the command line and render; package pki
// writes and reads the files.

const tlsFilesHelp = `Files, all in --dir:
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
Copy ca.crt and each host's own pair to that host, nothing else.`

// defaultDays is how long a certificate is valid unless --days says
// otherwise: pki.DefaultValidity.
const defaultDays = int(pki.DefaultValidity / (24 * time.Hour))

func (a *app) tlsInitCommand() *cobra.Command {
	var (
		dir             string
		servers, agents listFlag
		clients         = listFlag{values: []string{"admin"}}
		days            int
	)
	cmd := &cobra.Command{
		Use:   "init --dir DIR [--servers NAME[=HOST],...] [--agents NAME[=HOST],...] [--clients NAME,...] [--days N]",
		Short: "Create the cluster CA and the certificates listed, at once",
		Long: `init creates ca.crt and ca.key in DIR (made 0700 if new), then a certificate and
key for each server, agent and client listed. It refuses to touch a DIR that
already holds a CA: add certificates to it with "issue".

A server's certificate is valid for its name, every HOST given for it, and
localhost, 127.0.0.1 and ::1. Give the addresses agents, sdnctl and the other
servers dial (API and raft), e.g. --servers s1=10.0.0.1,s1=s1.example.com.

` + tlsFilesHelp,
		Args: noPositional,
		RunE: a.runE(func(*cobra.Command, []string) error {
			if dir == "" {
				return usagef("--dir is required: the directory to create the CA in")
			}
			opts, err := initOptions(servers.values, agents.values, clients.values, days)
			if err != nil {
				return err
			}
			res, err := pki.Init(dir, opts)
			if !res.CA.IsZero() {
				a.writeInit(res)
			}
			if err != nil {
				if !res.CA.IsZero() {
					return fmt.Errorf("%w (the CA and the files listed above were written)", err)
				}
				return err
			}
			a.writeNext(res.Issued)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory for the CA and the certificates (required)")
	f.Var(&servers, "servers", "servers to issue certificates for: NAME (the node name) or NAME=HOST; repeat NAME=HOST for more hosts (repeatable, comma-separated)")
	f.Var(&agents, "agents", "agent hosts to issue certificates for: NAME (the node name), or NAME=HOST if the agent also serves TLS (repeatable, comma-separated)")
	f.Var(&clients, "clients", `sdnctl users to issue certificates for, by name (repeatable, comma-separated; "" for none)`)
	f.IntVar(&days, "days", defaultDays, "days the server, agent and client certificates are valid (the CA: 10 years)")
	return cmd
}

// initOptions turns init's flags into what pki.Init is asked, checking
// everything first, so a typo is a usage error that leaves no half-made
// directory behind.
func initOptions(servers, agents, clients []string, days int) (pki.InitOptions, error) {
	valid, err := validity(days)
	if err != nil {
		return pki.InitOptions{}, err
	}
	opts := pki.InitOptions{Validity: valid}
	for _, g := range []struct {
		role  pki.Role
		items []string
	}{{pki.RoleServer, servers}, {pki.RoleAgent, agents}, {pki.RoleClient, clients}} {
		ms, err := members(g.role, g.items)
		if err != nil {
			return pki.InitOptions{}, err
		}
		opts.Members = append(opts.Members, ms...)
	}
	if err := opts.Check(); err != nil {
		return pki.InitOptions{}, &usageError{err}
	}
	return opts, nil
}

// members turns NAME or NAME=HOST items into members of role, in the order
// names first appear; a name repeated with another host gains that host.
// A client names a user, never hosts.
func members(role pki.Role, items []string) ([]pki.Member, error) {
	var out []pki.Member
	for _, it := range items {
		name, host, hasHost := strings.Cut(it, "=")
		name = strings.TrimSpace(name)
		if hasHost && role == pki.RoleClient {
			return nil, usagef("%q: a %s certificate names a user, not hosts; give NAME only", it, role)
		}
		i := slices.IndexFunc(out, func(m pki.Member) bool { return m.Name == name })
		if i < 0 {
			out = append(out, pki.Member{Identity: pki.Identity{Role: role, Name: name}})
			i = len(out) - 1
		}
		if hasHost {
			out[i].Hosts = append(out[i].Hosts, strings.TrimSpace(host))
		}
	}
	return out, nil
}

func (a *app) tlsIssueCommand() *cobra.Command {
	var (
		dir, roleName, name string
		hosts               listFlag
		days                int
		replace             bool
	)
	cmd := &cobra.Command{
		Use:   "issue --dir DIR --role server|agent|client --name NAME [--host HOST]... [--days N] [--replace]",
		Short: "Create one more certificate (a new host or user), or renew one with --replace",
		Long: `issue creates ROLE-NAME.crt and ROLE-NAME.key in DIR, signed by the CA there
(ca.crt, ca.key). With --replace it renews an existing pair; processes using
it load the new one at their next handshake, without a restart.

A server certificate is valid for NAME, every --host and localhost, 127.0.0.1
and ::1; an agent certificate names hosts only if --host is given; a client
certificate names none.

` + tlsFilesHelp,
		Args: noPositional,
		RunE: a.runE(func(*cobra.Command, []string) error {
			m, valid, err := issueRequest(dir, roleName, name, hosts.values, days)
			if err != nil {
				return err
			}
			do := pki.Issue
			if replace {
				do = pki.Reissue
			}
			is, err := do(dir, m.Role, m.Name, m.Hosts, valid)
			if err != nil {
				return err
			}
			w := newCertTable(a.stdout)
			describeIssued(w, is)
			w.Flush()
			a.writeNext([]pki.Issued{is})
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory holding the CA (required)")
	f.StringVar(&roleName, "role", "", "server (an sdnd server), agent (an sdnd agent host) or client (an sdnctl user) (required)")
	f.StringVar(&name, "name", "", "the server's or agent's node name, or the user's name (required)")
	f.Var(&hosts, "host", "an address or DNS name the holder is dialed at; a port is ignored (repeatable, comma-separated)")
	f.IntVar(&days, "days", defaultDays, "days the certificate is valid")
	f.BoolVar(&replace, "replace", false, "replace an existing certificate and key of this role and name (renewal)")
	return cmd
}

// issueRequest checks issue's flags: every mistake is a usage error.
func issueRequest(dir, roleName, name string, hosts []string, days int) (pki.Member, time.Duration, error) {
	var missing []string
	for _, f := range []struct{ v, n string }{{dir, "--dir"}, {roleName, "--role"}, {name, "--name"}} {
		if f.v == "" {
			missing = append(missing, f.n)
		}
	}
	if len(missing) > 0 {
		return pki.Member{}, 0, usagef("%s required", strings.Join(missing, ", "))
	}
	role, err := pki.ParseRole(roleName)
	if err != nil {
		return pki.Member{}, 0, &usageError{err}
	}
	valid, err := validity(days)
	if err != nil {
		return pki.Member{}, 0, err
	}
	m := pki.Member{Identity: pki.Identity{Role: role, Name: name}, Hosts: hosts}
	if err := m.Check(); err != nil {
		return pki.Member{}, 0, &usageError{err}
	}
	return m, valid, nil
}

func (a *app) tlsListCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "list --dir DIR",
		Short: "Show the certificates in a directory: role, name, hosts, expiry, problems",
		Long: "list shows every certificate in DIR and what is wrong with it, if anything: expired,\n" +
			"expiring within 30 days, not signed by ca.crt, a key that is missing, does not match\n" +
			"or is readable by others. It exits 1 if any certificate has a problem.",
		Args: noPositional,
		RunE: a.runE(func(*cobra.Command, []string) error {
			if dir == "" {
				return usagef("--dir is required")
			}
			files, err := pki.List(dir)
			if err != nil {
				return err
			}
			if bad := writeCertList(a.stdout, files, a.now()); bad > 0 {
				return fmt.Errorf("%d of %d certificates have problems (STATUS column)", bad, len(files))
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory holding the CA and the certificates (required)")
	return cmd
}

// noPositional refuses arguments: every value of init, issue and list is
// given with a flag.
func noPositional(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q; every value is given with a flag", args)
	}
	return nil
}

func validity(days int) (time.Duration, error) {
	if days < 1 {
		return 0, usagef("--days %d: a certificate must be valid for at least one day", days)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

// listFlag is a repeatable flag whose values may be comma lists; the first
// value given replaces the default.
type listFlag struct {
	values []string
	set    bool
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }
func (l *listFlag) Type() string   { return "strings" }

func (l *listFlag) Set(s string) error {
	if !l.set {
		l.values, l.set = nil, true
	}
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l.values = append(l.values, v)
		}
	}
	return nil
}
