package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sdn-dev/sdn/model"
)

// The defaults of `sdnctl cni install`: the directories every CNI runtime
// reads by default, and sdnd --agent's default socket (cnisrv.DefaultSocket,
// which sdnctl may not import: CONTRIBUTING.md, Boundaries).
const (
	defaultCNIBinDir    = "/opt/cni/bin"
	defaultCNIConfDir   = "/etc/cni/net.d"
	cniInstallSocket    = "/run/sdn/cni.sock"
	defaultCNIVersion   = "1.0.0"
	pluginName          = "sdn" // the plugin's "type", so its file name in --dir
	maxUnixSocketPath   = 107   // sun_path's 108 bytes, the last one a NUL
	cniConflistFileMode = 0o644
	cniPluginFileMode   = 0o755
)

// cniVersions are the versions the plugin renders a result in
// (docs/runtimes.md). Podman 4.3 and containerd 1.6 accept up to 1.0.0.
var cniVersions = []string{"1.1.0", "1.0.0", "0.4.0", "0.3.1", "0.3.0"}

// cniInstall is what `sdnctl cni install` was asked to do.
type cniInstall struct {
	network    string // sdn network; "" leaves it to SDN_NETWORK in CNI_ARGS
	name       string // the CNI network name; default sdn-<network>
	dir        string // plugin directory
	confDir    string // conflist directory
	socket     string // the agent's socket
	cniVersion string
	plugin     string // the plugin binary to copy; "" finds it
	force      bool

	// executable and lookPath find the plugin (os.Executable and
	// exec.LookPath; tests replace them).
	executable func() (string, error)
	lookPath   func(string) (string, error)
}

func (a *app) cniCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cni",
		Short: "Install the CNI plugin for a container runtime",
	}
	cmd.AddCommand(a.cniInstallCommand())
	return cmd
}

func (a *app) cniInstallCommand() *cobra.Command {
	o := &cniInstall{executable: os.Executable, lookPath: exec.LookPath}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Copy the sdn CNI plugin into the runtime's plugin directory and write its network config",
		Long: "Copies the plugin binary (the sdn file next to sdnctl, else sdn on the PATH, or --plugin)\n" +
			"into --dir and writes --conf-dir/sdn-NETWORK.conflist, both atomically. An existing\n" +
			"conflist that differs is kept unless --force. Podman 4.3 and containerd 1.6 accept\n" +
			"cniVersion up to 1.0.0 (the default). Needs no server: it only writes files.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(*cobra.Command, []string) error { return o.run(a.stdout) }),
	}
	f := cmd.Flags()
	f.StringVar(&o.network, "network", "", "the sdn network the runtime's containers join (without it each ADD names one with CNI_ARGS SDN_NETWORK=)")
	f.StringVar(&o.name, "name", "", "the CNI network name runtimes select (podman --network NAME) (default sdn-NETWORK, or sdn)")
	f.StringVar(&o.dir, "dir", defaultCNIBinDir, "the runtime's CNI plugin directory")
	f.StringVar(&o.confDir, "conf-dir", defaultCNIConfDir, "the runtime's CNI network config directory")
	f.StringVar(&o.socket, "socket", cniInstallSocket, "this host's sdnd agent socket (sdnd --cni-socket)")
	f.StringVar(&o.cniVersion, "cni-version", defaultCNIVersion, "the conflist's cniVersion: "+strings.Join(cniVersions, ", "))
	f.StringVar(&o.plugin, "plugin", "", "the plugin binary to install (default: sdn next to sdnctl, else on the PATH)")
	f.BoolVar(&o.force, "force", false, "replace an existing conflist that differs")
	return cmd
}

// check validates the options, filling in the network name.
func (o *cniInstall) check() error {
	if o.network != "" {
		if err := model.ValidateName(o.network); err != nil {
			return usagef("--network %q is not a valid sdn network name: %v", o.network, err)
		}
	}
	if o.name == "" {
		o.name = pluginName
		if o.network != "" {
			o.name = pluginName + "-" + o.network
		}
	}
	if err := checkCNINetworkName(o.name); err != nil {
		return usagef("--name %q: %v", o.name, err)
	}
	if !slices.Contains(cniVersions, o.cniVersion) {
		return usagef("--cni-version %q: want one of %s (Podman 4.3 and containerd 1.6 accept up to 1.0.0)", o.cniVersion, strings.Join(cniVersions, ", "))
	}
	if !filepath.IsAbs(o.socket) {
		return usagef("--socket %q is not an absolute path (e.g. %s)", o.socket, cniInstallSocket)
	}
	if len(o.socket) > maxUnixSocketPath {
		return usagef("--socket %q is %d bytes long; a unix socket path has at most %d", o.socket, len(o.socket), maxUnixSocketPath)
	}
	for flag, dir := range map[string]string{"--dir": o.dir, "--conf-dir": o.confDir} {
		if !filepath.IsAbs(dir) {
			return usagef("%s %q is not an absolute path", flag, dir)
		}
	}
	return nil
}

// checkCNINetworkName applies the CNI spec's rule for a network name:
// alphanumerics, '_', '.' and '-', starting with an alphanumeric.
func checkCNINetworkName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for i, r := range s {
		alnum := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if alnum || (i > 0 && strings.ContainsRune("_.-", r)) {
			continue
		}
		return errors.New("a CNI network name has letters, digits, '_', '.' and '-' and starts with a letter or digit")
	}
	return nil
}

