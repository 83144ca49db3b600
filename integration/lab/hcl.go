package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/spec"
)

// findExamples returns the module's examples/ directory, looked for from
// the working directory upwards.
func findExamples() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.HasPrefix(b, []byte("module github.com/sdn-dev/sdn\n")) {
			return filepath.Join(dir, "examples"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no examples/ found: the working directory is not inside the sdn module; set Config.Examples")
		}
		dir = parent
	}
}

// ExamplesDir is the directory of the HCL applied (Config.Examples, or
// the directory holding it when it is a file).
func (l *Lab) ExamplesDir() string {
	if fi, err := os.Stat(l.cfg.Examples); err == nil && !fi.IsDir() {
		return filepath.Dir(l.cfg.Examples)
	}
	return l.cfg.Examples
}

// hclDir is where Up keeps the HCL files it applies.
func (l *Lab) hclDir() string { return filepath.Join(l.Dir, "hcl") }

// prepareHCL copies the HCL files to DIR/hcl, with the cluster's isolation
// set to Config.Isolation if given, checks that they decode, and returns
// the directory.
func (l *Lab) prepareHCL() (string, error) {
	src := l.cfg.Examples
	if src == "" {
		var err error
		if src, err = findExamples(); err != nil {
			return "", err
		}
		l.cfg.Examples = src
	}
	var files []string
	if fi, err := os.Stat(src); err != nil {
		return "", err
	} else if fi.IsDir() {
		files, _ = filepath.Glob(filepath.Join(src, "*.hcl"))
	} else {
		files = []string{src}
	}
	if len(files) == 0 {
		return "", fmt.Errorf("no *.hcl files in %s", src)
	}
	sort.Strings(files)
	dst := l.hclDir()
	if err := os.RemoveAll(dst); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", err
	}
	setIsolation := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if l.cfg.Isolation != "" {
			var found bool
			if b, found, err = withIsolation(f, b, l.cfg.Isolation); err != nil {
				return "", err
			}
			setIsolation = setIsolation || found
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
			return "", err
		}
	}
	if l.cfg.Isolation != "" && !setIsolation {
		b := fmt.Appendf(nil, "cluster {\n  isolation = %q\n}\n", l.cfg.Isolation)
		if err := os.WriteFile(filepath.Join(dst, "zz-lab-cluster.hcl"), b, 0o644); err != nil {
			return "", err
		}
	}
	if _, _, err := l.Networks(); err != nil {
		return "", err
	}
	return dst, nil
}

// Networks returns the networks the lab applied (name → admin) and the
// cluster's isolation mode, read from DIR/hcl.
func (l *Lab) Networks() (networks map[string]bool, isolation string, err error) {
	doc, diags := spec.LoadPaths([]string{l.hclDir()})
	if diags.HasErrors() {
		var msgs []string
		for _, d := range diags {
			msgs = append(msgs, spec.DiagnosticLine(d))
		}
		return nil, "", fmt.Errorf("HCL in %s: %s", l.hclDir(), strings.Join(msgs, "; "))
	}
	networks = map[string]bool{}
	for _, n := range doc.Networks {
		networks[n.GetName()] = n.GetAdmin()
	}
	isolation = "multitenant"
	if doc.Cluster != nil {
		if s := model.IsolationName(doc.Cluster.GetIsolation()); s != "" {
			isolation = s
		}
	}
	return networks, isolation, nil
}

// withIsolation returns src with the cluster block's isolation attribute
// set to mode (replaced, or inserted after the block's opening brace), and
// whether src has a cluster block. The rest of the text is kept as written.
func withIsolation(filename string, src []byte, mode string) ([]byte, bool, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, false, fmt.Errorf("%s: %s", filename, diags.Error())
	}
	for _, blk := range f.Body.(*hclsyntax.Body).Blocks {
		if blk.Type != "cluster" {
			continue
		}
		val := fmt.Sprintf("%q", mode)
		if a, ok := blk.Body.Attributes["isolation"]; ok {
			r := a.Expr.Range()
			return splice(src, r.Start.Byte, r.End.Byte, val), true, nil
		}
		at := blk.OpenBraceRange.End.Byte
		return splice(src, at, at, "\n  isolation = "+val+"\n"), true, nil
	}
	return src, false, nil
}

func splice(src []byte, from, to int, s string) []byte {
	out := append([]byte(nil), src[:from]...)
	out = append(out, s...)
	return append(out, src[to:]...)
}
