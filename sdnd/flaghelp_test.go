package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestFlagPlaceholders: `sdnd --help` shows each flag's value as one
// word. The flag package takes the first `backquoted` text of a usage as
// the value's name, so a backquoted command in a usage turned
// "-tls-ca string" into "-tls-ca sdnctl tls init".
func TestFlagPlaceholders(t *testing.T) {
	logLevel := ""
	fs := newFlagSet(&options{}, &listFlag{}, &listFlag{}, &listFlag{}, &listFlag{}, &logLevel, io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if strings.ContainsAny(name, " \"`") || name == "value" {
			t.Errorf("--%s shows its value as %q (%s)", f.Name, name, usage)
		}
	})
}
