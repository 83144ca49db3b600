package main

import (
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
