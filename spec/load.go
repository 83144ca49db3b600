package spec

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Document is the desired state declared in a set of HCL files.
type Document struct {
	Cluster   *sdnv1.ClusterSettings // nil when no cluster block
	Networks  []*sdnv1.Network       // in file order (files sorted by path)
	Workloads []*sdnv1.Workload
	Policies  []*sdnv1.Policy
	Services  []*sdnv1.Service
	// Files holds the files' sources by name, for rendering diagnostics.
	// Their Body is empty: syntax trees are dropped once decoded, so a
	// document holds no more than its sources and objects.
	Files map[string]*hcl.File
}

var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "cluster"},
		{Type: "network", LabelNames: []string{"name"}},
		{Type: "workload", LabelNames: []string{"name"}},
		{Type: "policy", LabelNames: []string{"name"}},
		{Type: "service", LabelNames: []string{"name"}},
	},
}

// LoadPaths reads files and directories: a directory's *.hcl files (any
// case of the extension), sorted by name, not its subdirectories, and it is
// an error for a subdirectory to hold .hcl files unless it is named too (see
// expandPaths). Only regular files are read, each at most MaxFileBytes.
// Files are decoded in path order; a file named twice, by any spelling or
// link, is read once. It returns all diagnostics found, not only the first
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
	var read sameFiles
	for _, name := range files {
		src, fi, d := readSource(name)
		if d != nil {
			diags = append(diags, d)
			continue
		}
		if read.seen(fi) {
			continue // the same file by another name or a link
		}
		diags = append(diags, all.parseFile(name, src)...)
	}
	doc, cdiags := all.document()
	diags = append(diags, cdiags...)
	sortDiags(diags, files)
	return doc, diags
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
	policies  []*sdnv1.Policy
	services  []*sdnv1.Service
	// serviceDiags holds each service's decoding problems, so checkServices
	// does not report a problem again where one was.
	serviceDiags map[*sdnv1.Service]hcl.Diagnostics
	blocks       int // blocks seen in all files, decoded or not
}

// maxObjects is model.MaxApplyObjects; tests lower it.
var maxObjects = model.MaxApplyObjects

// parseFile decodes one file and appends its objects. A file is checked
// before it is parsed (CheckSource: size, nesting, no templates or
// operators) and its values before they are decoded (CheckLiterals). Only
// its source is kept (for rendering diagnostics), not its syntax tree.
func (all *decoded) parseFile(filename string, src []byte) hcl.Diagnostics {
	if all.files == nil {
		all.files = map[string]*hcl.File{}
	}
	all.files[filename] = &hcl.File{Body: hcl.EmptyBody(), Bytes: src}
	if diags := CheckSource(filename, src); diags.HasErrors() {
		return diags
	}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() || file == nil {
		// Decoding a body the parser had to guess at only adds noise.
		return diags
	}
	if ldiags := CheckLiterals(file.Body); ldiags.HasErrors() {
		return append(diags, ldiags...)
	}
	content, cdiags := file.Body.Content(fileSchema)
	diags = append(diags, cdiags...)
	if d := all.count(content.Blocks); d != nil {
		return append(diags, d)
	}
	return append(diags, all.decodeBlocks(filename, content.Blocks)...)
}

// count adds a file's blocks to the objects seen and refuses them all when
// the total passes maxObjects, pointing at the first block past it.
func (all *decoded) count(blocks hcl.Blocks) *hcl.Diagnostic {
	before := all.blocks
	all.blocks += len(blocks)
	if all.blocks <= maxObjects {
		return nil
	}
	first := blocks[max(maxObjects-before, 0)]
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Too many objects",
		Detail: fmt.Sprintf("This is object %d of the files read (%d so far); one apply declares at most %d. Apply the files in parts, without --prune (which deletes what the files do not declare).",
			before+max(maxObjects-before, 0)+1, all.blocks, maxObjects),
		Subject: first.DefRange.Ptr()}
}

// decodeBlocks decodes a file's top-level blocks in order.
func (all *decoded) decodeBlocks(filename string, blocks hcl.Blocks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, b := range blocks {
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
		case "policy":
			p, d := decodePolicy(filename, b)
			diags = append(diags, d...)
			all.policies = append(all.policies, p)
		case "service":
			s, d := decodeService(filename, b)
			diags = append(diags, d...)
			all.addService(s, d)
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
		Policies:  slices.Clone(d.Policies),
		Services:  slices.Clone(d.Services),
	}
}
