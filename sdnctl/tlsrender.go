package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sdn-dev/sdn/pki"
)

// How `sdnctl tls init`, `issue` and `list` show what they wrote or found.

// renewWithin is how close to its expiry list says a certificate is due
// for renewal.
const renewWithin = 30 * 24 * time.Hour

// newCertTable returns the tabwriter the tls commands align columns with
// (two spaces between columns, narrower than newTable's: paths are long).
func newCertTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// writeInit lists the files init wrote: the CA's, then each pair.
func (a *app) writeInit(res pki.InitResult) {
	w := newCertTable(a.stdout)
	fmt.Fprintf(w, "%s\tthe cluster CA certificate, valid 10 years: copy it to every server, agent and sdnctl user\n", res.CA.Cert)
	fmt.Fprintf(w, "%s\tthe CA's private key: keep it here to issue certificates, not on cluster hosts\n", res.CA.Key)
	for _, is := range res.Issued {
		describeIssued(w, is)
	}
	w.Flush()
}

// describeIssued writes one line per file of a written pair.
func describeIssued(w io.Writer, is pki.Issued) {
	what := string(is.Role) + " " + is.Name
	if len(is.Hosts) > 0 {
		what += ", for " + strings.Join(is.Hosts, " ")
	}
	fmt.Fprintf(w, "%s\t%s, valid until %s\n", is.Cert, what, is.NotAfter.Format(time.DateOnly))
	fmt.Fprintf(w, "%s\tits private key (0600)\n", is.Key)
}

// writeNext says what to do with the files: where to copy them and the
// flags each process runs with.
func (a *app) writeNext(issued []pki.Issued) {
	if len(issued) == 0 {
		fmt.Fprintf(a.stdout, "\nNo certificates yet: add them with `sdnctl tls issue --dir DIR --role ROLE --name NAME`.\n")
		return
	}
	fmt.Fprintf(a.stdout, "\nCopy ca.crt and each host's own .crt and .key to that host (keys readable by root only), then run:\n")
	w := newCertTable(a.stdout)
	for _, is := range issued {
		flags := fmt.Sprintf("--%s %s --%s %s --%s %s", pki.FlagCA, is.CA, pki.FlagCert, is.Cert, pki.FlagKey, is.Key)
		switch is.Role {
		case pki.RoleServer:
			fmt.Fprintf(w, "  on server %s:\tsdnd --server --node-name %s %s ...\n", is.Name, is.Name, flags)
		case pki.RoleAgent:
			fmt.Fprintf(w, "  on host %s:\tsdnd --agent --node-name %s %s ...\n", is.Name, is.Name, flags)
		case pki.RoleClient:
			fmt.Fprintf(w, "  as %s:\tsdnctl %s --server HOST:PORT get nodes\n", is.Name, flags)
		}
	}
	w.Flush()
	fmt.Fprintf(a.stdout, "(paths as seen here; use where you copy them to)\n")
}

// writeCertList writes list's table and returns how many certificates
// have a problem.
func writeCertList(out io.Writer, files []pki.CertFile, now time.Time) (bad int) {
	w := newCertTable(out)
	fmt.Fprintln(w, "FILE\tROLE\tNAME\tHOSTS\tEXPIRES\tSTATUS")
	for _, f := range files {
		role, name, hosts, expires := "?", "?", "", "?"
		if c := f.Cert; c != nil {
			name, hosts, expires = c.Subject.CommonName, strings.Join(f.Hosts, ","), c.NotAfter.Format(time.DateOnly)
		}
		switch {
		case f.IsCA:
			role, hosts = "ca", ""
		case f.Identity != pki.Identity{}:
			role, name = string(f.Identity.Role), f.Identity.Name
		}
		if hosts == "" {
			hosts = "-"
		}
		status := f.Problem
		if status == "" {
			status = "ok"
			if left := f.Cert.NotAfter.Sub(now); left < renewWithin {
				status = fmt.Sprintf("ok, expires in %d days: renew with issue --replace", int(left.Hours()/24))
			}
		} else {
			bad++
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", filepath.Base(f.Path), role, name, hosts, expires, status)
	}
	w.Flush()
	return bad
}
