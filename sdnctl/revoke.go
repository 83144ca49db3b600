package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sdn-dev/sdn/pki"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// revokeCommand is `sdnctl tls revoke`: the servers refuse a certificate
// from now on (a leaked key, a host retired for good).
func (a *app) revokeCommand() *cobra.Command {
	var (
		serial, identity, reason string
		force                    bool
	)
	cmd := &cobra.Command{
		Use:   "revoke CERT-FILE | --serial HEX [--identity ROLE/NAME] [--reason TEXT] [--force]",
		Short: "Revoke a certificate: every server refuses it from now on",
		Long: "revoke records a certificate as revoked in the cluster's state: every server refuses\n" +
			"its TLS handshakes and the calls of connections opened before. Give the certificate\n" +
			"file, or its serial (hex, as `openssl x509 -noout -serial -in FILE` prints it) when\n" +
			"the file is gone. There is no undo: issue a new certificate instead. Revoking the\n" +
			"certificate sdnctl runs with (--tls-cert) needs --force. See docs/security.md.",
		Args: cobra.MaximumNArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			c := &sdnv1.RevokedCertificate{Reason: reason, Identity: identity}
			switch {
			case len(args) == 1 && serial != "":
				return usagef("give the certificate file or --serial, not both")
			case len(args) == 1:
				cert, err := pki.ReadCertificate(args[0])
				if err != nil {
					return err
				}
				id, err := pki.IdentityOf(cert)
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				if identity != "" && identity != id.String() {
					return usagef("%s names %s, not %s", args[0], id, identity)
				}
				c.Serial, c.Identity, c.NotAfterUnixMs = pki.Serial(cert), id.String(), cert.NotAfter.UnixMilli()
			case serial != "":
				s, err := pki.ParseSerial(serial)
				if err != nil {
					return usagef("--serial %q is not a hexadecimal serial number", serial)
				}
				c.Serial = s
			default:
				return usagef("name the certificate to revoke: its file, or --serial")
			}
			if a.tlsCert != "" && !force {
				if own, err := pki.ReadCertificate(a.tlsCert); err == nil && pki.Serial(own) == c.Serial {
					return usagef("%s is the certificate sdnctl runs with (--tls-cert): revoking it locks you out; use another administrator's certificate, or pass --force", c.Serial)
				}
			}
			conn, err := a.connect()
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := conn.cluster.RevokeCertificate(ctx, &sdnv1.RevokeCertificateRequest{Certificate: c})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			got := resp.GetCertificate()
			who := got.GetIdentity()
			if who == "" {
				who = "identity not given"
			}
			if resp.GetAlready() {
				fmt.Fprintf(a.stdout, "certificate %s (%s) was revoked already, %s by %s\n", got.GetSerial(), who,
					time.UnixMilli(got.GetRevokedUnixMs()).UTC().Format(time.RFC3339), got.GetRevokedBy())
				return nil
			}
			fmt.Fprintf(a.stdout, "revoked certificate %s (%s): every server refuses it from now on\n", got.GetSerial(), who)
			if role, name, _ := strings.Cut(got.GetIdentity(), "/"); role == string(pki.RoleServer) {
				fmt.Fprintf(a.stdout, "server %s can no longer reach the others: remove it (`sdnctl cluster remove %s`), and give it a new certificate if it is to come back\n", name, name)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&serial, "serial", "", "the serial number of the certificate (hex), when its file is gone")
	cmd.Flags().StringVar(&identity, "identity", "", "who the certificate names, ROLE/NAME (for the list; read from the file when given)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the list and the servers' logs")
	cmd.Flags().BoolVar(&force, "force", false, "revoke even the certificate sdnctl runs with")
	return cmd
}

// revokedCommand is `sdnctl tls revoked`: the revoked certificates.
func (a *app) revokedCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "revoked [-o table|json]",
		Short: "List the revoked certificates",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			conn, err := a.connect()
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := a.callContext(cmd.Context())
			defer cancel()
			resp, err := conn.cluster.ListRevoked(ctx, &sdnv1.ListRevokedRequest{})
			if err != nil {
				return a.rpcError(ctx, err)
			}
			if output == formatJSON {
				b, err := marshalJSON(resp)
				if err != nil {
					return fmt.Errorf("render revoked certificates as JSON: %w", err)
				}
				_, err = a.stdout.Write(b)
				return err
			}
			return writeRevoked(a.stdout, resp.GetCertificates(), a.now())
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table or json")
	return cmd
}

// writeRevoked prints one row per revoked certificate; EXPIRES says when
// the certificate would have expired anyway ("expired" once it has).
func writeRevoked(w io.Writer, certs []*sdnv1.RevokedCertificate, now time.Time) error {
	if len(certs) == 0 {
		_, err := fmt.Fprintln(w, "no certificate is revoked")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "SERIAL\tIDENTITY\tREVOKED\tBY\tEXPIRES\tREASON")
	for _, c := range certs {
		expires := ""
		if ms := c.GetNotAfterUnixMs(); ms != 0 {
			expires = time.UnixMilli(ms).UTC().Format("2006-01-02")
			if now.UnixMilli() > ms {
				expires = "expired"
			}
		}
		row(tw, c.GetSerial(), c.GetIdentity(), time.UnixMilli(c.GetRevokedUnixMs()).UTC().Format(time.RFC3339), c.GetRevokedBy(), expires, c.GetReason())
	}
	return tw.Flush()
}
