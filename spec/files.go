package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"
)

// maxWalk bounds how many entries expandPaths looks at under one
// subdirectory when it checks for .hcl files there.
const maxWalk = 10000

// isHCLName reports whether a file name has the .hcl extension, in any case
// (a.HCL is as much an HCL file as a.hcl).
func isHCLName(name string) bool {
	return strings.EqualFold(filepath.Ext(name), ".hcl")
}

// expandPaths turns files and directories into a sorted list of files: a
// directory gives the files directly in it whose names end in .hcl (any
// case), whatever their type, so that readSource can refuse one that is not
// a regular file rather than skip it. Subdirectories are not read, and one
// that holds .hcl files (hidden directories aside) is an error unless it is
// named too: skipped silently, what it declares would look deleted to
// apply --prune.
func expandPaths(paths []string) ([]string, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	infos := make([]os.FileInfo, len(paths))
	var named sameFiles // the directories named
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Cannot read file", Detail: fmt.Sprintf("%v.", err)})
			continue
		}
		infos[i] = fi
		if fi.IsDir() {
			named.seen(fi)
		}
	}
	seen := map[string]bool{}
	var files []string
	add := func(p string) {
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	for i, p := range paths {
		switch fi := infos[i]; {
		case fi == nil:
		case !fi.IsDir():
			add(p)
		default:
			diags = append(diags, expandDir(p, &named, add)...)
		}
	}
	sort.Strings(files)
	return files, diags
}

// expandDir adds the .hcl files directly in dir and reports its
// subdirectories that hold .hcl files and are not named.
func expandDir(dir string, named *sameFiles, add func(string)) hcl.Diagnostics {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError,
			Summary: "Cannot read directory", Detail: fmt.Sprintf("%v.", err)}}
	}
	var diags hcl.Diagnostics
	n := 0
	for _, e := range entries {
		full := filepath.Join(dir, e.Name())
		switch {
		case isDirEntry(full, e):
			if strings.HasPrefix(e.Name(), ".") || isCatalogue(full) {
				continue
			}
			for _, d := range hclDirs(full) {
				if fi, err := os.Stat(d); err == nil && named.has(fi) {
					continue
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Subdirectory not read",
					Detail: fmt.Sprintf("%s holds .hcl files, but -f %s reads only the .hcl files directly in it. Name it too (-f %s) if its objects belong to this apply, or move it out: with apply --prune, objects declared only in files not read are deleted.",
						d, dir, d)})
			}
		case isHCLName(e.Name()):
			add(full)
			n++
		}
	}
	if n == 0 && len(diags) == 0 {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: "No HCL files", Detail: fmt.Sprintf("Directory %s holds no *.hcl files.", dir)})
	}
	return diags
}

// CatalogueMarker is the file that makes a subdirectory a catalogue of
// alternatives (e.g. examples/policy/, one scenario per file), never applied
// with its parent: -f of the parent skips it without an error. The marker
// is deliberate, so the silent skip that let apply --prune delete a
// subdirectory's objects cannot happen by accident.
const CatalogueMarker = ".sdn-catalogue"

// isCatalogue reports whether dir holds the CatalogueMarker.
func isCatalogue(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, CatalogueMarker))
	return err == nil
}

// isDirEntry reports whether a directory entry is a directory or a link to
// one.
func isDirEntry(full string, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&fs.ModeSymlink != 0 {
		fi, err := os.Stat(full)
		return err == nil && fi.IsDir()
	}
	return false
}

// hclDirs returns the directories at or under root (links not followed,
// hidden directories skipped, at most maxWalk entries looked at) that hold
// .hcl files themselves.
func hclDirs(root string) []string {
	var dirs []string
	seen := 0
	walk, err := filepath.EvalSymlinks(root) // a link to a directory is walked as one
	if err != nil {
		return nil
	}
	_ = filepath.WalkDir(walk, func(path string, d fs.DirEntry, err error) error {
		if seen++; seen > maxWalk {
			return fs.SkipAll
		}
		switch {
		case err != nil:
			return nil // unreadable: not ours to judge here
		case d.IsDir() && path != walk && strings.HasPrefix(d.Name(), "."):
			return fs.SkipDir
		case !d.IsDir() && isHCLName(d.Name()):
			rel, _ := filepath.Rel(walk, filepath.Dir(path))
			if dir := filepath.Join(root, rel); len(dirs) == 0 || dirs[len(dirs)-1] != dir {
				dirs = append(dirs, dir)
			}
		}
		return nil
	})
	return dirs
}

// ReadFile reads a regular file of at most MaxFileBytes, refusing anything
// else (a FIFO, a socket, a device) without waiting on it. sdnd reads its
// --config file with it.
func ReadFile(name string) ([]byte, error) {
	src, _, err := readRegular(name)
	return src, err
}

// readSource reads one file for LoadPaths, as ReadFile does, and turns a
// failure into a diagnostic.
func readSource(name string) ([]byte, os.FileInfo, *hcl.Diagnostic) {
	src, fi, err := readRegular(name)
	if err == nil {
		return src, fi, nil
	}
	var fe *fileError
	if errors.As(err, &fe) {
		return nil, nil, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fe.summary, Detail: fe.detail}
	}
	return nil, nil, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read file", Detail: fmt.Sprintf("%v.", err)}
}

// fileError is a file readRegular refuses: a diagnostic's summary and
// detail; the detail is its Error.
type fileError struct{ summary, detail string }

func (e *fileError) Error() string { return e.detail }

// readRegular reads a regular file of at most MaxFileBytes. The name is
// checked with stat before it is opened (a FIFO would block the reader
// until someone writes, a device may never end), and the opened file again,
// since the name may have changed between the two; the open does not wait
// for a FIFO's writer.
func readRegular(name string) ([]byte, os.FileInfo, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, nil, err
	}
	if err := checkFileInfo(name, fi); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, nil, err
	}
	if err := checkFileInfo(name, fi); err != nil {
		return nil, nil, err
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(src) > MaxFileBytes {
		return nil, nil, tooLarge(name, int64(len(src)))
	}
	return src, fi, nil
}

// checkFileInfo refuses what is not a regular file of at most MaxFileBytes.
func checkFileInfo(name string, fi os.FileInfo) error {
	m := fi.Mode()
	if m.IsRegular() {
		if fi.Size() > MaxFileBytes {
			return tooLarge(name, fi.Size())
		}
		return nil
	}
	kind := "not a regular file"
	switch {
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	case m.IsDir():
		kind = "a directory"
	}
	return &fileError{"Not a regular file",
		fmt.Sprintf("%s is %s; only regular files are read, so copy what it holds into a file and name that.", name, kind)}
}

func tooLarge(name string, size int64) error {
	return &fileError{"File too large", fmt.Sprintf("%s is %d bytes, more than the %d (8 MiB) one file may hold; split it into several files.",
		name, size, MaxFileBytes)}
}

// sameFiles remembers files by identity (device and inode), so one file
// named by two spellings, or through a link, counts once.
type sameFiles struct{ bySize map[int64][]os.FileInfo }

// seen reports whether fi is a file already added, and adds it if not.
func (s *sameFiles) seen(fi os.FileInfo) bool {
	if s.has(fi) {
		return true
	}
	if s.bySize == nil {
		s.bySize = map[int64][]os.FileInfo{}
	}
	s.bySize[fi.Size()] = append(s.bySize[fi.Size()], fi)
	return false
}

func (s *sameFiles) has(fi os.FileInfo) bool {
	for _, o := range s.bySize[fi.Size()] {
		if os.SameFile(o, fi) {
			return true
		}
	}
	return false
}