// conflist renders the network configuration list (docs/runtimes.md,
// "Install").
func (o *cniInstall) conflist() []byte {
	type plugin struct {
		Type         string          `json:"type"`
		Network      string          `json:"network,omitempty"`
		Socket       string          `json:"socket"`
		Capabilities map[string]bool `json:"capabilities"`
	}
	doc := struct {
		CNIVersion string   `json:"cniVersion"`
		Name       string   `json:"name"`
		Plugins    []plugin `json:"plugins"`
	}{o.cniVersion, o.name, []plugin{{
		Type: pluginName, Network: o.network, Socket: o.socket,
		Capabilities: map[string]bool{"portMappings": true, "bandwidth": true, "ips": true, "mac": true},
	}}}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // strings and bools only
	}
	return append(b, '\n')
}

// conflistPath is where the conflist goes: sdn-<network>.conflist (plain
// sdn.conflist without --network), whatever --name says.
func (o *cniInstall) conflistPath() string {
	base := pluginName
	if o.network != "" {
		base += "-" + o.network
	}
	return filepath.Join(o.confDir, base+".conflist")
}

// findPlugin returns the plugin binary to install and where it looked.
func (o *cniInstall) findPlugin() (string, error) {
	if o.plugin != "" {
		if err := isExecutableFile(o.plugin); err != nil {
			return "", fmt.Errorf("--plugin %s: %w", o.plugin, err)
		}
		return o.plugin, nil
	}
	var looked []string
	if exe, err := o.executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		p := filepath.Join(filepath.Dir(exe), pluginName)
		if isExecutableFile(p) == nil {
			return p, nil
		}
		looked = append(looked, p)
	}
	if p, err := o.lookPath(pluginName); err == nil {
		return p, nil
	}
	looked = append(looked, "$PATH ("+os.Getenv("PATH")+")")
	return "", fmt.Errorf("no sdn CNI plugin found: looked for %s; build it (make: bin/sdn) and pass --plugin PATH",
		strings.Join(looked, " and in "))
}

func isExecutableFile(p string) error {
	st, err := os.Stat(p)
	switch {
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return errors.New("not a regular file")
	case st.Mode().Perm()&0o111 == 0:
		return errors.New("not executable")
	}
	return nil
}

// run installs the plugin and the conflist and says what it did.
func (o *cniInstall) run(out io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	src, err := o.findPlugin()
	if err != nil {
		return err
	}
	confPath := o.conflistPath()
	conf := o.conflist()
	old, err := os.ReadFile(confPath)
	confSame := err == nil && bytes.Equal(old, conf)
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read the existing %s: %w", confPath, err)
	case err == nil && !confSame && !o.force:
		return fmt.Errorf("%s exists and differs from the conflist for network %q (shown below); nothing changed: pass --force to replace it\n%s",
			confPath, o.network, conf)
	}
	dst := filepath.Join(o.dir, pluginName)
	copied, err := installPlugin(src, dst)
	if err != nil {
		return err
	}
	if copied {
		fmt.Fprintf(out, "installed the plugin %s (from %s)\n", dst, src)
	} else {
		fmt.Fprintf(out, "the plugin %s is up to date (same as %s)\n", dst, src)
	}
	if confSame {
		fmt.Fprintf(out, "%s is up to date\n", confPath)
	} else {
		if err := writeFileAtomic(confPath, conf, cniConflistFileMode); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (CNI network %q, cniVersion %s, agent socket %s)\n", confPath, o.name, o.cniVersion, o.socket)
	}
	o.printNext(out)
	return nil
}

// printNext tells what to run next with each runtime.
func (o *cniInstall) printNext(out io.Writer) {
	args := ""
	if o.network == "" {
		args = " (add CNI_ARGS SDN_NETWORK=NETWORK: the conflist names no sdn network)"
	}
	fmt.Fprintf(out, "next%s:\n", args)
	fmt.Fprintf(out, "  podman (network_backend = \"cni\", cni_plugin_dirs = [\"%s\"], network_config_dir = \"%s\" in containers.conf):\n", o.dir, o.confDir)
	fmt.Fprintf(out, "    podman run --network %s ...\n", o.name)
	fmt.Fprintf(out, "  nerdctl: nerdctl --cni-path %s --cni-netconfpath %s run --net %s ...\n", o.dir, o.confDir, o.name)
	fmt.Fprintf(out, "  containerd CRI (bin_dir = \"%s\", conf_dir = \"%s\"; the first conflist there is used): crictl runp POD.json\n", o.dir, o.confDir)
	fmt.Fprintf(out, "  see docs/runtimes.md; check with: sdnctl get workloads\n")
}

// installPlugin copies src to dst atomically (a temporary file in dst's
// directory, then rename), mode 0755. It copies nothing when dst already
// has src's content, and reports whether it copied.
func installPlugin(src, dst string) (bool, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("read the plugin: %w", err)
	}
	if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, data) {
		if st, err := os.Stat(dst); err == nil && st.Mode().Perm() == cniPluginFileMode {
			return false, nil
		}
	}
	if err := writeFileAtomic(dst, data, cniPluginFileMode); err != nil {
		return false, err
	}
	return true, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory (made if missing), synced, chmod'ed, then renamed over path: a
// reader (a runtime starting a container) sees the old file or the new one,
// never half of one.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	// A name that no runtime reads: libcni loads only *.conf, *.conflist
	// and *.json.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // after the rename: no such file, harmless
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w; it is unchanged", path, err)
	}
	return nil
}
