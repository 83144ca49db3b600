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

// fileRange fills a range's byte offsets from the source of its file, when
// known, so that other HCL tools can slice the source with it.
func fileRange(files map[string]*hcl.File, r hcl.Range) hcl.Range {
	f := files[r.Filename]
	if f == nil {
		return r
	}
	r.Start.Byte = byteOffset(f.Bytes, r.Start)
	r.End.Byte = byteOffset(f.Bytes, r.End)
	return r
}

func byteOffset(src []byte, p hcl.Pos) int {
	off := 0
	for line := 1; line < p.Line; line++ {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			return len(src)
		}
		off += i + 1
	}
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

// WriteDiagnostics renders diagnostics for a terminal: for each, its
// DiagnosticLine, then the source line(s) it points at with the range
// marked, when the file is in files. Blocks are separated by a blank line.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) error {
	var buf bytes.Buffer
	for i, d := range diags {
		if i > 0 {
			buf.WriteByte('\n')
		}
		buf.WriteString(DiagnosticLine(d))
		buf.WriteByte('\n')
		if d.Subject != nil {
			if f := files[d.Subject.Filename]; f != nil {
				writeSnippet(&buf, f.Bytes, *d.Subject)
			}
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// writeSnippet prints the lines r covers, each followed by a line of carets
// under the covered columns. Long ranges show their first and last lines.
func writeSnippet(buf *bytes.Buffer, src []byte, r hcl.Range) {
	lines := strings.Split(string(src), "\n")
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
		text := []rune(strings.TrimRight(lines[n-1], "\r"))
		c0, c1 := 0, len(text)
		if n == first {
			c0 = min(max(r.Start.Column-1, 0), len(text))
		} else {
			for c0 < len(text) && (text[c0] == ' ' || text[c0] == '\t') {
				c0++ // mark a continuation line from its text, not its indent
			}
		}
		if n == r.End.Line {
			c1 = min(max(r.End.Column-1, 0), len(text))
		}
		if c1 <= c0 {
			c1 = c0 + 1 // an empty range, or one at the end of the line
		}
		var mark strings.Builder
		for _, ch := range text[:c0] {
			if ch == '\t' {
				mark.WriteByte('\t')
			} else {
				mark.WriteByte(' ')
			}
		}
		mark.WriteString(strings.Repeat("^", c1-c0))
		fmt.Fprintf(buf, "%*d | %s\n", width, n, string(text))
		fmt.Fprintf(buf, "%*s | %s\n", width, "", mark.String())
	}
}
