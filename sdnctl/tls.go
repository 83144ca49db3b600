package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// tlsCommand is `sdnctl tls`: init, issue and list make and check the
// cluster's CA and certificates in a directory (package pki does the
// crypto), where the administrator keeps the CA key, with no server;
// revoke and revoked ask the servers.
func (a *app) tlsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls init|issue|list|revoke|revoked",
		Short: "Create the cluster CA and the certificates of servers, agents and users (mutual TLS)",
		Long: "tls creates the certificates for mutual TLS between sdn's servers, agents and\n" +
			"sdnctl: one CA per cluster, one certificate per server, agent host and user.\n" +
			"init, issue and list work on the files in --dir and need no server; revoke and\n" +
			"revoked ask the servers. See docs/security.md.\n\n" + tlsFilesHelp,
		Example: "  sdnctl tls init --dir tls --servers s1=10.0.0.1,s2=10.0.0.2,s3=10.0.0.3 --agents h1,h2 --clients admin\n" +
			"  sdnctl tls issue --dir tls --role agent --name h3\n" +
			"  sdnctl tls issue --dir tls --role server --name s1 --host 10.0.0.1 --host s1.example.com --replace",
		// `sdnctl tls help [COMMAND]` shows the help, as it always has.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && args[0] == "help" {
				return cobra.MaximumNArgs(2)(cmd, args)
			}
			return cobra.NoArgs(cmd, args)
		},
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("tls needs a subcommand: init, issue, list, revoke or revoked")
			}
			if len(args) == 2 {
				sub, _, err := cmd.Find(args[1:])
				if err != nil || sub == cmd {
					return usagef("unknown command %q for %q", args[1], cmd.CommandPath())
				}
				return sub.Help()
			}
			return cmd.Help()
		}),
	}
	cmd.AddCommand(a.tlsInitCommand(), a.tlsIssueCommand(), a.tlsListCommand(), a.revokeCommand(), a.revokedCommand())
	return cmd
}

// tlsHint explains a failed connection that TLS (or its absence) caused,
// from gRPC's message; "" when it is something else.
func (a *app) tlsHint(msg string) string {
	tlsFlags := "--tls-ca, --tls-cert and --tls-key (or SDN_TLS_CA, SDN_TLS_CERT, SDN_TLS_KEY)"
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	switch {
	case !a.useTLS() && has("error reading server preface", "connection reset by peer", "broken pipe", "EOF", "http2: frame too large", "first record does not look like"):
		// A TLS server closes a plaintext connection at its first bytes;
		// gRPC sees that as whichever of these came first.
		return "it speaks mutual TLS and sdnctl ran without TLS: pass " + tlsFlags +
			" with the cluster's ca.crt and your client certificate and key (made by `sdnctl tls init` or `sdnctl tls issue --role client --name YOU`)"
	case !a.useTLS():
		return ""
	case has("first record does not look like a TLS handshake"):
		return "it speaks plaintext (sdnd --dev or --insecure-plaintext) and sdnctl dialled with TLS: drop " + tlsFlags
	case has("certificate signed by unknown authority"):
		return "its certificate was not signed by the CA in --tls-ca (" + a.tlsCA + "): the two come from different clusters' CAs; use the ca.crt of this cluster"
	case has("tls: unknown certificate authority"):
		return "it does not trust your certificate (--tls-cert " + a.tlsCert + "): another CA signed it; use one issued by this cluster's CA (`sdnctl tls issue --role client`)"
	case has("tls: bad certificate", "tls: certificate required", "tls: expired certificate", "tls: revoked certificate"):
		return "it refused your certificate (--tls-cert " + a.tlsCert + ") during the handshake; its log says why (\"API connection refused\")"
	case has("broken pipe", "connection reset by peer", "EOF"):
		// With TLS 1.3 the server judges the client's certificate after
		// the client finished its side of the handshake: a refusal shows
		// as a connection closed under the client's first write or read.
		return "it closed the connection right after the TLS handshake: most likely it refused your certificate (--tls-cert " + a.tlsCert +
			"), e.g. one another CA signed, or an expired one; its log says why (\"API connection refused\")"
	case has("certificate is valid for"):
		return "its certificate does not name the address dialled: dial one it names (`sdnctl tls list` shows them), or reissue it with that --host"
	case has("certificate has expired", "is not valid yet"):
		return "its certificate is not valid now: renew it (`sdnctl tls issue --replace`) or check the clocks"
	case has("only server certificates are accepted here"):
		return "the certificate it presented is not a server's: is --server the address of an sdnd server?"
	case has("tls:", "x509:", "handshake"):
		return "the TLS handshake failed"
	}
	return ""
}
