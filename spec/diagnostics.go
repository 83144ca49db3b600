package spec

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// SourceRange converts an HCL range to the API's form (lines and columns;
// byte offsets are dropped).
func SourceRange(r hcl.Range) *sdnv1.SourceRange {
	return &sdnv1.SourceRange{
		File:        r.Filename,
		StartLine:   int32(r.Start.Line),
		StartColumn: int32(r.Start.Column),
		EndLine:     int32(r.End.Line),
		EndColumn:   int32(r.End.Column),
	}
}

// HCLRange converts an API source range back to an HCL range. Byte offsets
// are unknown and left zero; WriteDiagnostics needs only lines and columns.
func HCLRange(sr *sdnv1.SourceRange) hcl.Range {
	if sr == nil {
		return hcl.Range{}
	}
	return hcl.Range{
		Filename: sr.GetFile(),
		Start:    hcl.Pos{Line: int(sr.GetStartLine()), Column: int(sr.GetStartColumn())},
		End:      hcl.Pos{Line: int(sr.GetEndLine()), Column: int(sr.GetEndColumn())},
	}
}

// lineIndex caches, per file, the byte offset where each line starts, so
// that filling many ranges (one per duplicate in a generated file) stays
// linear in the file.
type lineIndex map[string][]int

// fileRange fills a range's byte offsets from the source of its file, when
// known, so that other HCL tools can slice the source with it.
func (x lineIndex) fileRange(files map[string]*hcl.File, r hcl.Range) hcl.Range {
	f := files[r.Filename]
	if f == nil {
		return r
	}
	starts, ok := x[r.Filename]
	if !ok {
		starts = []int{0}
		for i, c := range f.Bytes {
			if c == '\n' {
				starts = append(starts, i+1)
			}
		}
		x[r.Filename] = starts
	}
	r.Start.Byte = byteOffset(f.Bytes, starts, r.Start)
	r.End.Byte = byteOffset(f.Bytes, starts, r.End)
	return r
}

func byteOffset(src []byte, starts []int, p hcl.Pos) int {
	if p.Line < 1 || p.Line > len(starts) {
		return len(src)
	}
	off := starts[p.Line-1]
	for col := 1; col < p.Column && off < len(src) && src[off] != '\n'; col++ {
		_, size := utf8.DecodeRune(src[off:])
		off += size
	}
	return off
}

// sortDiags orders diagnostics by file (in the given order), then position.
// Diagnostics without a subject come first. hcl reports unknown arguments in
// map order; this makes the output stable.
func sortDiags(diags hcl.Diagnostics, files []string) {
	index := map[string]int{}
	for i, f := range files {
		index[f] = i
	}
	key := func(d *hcl.Diagnostic) (int, int, int) {
		if d.Subject == nil {
			return -1, 0, 0
		}
		fi, ok := index[d.Subject.Filename]
		if !ok {
			fi = len(files)
		}
		return fi, d.Subject.Start.Line, d.Subject.Start.Column
	}
	sort.SliceStable(diags, func(i, j int) bool {
		fi, li, ci := key(diags[i])
		fj, lj, cj := key(diags[j])
		if fi != fj {
			return fi < fj
		}
		if li != lj {
			return li < lj
		}
		return ci < cj
	})
}

// ViolationDiagnostics turns server-side violations into diagnostics whose
// subjects are the source ranges the request carried, so they render with
// file:line,col like local errors. A violation without a range gets no
// subject.
func ViolationDiagnostics(vs []*sdnv1.Violation) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, v := range vs {
		obj := v.GetKind()
		if v.GetName() != "" && obj != "cluster" {
			obj = fmt.Sprintf("%s %q", obj, v.GetName())
		}
		summary := "Refused by the server"
		switch {
		case v.GetKind() != "" && v.GetField() != "":
			summary = fmt.Sprintf("Invalid %s in %s", v.GetField(), obj)
		case v.GetKind() != "":
			summary = "Invalid " + obj
		}
		detail := v.GetMessage()
		if detail == "" {
			detail = "The server refused it without saying why."
		}
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
		if r := v.GetRange(); r != nil && r.GetFile() != "" && r.GetStartLine() > 0 {
			hr := HCLRange(r)
			d.Subject = &hr
		}
		diags = append(diags, d)
	}
	return diags
}

// DiagnosticLine is the one-line form of a diagnostic:
//
//	file.hcl:12,3-9: Summary; Detail
//
// Warnings say so ("file.hcl:12,3-9: Warning: Summary; Detail").
func DiagnosticLine(d *hcl.Diagnostic) string {
	var b strings.Builder
	if d.Subject != nil {
		b.WriteString(d.Subject.String())
		b.WriteString(": ")
	}
	if d.Severity == hcl.DiagWarning {
		b.WriteString("Warning: ")
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString("; ")
		b.WriteString(d.Detail)
	}
	return b.String()
}

