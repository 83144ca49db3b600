package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagPlaceholders: every --help shows each flag's value as one word.
// pflag takes the first `backquoted` text of a usage as the value's name,
// so a backquoted command in a usage turned "--tls-cert string" into
// "--tls-cert sdnctl tls init".
func TestFlagPlaceholders(t *testing.T) {
	a := &app{}
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		check := func(f *pflag.Flag) {
			name, usage := pflag.UnquoteUsage(f)
			if strings.ContainsAny(name, " \"`") {
				t.Errorf("%s --%s shows its value as %q (%s)", cmd.CommandPath(), f.Name, name, usage)
			}
		}
		cmd.LocalFlags().VisitAll(check)
		cmd.PersistentFlags().VisitAll(check)
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(a.rootCommand(func(string) string { return "" }))
}
