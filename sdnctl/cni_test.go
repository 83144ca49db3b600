package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cniEnv is a fake host: a directory with sdnctl's "own" directory holding
// a plugin, and the runtime's directories under it.
type cniEnv struct {
	root, exeDir, bin, conf string
}

func newCNIEnv(t *testing.T) *cniEnv {
	t.Helper()
	root := t.TempDir()
	e := &cniEnv{root: root, exeDir: filepath.Join(root, "usr/local/bin"),
		bin: filepath.Join(root, "opt/cni/bin"), conf: filepath.Join(root, "etc/cni/net.d")}
	if err := os.MkdirAll(e.exeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeExe(t, filepath.Join(e.exeDir, "sdnctl"), "sdnctl")
	writeExe(t, filepath.Join(e.exeDir, "sdn"), "plugin v1")
	return e
}

func writeExe(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// install runs `sdnctl cni install` in e with args; lookPath finds nothing
// unless pathDir is set.
func (e *cniEnv) install(t *testing.T, pathDir string, args ...string) (string, error) {
	t.Helper()
	o := &cniInstall{dir: e.bin, confDir: e.conf, socket: cniInstallSocket, cniVersion: defaultCNIVersion,
		executable: func() (string, error) { return filepath.Join(e.exeDir, "sdnctl"), nil },
		lookPath: func(name string) (string, error) {
			if pathDir == "" {
				return "", errors.New("not found")
			}
			return filepath.Join(pathDir, name), nil
		}}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--network":
			i++
			o.network = args[i]
		case "--name":
			i++
			o.name = args[i]
		case "--cni-version":
			i++
			o.cniVersion = args[i]
		case "--socket":
			i++
			o.socket = args[i]
		case "--plugin":
			i++
			o.plugin = args[i]
		case "--force":
			o.force = true
		default:
			t.Fatalf("test helper: unknown arg %q", args[i])
		}
	}
	var out bytes.Buffer
	err := o.run(&out)
	return out.String(), err
}

func readConflist(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s is not JSON: %v\n%s", path, err, b)
	}
	return m
}

func TestCNIInstallWritesPluginAndConflist(t *testing.T) {
	e := newCNIEnv(t)
	out, err := e.install(t, "", "--network", "web")
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(e.bin, "sdn")
	b, err := os.ReadFile(plugin)
	if err != nil || string(b) != "plugin v1" {
		t.Fatalf("plugin %s: %q, %v; want the sdn next to sdnctl", plugin, b, err)
	}
	if st, _ := os.Stat(plugin); st.Mode().Perm() != 0o755 {
		t.Errorf("plugin mode %v, want 0755", st.Mode().Perm())
	}
	confPath := filepath.Join(e.conf, "sdn-web.conflist")
	if st, err := os.Stat(confPath); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("conflist %s: %v %v, want mode 0644", confPath, st, err)
	}
	m := readConflist(t, confPath)
	if m["cniVersion"] != "1.0.0" || m["name"] != "sdn-web" {
		t.Errorf("conflist head %v %v, want 1.0.0 sdn-web", m["cniVersion"], m["name"])
	}
	plugins := m["plugins"].([]any)
	p := plugins[0].(map[string]any)
	caps := p["capabilities"].(map[string]any)
	if len(plugins) != 1 || p["type"] != "sdn" || p["network"] != "web" || p["socket"] != "/run/sdn/cni.sock" ||
		caps["portMappings"] != true || caps["bandwidth"] != true || caps["ips"] != true || caps["mac"] != true {
		t.Errorf("plugin config %v", plugins)
	}
	for _, want := range []string{"installed the plugin " + plugin, "wrote " + confPath, "podman run --network sdn-web", "crictl runp"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(e.conf, ".*"))
	leftovers2, _ := filepath.Glob(filepath.Join(e.bin, ".*"))
	if len(leftovers)+len(leftovers2) > 0 {
		t.Errorf("temporary files left: %v %v", leftovers, leftovers2)
	}
}

