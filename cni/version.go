package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0" (the
// Makefile's VERSION). Without it, the module version the Go toolchain
// stamped from the repository, else v0.0.0-dev: always a semantic version,
// as Nomad's fingerprint of CNI plugins looks for one.
var version = ""

// pluginVersion is the plugin's own version.
func pluginVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && strings.HasPrefix(bi.Main.Version, "v") {
		return bi.Main.Version
	}
	return "v0.0.0-dev"
}

// about is what the plugin says of itself: on stderr when run without
// CNI_COMMAND (skel), after VERSION's JSON, and for --version. Runtimes
// read the first semantic version in it (Nomad: plugins.cni.version.sdn).
func about() string { return "CNI plugin sdn " + pluginVersion() }

// printVersion answers `sdn --version`: the plugin's version and the CNI
// versions it speaks.
func printVersion(w io.Writer) {
	fmt.Fprintln(w, about())
	fmt.Fprintf(w, "CNI protocol versions supported: %s\n", strings.Join(supported.SupportedVersions(), ", "))
}
