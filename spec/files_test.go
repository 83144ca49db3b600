package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeFiles writes name -> source under dir, making directories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loadLines loads paths and renders the diagnostics one per line.
func loadLines(t *testing.T, paths ...string) (*Document, string) {
	t.Helper()
	doc, diags := LoadPaths(paths)
	var out []string
	for _, d := range diags {
		out = append(out, DiagnosticLine(d))
	}
	return doc, strings.Join(out, "\n")
}

// A FIFO named with -f, or named *.hcl in a directory, is refused at once:
// reading it blocked sdnctl until someone wrote to it, and SIGTERM did not
// end the wait.
func TestLoadPathsRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.hcl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, paths := range [][]string{{fifo}, {dir}} {
		done := make(chan string, 1)
		go func() { _, out := loadLines(t, paths...); done <- out }()
		var out string
		select {
		case out = <-done:
		case <-time.After(time.Minute):
			// Unblock the reader so the test ends, then fail.
			if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				w.Close()
			}
			out = <-done
			t.Errorf("-f %v: LoadPaths blocked on the FIFO until it was opened for writing; got %q", paths, out)
			continue
		}
		want := "Not a regular file; " + fifo + " is a named pipe (FIFO); only regular files are read, so copy what it holds into a file and name that."
		if !strings.HasPrefix(out, want) {
			t.Errorf("-f %v: got %q, want %q...", paths, out, want)
		}
	}
}

// Files of any case of .hcl in a directory are read (A.HCL was skipped).
func TestLoadPathsExtensionCase(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.HCL":      "network \"upper\" {}\n",
		"b.Hcl":      "network \"mixed\" {}\n",
		"c.hcl":      "network \"lower\" {}\n",
		"d.hcl.orig": "network \"backup\" {}\n",
	})
	doc, out := loadLines(t, dir)
	if out != "" || len(doc.Networks) != 3 {
		t.Errorf("got %d networks and %q; want upper, mixed and lower and no diagnostics", len(doc.Networks), out)
	}
}

// One file named by two spellings, or through a link, is read once: it
// was read twice and every object in it was a duplicate of itself.
func TestLoadPathsSameFileTwice(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.hcl": "network \"proj1\" {}\n"})
	if err := os.Symlink("a.hcl", filepath.Join(dir, "link.hcl")); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "a.hcl"), filepath.Join(other, "elsewhere.hcl")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, paths := range [][]string{
		{"./a.hcl", "a.hcl"},
		{filepath.Join(dir, "a.hcl"), "a.hcl"},
		{"a.hcl", "link.hcl"},
		{"."},
		{dir, "a.hcl", filepath.Join(other, "elsewhere.hcl")},
	} {
		doc, out := loadLines(t, paths...)
		if out != "" || len(doc.Networks) != 1 || len(doc.Files) != 1 {
			t.Errorf("-f %v: got %d files, %d networks and %q; want the file read once, no diagnostics",
				paths, len(doc.Files), len(doc.Networks), out)
		}
	}
}

// A subdirectory holding .hcl files is an error unless named too: it was
// skipped silently, and apply --prune then deleted what it declares. One
// marked a catalogue (CatalogueMarker) is skipped on purpose.
func TestLoadPathsSubdirectories(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"top.hcl":                      "network \"top\" {}\n",
		"sub/s.hcl":                    "network \"sub\" {}\n",
		"empty/readme.txt":             "no hcl here\n",
		"deep/a/b/d.hcl":               "network \"deep\" {}\n",
		".git/objects/x.hcl":           "hidden: not ours\n",
		"linked/target/l.hcl":          "network \"linked\" {}\n",
		"catalogue/c.hcl":              "network \"catalogue\" {}\n",
		"catalogue/" + CatalogueMarker: "alternatives, applied one at a time\n",
	})
	t.Chdir(dir)
	if err := os.Symlink("linked/target", "tolink"); err != nil {
		t.Fatal(err)
	}
	_, out := loadLines(t, ".")
	for _, want := range []string{
		"Subdirectory not read; deep/a/b holds .hcl files, but -f . reads only the .hcl files directly in it. Name it too (-f deep/a/b) if its objects belong to this apply, or move it out: with apply --prune, objects declared only in files not read are deleted.",
		"Subdirectory not read; linked/target holds .hcl files",
		"Subdirectory not read; sub holds .hcl files",
		"Subdirectory not read; tolink holds .hcl files",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, ".git") || strings.Contains(out, "empty") || strings.Contains(out, "catalogue") {
		t.Errorf("hidden or .hcl-less directories reported:\n%s", out)
	}
	// Named too, they are read.
	doc, out := loadLines(t, ".", "sub", "deep/a/b", "linked/target", "tolink")
	if out != "" || len(doc.Networks) != 4 {
		t.Errorf("with the subdirectories named: %d networks and %q; want 4 and no diagnostics", len(doc.Networks), out)
	}
	// A directory with subdirectories only, none with .hcl files.
	_, out = loadLines(t, "empty")
	if out != "No HCL files; Directory empty holds no *.hcl files." {
		t.Errorf("empty: got %q", out)
	}
}

// A file over MaxFileBytes is refused by its size, before it is read.
func TestLoadPathsFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.hcl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileBytes + 1); err != nil { // sparse: no 8 MiB written
		t.Fatal(err)
	}
	f.Close()
	_, out := loadLines(t, path)
	want := fmt.Sprintf("File too large; %s is 8388609 bytes, more than the 8388608 (8 MiB) one file may hold; split it into several files.", path)
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	_, diags := Parse("big.hcl", make([]byte, MaxFileBytes+1))
	if len(diags) != 1 || diags[0].Summary != "File too large" {
		t.Errorf("Parse of %d bytes: %v", MaxFileBytes+1, diags)
	}
}

// More objects than one apply takes are refused, at the first one past the
// limit, across files.
func TestTooManyObjects(t *testing.T) {
	old := maxObjects
	maxObjects = 5
	t.Cleanup(func() { maxObjects = old })
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.hcl": "cluster {}\nnetwork \"a\" {}\nnetwork \"b\" {}\n",
		"b.hcl": "network \"c\" {}\nnetwork \"d\" {}\nnetwork \"e\" {}\n",
		"c.hcl": "network \"f\" {}\n",
	})
	_, out := loadLines(t, dir)
	want := filepath.Join(dir, "b.hcl") + ":3,1-12: Too many objects; This is object 6 of the files read (6 so far); one apply declares at most 5. Apply the files in parts, without --prune (which deletes what the files do not declare).\n" +
		filepath.Join(dir, "c.hcl") + ":1,1-12: Too many objects; This is object 7 of the files read (7 so far)"
	if !strings.HasPrefix(out, want) {
		t.Errorf("got:\n%s\nwant:\n%s...", out, want)
	}
	maxObjects = 6
	if _, out := loadLines(t, filepath.Join(dir, "a.hcl"), filepath.Join(dir, "b.hcl")); out != "" {
		t.Errorf("6 objects with a limit of 6: %s", out)
	}
}