func TestCNIInstallIdempotentAndRefusesDifferentConflist(t *testing.T) {
	e := newCNIEnv(t)
	if _, err := e.install(t, "", "--network", "web"); err != nil {
		t.Fatal(err)
	}
	out, err := e.install(t, "", "--network", "web")
	if err != nil || !strings.Contains(out, "is up to date") {
		t.Fatalf("second install: %v\n%s", err, out)
	}
	confPath := filepath.Join(e.conf, "sdn-web.conflist")
	before, _ := os.ReadFile(confPath)
	_, err = e.install(t, "", "--network", "web", "--socket", "/run/other.sock")
	if err == nil || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), "nothing changed") {
		t.Fatalf("a different conflist: err %v, want a refusal naming --force", err)
	}
	if after, _ := os.ReadFile(confPath); !bytes.Equal(before, after) {
		t.Errorf("a refused install changed %s", confPath)
	}
	if _, err := e.install(t, "", "--network", "web", "--socket", "/run/other.sock", "--force"); err != nil {
		t.Fatal(err)
	}
	if p := readConflist(t, confPath)["plugins"].([]any)[0].(map[string]any); p["socket"] != "/run/other.sock" {
		t.Errorf("--force did not replace the conflist: %v", p)
	}
}

func TestCNIInstallUpdatesPlugin(t *testing.T) {
	e := newCNIEnv(t)
	if _, err := e.install(t, "", "--network", "web"); err != nil {
		t.Fatal(err)
	}
	writeExe(t, filepath.Join(e.exeDir, "sdn"), "plugin v2")
	out, err := e.install(t, "", "--network", "web")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(e.bin, "sdn")); string(b) != "plugin v2" || !strings.Contains(out, "installed the plugin") {
		t.Errorf("plugin not replaced: %q\n%s", b, out)
	}
}

func TestCNIInstallFindsPlugin(t *testing.T) {
	e := newCNIEnv(t)
	os.Remove(filepath.Join(e.exeDir, "sdn"))
	_, err := e.install(t, "", "--network", "web")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(e.exeDir, "sdn")) || !strings.Contains(err.Error(), "$PATH") {
		t.Fatalf("no plugin anywhere: err %v, want one naming where it looked", err)
	}
	pathDir := filepath.Join(e.root, "path")
	os.MkdirAll(pathDir, 0o755)
	writeExe(t, filepath.Join(pathDir, "sdn"), "from PATH")
	if _, err := e.install(t, pathDir, "--network", "web"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(e.bin, "sdn")); string(b) != "from PATH" {
		t.Errorf("plugin %q, want the one on the PATH", b)
	}
	explicit := filepath.Join(e.root, "explicit")
	writeExe(t, explicit, "explicit")
	if _, err := e.install(t, "", "--network", "web", "--plugin", explicit); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(e.bin, "sdn")); string(b) != "explicit" {
		t.Errorf("plugin %q, want --plugin's", b)
	}
	if _, err := e.install(t, "", "--plugin", filepath.Join(e.root, "nope")); err == nil || !strings.Contains(err.Error(), "--plugin") {
		t.Errorf("missing --plugin: err %v", err)
	}
}

func TestCNIInstallOptions(t *testing.T) {
	e := newCNIEnv(t)
	if _, err := e.install(t, "", "--network", "db", "--name", "mydb", "--cni-version", "0.4.0"); err != nil {
		t.Fatal(err)
	}
	m := readConflist(t, filepath.Join(e.conf, "sdn-db.conflist"))
	if m["name"] != "mydb" || m["cniVersion"] != "0.4.0" {
		t.Errorf("conflist %v", m)
	}
	if _, err := e.install(t, ""); err != nil {
		t.Fatal(err)
	}
	m = readConflist(t, filepath.Join(e.conf, "sdn.conflist"))
	if p := m["plugins"].([]any)[0].(map[string]any); m["name"] != "sdn" || p["network"] != nil {
		t.Errorf("without --network: %v", m)
	}
	for _, bad := range [][]string{
		{"--network", "Web_1"},
		{"--network", "web", "--cni-version", "2.0.0"},
		{"--network", "web", "--socket", "relative.sock"},
		{"--network", "web", "--socket", "/" + strings.Repeat("s", 120)},
		{"--network", "web", "--name", "-bad"},
	} {
		_, err := e.install(t, "", bad...)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: err %v, want a usage error", bad, err)
		}
	}
}

// TestCNIInstallCommandLine runs the real command line: flags reach the
// options and a bad one is a usage error (exit 2).
func TestCNIInstallCommandLine(t *testing.T) {
	e := newCNIEnv(t)
	args := []string{"cni", "install", "--network", "web", "--dir", e.bin, "--conf-dir", e.conf, "--plugin", filepath.Join(e.exeDir, "sdn")}
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb, func(string) string { return "" }); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(e.conf, "sdn-web.conflist")); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run(context.Background(), append(args, "--cni-version", "9"), &out, &errb, func(string) string { return "" }); code != 2 {
		t.Errorf("bad --cni-version: exit %d, want 2: %s", code, errb.String())
	}
}
