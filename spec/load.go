package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Document is the desired state declared in a set of HCL files.
type Document struct {
	Cluster   *sdnv1.ClusterSettings // nil when no cluster block
	Networks  []*sdnv1.Network       // in file order (files sorted by path)
	Workloads []*sdnv1.Workload
	Files     map[string]*hcl.File // parsed files by name, for diagnostics rendering
}

var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "cluster"},
		{Type: "network", LabelNames: []string{"name"}},
		{Type: "workload", LabelNames: []string{"name"}},
	},
}

// LoadPaths reads files and directories (a directory: its *.hcl files, not
// recursive, sorted by name). Files are decoded in path order; a file named
// twice is read once. It returns all diagnostics found, not only the first
// file's; the Document is non-nil even when diags has errors (Files filled,
// for rendering).
func LoadPaths(paths []string) (*Document, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	if len(paths) == 0 {
		return &Document{Files: map[string]*hcl.File{}}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No files given",
			Detail: "Name HCL files or directories of them, e.g. -f examples/."}}
	}
	files, fdiags := expandPaths(paths)
	diags = append(diags, fdiags...)
	var all decoded
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Cannot read file", Detail: fmt.Sprintf("%v.", err)})
			continue
		}
		diags = append(diags, all.parseFile(name, src)...)
	}
	doc, cdiags := all.document()
	diags = append(diags, cdiags...)
	sortDiags(diags, files)
	return doc, diags
}

// expandPaths turns files and directories into a sorted list of files.
func expandPaths(paths []string) ([]string, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	seen := map[string]bool{}
	var files []string
	add := func(p string) {
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Cannot read file", Detail: fmt.Sprintf("%v.", err)})
			continue
		}
		if !fi.IsDir() {
			add(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Cannot read directory", Detail: fmt.Sprintf("%v.", err)})
			continue
		}
		n := 0
		for _, e := range entries {
			if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
				if strings.HasSuffix(e.Name(), ".hcl") {
					add(filepath.Join(p, e.Name()))
					n++
				}
			}
		}
		if n == 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "No HCL files", Detail: fmt.Sprintf("Directory %s holds no *.hcl files.", p)})
		}
	}
	sort.Strings(files)
	return files, diags
}

// Parse decodes one file's source. Checks that span objects (duplicates, one
// admin network) cover this file alone; LoadPaths runs them across files.
func Parse(filename string, src []byte) (*Document, hcl.Diagnostics) {
	var all decoded
	diags := all.parseFile(filename, src)
	doc, cdiags := all.document()
	diags = append(diags, cdiags...)
	sortDiags(diags, []string{filename})
	return doc, diags
}

// decoded is what files declare, in file order, before the checks that span
// objects (duplicates are still in).
type decoded struct {
	files     map[string]*hcl.File
	clusters  []*sdnv1.ClusterSettings
	networks  []*sdnv1.Network
	workloads []*sdnv1.Workload
}

// parseFile decodes one file and appends its objects. A file is checked
// before it is parsed (CheckSource: size, nesting, no templates or
// operators) and its values before they are decoded (CheckLiterals).
func (all *decoded) parseFile(filename string, src []byte) hcl.Diagnostics {
	if all.files == nil {
		all.files = map[string]*hcl.File{}
	}
	if diags := CheckSource(filename, src); diags.HasErrors() {
		// Not parsed (see CheckSource); kept for rendering the diagnostics.
		all.files[filename] = &hcl.File{Body: hcl.EmptyBody(), Bytes: src}
		return diags
	}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if file != nil {
		all.files[filename] = file
	}
	if diags.HasErrors() || file == nil {
		// Decoding a body the parser had to guess at only adds noise.
		return diags
	}
	if ldiags := CheckLiterals(file.Body); ldiags.HasErrors() {
		return append(diags, ldiags...)
	}
	content, cdiags := file.Body.Content(fileSchema)
	diags = append(diags, cdiags...)
	for _, b := range content.Blocks {
		switch b.Type {
		case "cluster":
			cs, d := decodeCluster(filename, b)
			diags = append(diags, d...)
			all.clusters = append(all.clusters, cs)
		case "network":
			n, d := decodeNetwork(filename, b)
			diags = append(diags, d...)
			all.networks = append(all.networks, n)
		case "workload":
			w, d := decodeWorkload(filename, b)
			diags = append(diags, d...)
			all.workloads = append(all.workloads, w)
		}
	}
	return diags
}

// ApplyRequest builds the API request for this document; the caller sets
// prune and dry_run. The request shares its objects with d.
func (d *Document) ApplyRequest() *sdnv1.ApplyRequest {
	return &sdnv1.ApplyRequest{
		Cluster:   d.Cluster,
		Networks:  slices.Clone(d.Networks),
		Workloads: slices.Clone(d.Workloads),
	}
}