// How much WriteDiagnostics shows: the first maxRendered diagnostics (the
// rest are counted), and of a source line longer than snippetWidth
// characters a window of that many, starting snippetLead before the range.
const (
	maxRendered  = 50
	snippetWidth = 100
	snippetLead  = 24
)

// WriteDiagnostics renders diagnostics for a terminal: for each, its
// DiagnosticLine, then the source line(s) it points at with the range
// marked, when the file is in files. Blocks are separated by a blank line.
// After maxRendered diagnostics it says how many more there are.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) error {
	var buf bytes.Buffer
	lines := map[string][]string{} // split once per file
	for i, d := range diags {
		if i == maxRendered {
			writeRest(&buf, diags[i:])
			break
		}
		if i > 0 {
			buf.WriteByte('\n')
		}
		buf.WriteString(DiagnosticLine(d))
		buf.WriteByte('\n')
		if d.Subject == nil {
			continue
		}
		if f := files[d.Subject.Filename]; f != nil {
			ls, ok := lines[d.Subject.Filename]
			if !ok {
				ls = strings.Split(string(f.Bytes), "\n")
				lines[d.Subject.Filename] = ls
			}
			writeSnippet(&buf, ls, *d.Subject)
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// writeRest counts the diagnostics not shown.
func writeRest(buf *bytes.Buffer, rest hcl.Diagnostics) {
	errs := len(rest.Errs())
	var parts []string
	if errs > 0 {
		parts = append(parts, fmt.Sprintf("%d more %s", errs, map[bool]string{true: "error", false: "errors"}[errs == 1]))
	}
	if warns := len(rest) - errs; warns > 0 {
		parts = append(parts, fmt.Sprintf("%d more %s", warns, map[bool]string{true: "warning", false: "warnings"}[warns == 1]))
	}
	fmt.Fprintf(buf, "\n... and %s not shown.\n", strings.Join(parts, " and "))
}

// writeSnippet prints the lines r covers, each followed by a line of carets
// under the covered columns. Long ranges show their first and last lines; a
// long line shows a window of snippetWidth characters around the range,
// "..." marking what is cut.
func writeSnippet(buf *bytes.Buffer, lines []string, r hcl.Range) {
	first, last := r.Start.Line, r.End.Line
	if last > first && r.End.Column <= 1 {
		last-- // the range ends at the start of a line: that line is not in it
	}
	if first < 1 || first > len(lines) {
		return
	}
	last = min(max(last, first), len(lines))
	width := len(fmt.Sprint(last))
	for n := first; n <= last; n++ {
		if last-first > 4 && n == first+3 {
			fmt.Fprintf(buf, "%*s | ...\n", width, "")
			n = last
		}
		text := strings.TrimRight(lines[n-1], "\r")
		size := utf8.RuneCountInString(text)
		c0, c1 := 0, size
		if n == first {
			c0 = min(max(r.Start.Column-1, 0), size)
		} else {
			for c0 < len(text) && (text[c0] == ' ' || text[c0] == '\t') {
				c0++ // mark a continuation line from its text, not its indent
			}
		}
		if n == r.End.Line {
			c1 = min(max(r.End.Column-1, 0), size)
		}
		if c1 <= c0 {
			c1 = c0 + 1 // an empty range, or one at the end of the line
		}
		w0, w1 := 0, size
		lead, trail := "", ""
		if size > snippetWidth {
			w0 = max(min(c0-snippetLead, size-snippetWidth), 0)
			w1 = w0 + snippetWidth
			if w0 > 0 {
				lead = "..."
			}
			if w1 < size {
				trail = "..."
			}
		}
		var mark strings.Builder
		mark.WriteString(strings.Repeat(" ", len(lead)))
		for _, ch := range runeRange(text, w0, max(min(c0, w1), w0)) {
			if ch == '\t' {
				mark.WriteByte('\t')
			} else {
				mark.WriteByte(' ')
			}
		}
		mark.WriteString(strings.Repeat("^", max(min(c1, w1)-max(c0, w0), 1)))
		fmt.Fprintf(buf, "%*d | %s%s%s\n", width, n, lead, runeRange(text, w0, w1), trail)
		fmt.Fprintf(buf, "%*s | %s\n", width, "", mark.String())
	}
}

// runeRange returns the characters i to j (exclusive) of s.
func runeRange(s string, i, j int) string {
	start, end, k := len(s), len(s), 0
	for off := range s {
		if k == i {
			start = off
		}
		if k == j {
			end = off
			break
		}
		k++
	}
	return s[start:end]
}
