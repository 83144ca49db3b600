package spec

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"

	"github.com/sdn-dev/sdn/model"
)

// Limits on what one file may hold, checked before hcl parses it. hcl's
// parser recurses once per bracket and holds every token of a file at once,
// so a hostile file (100,000 nested parentheses in 200 KB) would otherwise
// overflow its stack; these keep a refusal cheap and its memory bounded.
const (
	// MaxDepth is how deeply (, [ and { may nest. The schema needs 2 (a
	// block and a labels map); 32 leaves room and stays far from trouble.
	MaxDepth = 32
	// MaxFileBytes is the largest file read (8 MiB): 100,000 objects fit in
	// a few files of it.
	MaxFileBytes = 8 << 20
	// maxNameBytes is the longest identifier: no attribute, block type or
	// label key written without quotes is longer than 63 characters.
	maxNameBytes = 63
	// MaxTokens is how many tokens (names, values, brackets, other symbols
	// and line ends) one file may hold. hcl needs 600 to 750 bytes of
	// memory a token while it parses (an 8 MiB list of numbers took 3 GB),
	// so a file is parsed in under 1 GB. A workload block is about 30
	// tokens: 100,000 workloads take four files.
	MaxTokens = 1000000
	// maxScanDiags is how many problems the scan reports before it stops.
	maxScanDiags = 10
)

// CheckSource scans a file's bytes the way hcl's lexer does, without
// building tokens, and refuses what this package never accepts before hcl
// parses it: nesting deeper than MaxDepth, string interpolation and
// template directives (${...}, %{...}; $${ and %%{ are literal), operators
// (values are literals), and names longer than any the schema has. It also
// refuses files larger than MaxFileBytes. It reports at most a few
// problems, each at its file:line,col; no diagnostics means hcl may parse
// the file. sdnd's config file reader uses it too.
func CheckSource(filename string, src []byte) hcl.Diagnostics {
	if len(src) > MaxFileBytes {
		fe := tooLarge(filename, int64(len(src))).(*fileError)
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: fe.summary, Detail: fe.detail}}
	}
	s := &scanner{src: src, filename: filename}
	s.run()
	return s.diags
}

// scanner walks src in hcl's lexical modes: code, quoted strings, heredocs
// and comments (scan_tokens.rl in hcl's hclsyntax is the reference).
type scanner struct {
	src      []byte
	filename string
	i        int // the next byte
	depth    int
	maxDepth int // the deepest nesting seen
	braces   int // hcl's lexer's count of { and }, which ends template sequences
	tokens   int // about as many as hcl's lexer would make so far
	diags    hcl.Diagnostics
	stopped  bool // a limit was hit: nothing more is scanned
}

// run scans the file as code.
func (s *scanner) run() { s.code(false) }

// code scans code until the end of the file or a limit: a nesting past
// MaxDepth, more than MaxTokens tokens, or maxScanDiags problems. In a
// template sequence (inTemplate) it returns after the '}' that closes it:
// as in hcl's lexer, the one that brings the count of braces back to what
// it was after the sequence's ${ or %{, whatever parentheses are open.
// Every case but spaces counts a token.
func (s *scanner) code(inTemplate bool) {
	ret := s.braces
	for s.i < len(s.src) && !s.stopped {
		if s.tokens > MaxTokens {
			s.errorAt(s.i, 1, "File too complex", fmt.Sprintf(
				"%s holds more than %d tokens (names, values, brackets, other symbols and line ends) by here, the most one file may hold; split it into several files.",
				s.filename, MaxTokens))
			s.stopped = true
			return
		}
		c := s.src[s.i]
		if c != ' ' && c != '\t' && c != '\r' {
			s.tokens++
		}
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ':' || c == '.':
			s.i++
		case c == '#':
			s.skipLine()
		case c == '/' && s.peek(1) == '/':
			s.skipLine()
		case c == '/' && s.peek(1) == '*' && bytes.Contains(s.src[s.i+2:], []byte("*/")):
			s.i += 2 + bytes.Index(s.src[s.i+2:], []byte("*/")) + 2
		case c == '"':
			s.quoted()
		case c == '<' && s.heredocStart():
		case c == '{':
			s.braces++
			s.open(1)
		case c == '(' || c == '[':
			s.open(1)
		case c == '}':
			s.depth = max(s.depth-1, 0)
			s.i++
			if inTemplate && s.braces == ret {
				s.braces--
				return
			}
			s.braces--
		case c == ')' || c == ']':
			s.depth = max(s.depth-1, 0)
			s.i++
		case c >= '0' && c <= '9':
			s.number()
		case c == '-':
			s.minus()
		case c == '=':
			s.equals()
		case c == '!' || c == '?' || c == '+' || c == '*' || c == '/' || c == '%' || c == '&' || c == '|' || c == '<' || c == '>':
			s.operator()
		default:
			s.other()
		}
	}
}

// open enters a nesting level at the n bytes of s.i (a bracket, or ${ or
// %{), refusing one past MaxDepth.
func (s *scanner) open(n int) {
	s.depth++
	s.maxDepth = max(s.maxDepth, s.depth)
	if s.depth > MaxDepth {
		s.errorAt(s.i, n, "Nesting too deep", fmt.Sprintf(
			"Brackets nest more than %d deep here, far deeper than any value sdn reads (strings, numbers, and lists and maps of them): the file is damaged or not an sdn file.",
			MaxDepth))
		s.stopped = true
		return
	}
	s.i += n
}

func (s *scanner) peek(n int) byte {
	if s.i+n < len(s.src) {
		return s.src[s.i+n]
	}
	return 0
}

func (s *scanner) skipLine() {
	if j := bytes.IndexByte(s.src[s.i:], '\n'); j >= 0 {
		s.i += j
		return
	}
	s.i = len(s.src)
}

// quoted skips a quoted string. Like hcl's lexer it ends at the closing
// quote, not at a newline; a backslash escapes the character after it.
func (s *scanner) quoted() {
	s.i++
	s.tokens += 2 // the quotes and the text between
	for s.i < len(s.src) && !s.stopped {
		switch c := s.src[s.i]; {
		case c == '"':
			s.i++
			return
		case c == '\\' && s.peek(1) != '\r' && s.peek(1) != '\n' && s.peek(1) != 0:
			s.i += 2
		case c == '$' || c == '%':
			s.templateMark()
		default:
			s.i++
		}
	}
}

// templateMark handles a '$' or '%' in a string: "$${" and "%%{" are
// literal, "${" and "%{" start a template sequence, which is refused and
// then scanned as the code it holds, as hcl's lexer does.
func (s *scanner) templateMark() {
	c := s.src[s.i]
	switch {
	case s.peek(1) == c && s.peek(2) == '{':
		s.i += 3
	case s.peek(1) == '{':
		what, esc := "Interpolation", "$${"
		if c == '%' {
			what, esc = "Template directive", "%%{"
		}
		s.errorAt(s.i, 2, what+" is not supported", fmt.Sprintf(
			"Values in these files are literals: %s...} is not evaluated here, so write the value itself; write %s for a literal %s.",
			string(c)+"{", esc, string(c)+"{"))
		s.braces++
		if s.open(2); !s.stopped {
			s.code(true)
		}
	default:
		s.i++
	}
}

// heredocStart scans a heredoc if one starts at s.i (<<EOT or <<-EOT, then
// a newline) and reports whether it did. The heredoc ends at a line that
// holds only its marker, spaces around it allowed.
func (s *scanner) heredocStart() bool {
	j := s.i + 2
	if s.peek(1) != '<' {
		return false
	}
	if j < len(s.src) && s.src[j] == '-' {
		j++
	}
	start := j
	j = identEnd(s.src, j)
	if j == start {
		return false
	}
	marker := s.src[start:j]
	switch {
	case j < len(s.src) && s.src[j] == '\n':
		j++
	case j+1 < len(s.src) && s.src[j] == '\r' && s.src[j+1] == '\n':
		j += 2
	default:
		return false
	}
	s.i = j
	atLineStart := true
	for s.i < len(s.src) && !s.stopped {
		if atLineStart {
			end := bytes.IndexByte(s.src[s.i:], '\n')
			if end >= 0 && bytes.Equal(bytes.TrimSpace(s.src[s.i:s.i+end]), marker) {
				s.i += end // the newline after the marker is code
				return true
			}
		}
		switch c := s.src[s.i]; {
		case c == '\n':
			s.tokens++
			s.i++
			atLineStart = true
		case c == '$' || c == '%':
			s.templateMark()
			atLineStart = false
		default:
			s.i++
			atLineStart = false
		}
	}
	return true
}

// number skips a number literal: digits, '.', and an exponent.
func (s *scanner) number() {
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c >= '0' && c <= '9' || c == '.':
			s.i++
		case (c == 'e' || c == 'E') && s.expDigit():
			s.i++
			if s.src[s.i] == '+' || s.src[s.i] == '-' {
				s.i++
			}
		default:
			return
		}
	}
}

func (s *scanner) expDigit() bool {
	n := s.peek(1)
	if n == '+' || n == '-' {
		n = s.peek(2)
	}
	return n >= '0' && n <= '9'
}

// minus allows a '-' that negates a number (mtu = -1 is out of range, not
// an expression); any other is an operator.
func (s *scanner) minus() {
	j := s.i + 1
	for j < len(s.src) && (s.src[j] == ' ' || s.src[j] == '\t') {
		j++
	}
	if j < len(s.src) && s.src[j] >= '0' && s.src[j] <= '9' {
		s.i = j
		return
	}
	s.operator()
}

// equals allows '=' (an attribute or a map item) and "=>" (a for
// expression, which the literal check names); "==" is an operator.
func (s *scanner) equals() {
	switch s.peek(1) {
	case '=':
		s.operator()
	case '>':
		s.i += 2
	default:
		s.i++
	}
}

// operator refuses the operator at s.i: values are literals.
func (s *scanner) operator() {
	n := 1
	if s.i+1 < len(s.src) {
		switch string(s.src[s.i : s.i+2]) {
		case "==", "!=", "<=", ">=", "&&", "||":
			n = 2
		}
	}
	op := string(s.src[s.i : s.i+n])
	s.errorAt(s.i, n, "Expressions are not supported", fmt.Sprintf(
		"%q is an operator, but values in these files are literals: a quoted string, a number, true, false or null, or a list [...] or map { ... } of them; write the value itself.",
		op))
	s.i += n
}

// other skips an identifier (checking its length) or any other character,
// which hcl's parser judges.
func (s *scanner) other() {
	if end := identEnd(s.src, s.i); end > s.i {
		if end-s.i > maxNameBytes {
			s.errorAt(s.i, end-s.i, "Name too long", fmt.Sprintf(
				"The name %s is longer than %d bytes, longer than any attribute, block type or label key can be.",
				model.Quote(string(s.src[s.i:end])), maxNameBytes))
		}
		s.i = end
		return
	}
	_, size := utf8.DecodeRune(s.src[s.i:])
	s.i += size
}

// identEnd returns the end of the identifier that starts at i, or i when
// none does: (ID_Start | '_') (ID_Continue | '-')*, as hcl's lexer has it.
func identEnd(src []byte, i int) int {
	if i >= len(src) {
		return i
	}
	r, size := utf8.DecodeRune(src[i:])
	if r != '_' && !isIDStart(r) {
		return i
	}
	j := i + size
	for j < len(src) {
		r, size := utf8.DecodeRune(src[j:])
		if r != '-' && !isIDContinue(r) {
			break
		}
		j += size
	}
	return j
}

func isIDStart(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	return (unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_ID_Start, r)) &&
		!unicode.Is(unicode.Pattern_Syntax, r) && !unicode.Is(unicode.Pattern_White_Space, r)
}

func isIDContinue(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'
	}
	return isIDStart(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Pc, unicode.Other_ID_Continue)
}

// errorAt records a problem at the n bytes from off; after maxScanDiags
// the scan stops.
func (s *scanner) errorAt(off, n int, summary, detail string) {
	r := rangeAt(s.filename, s.src, off, n)
	s.diags = append(s.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r})
	if len(s.diags) >= maxScanDiags {
		s.stopped = true
	}
}

// rangeAt is the source range of the n bytes at off: lines from 1, columns
// in characters from 1, as hcl counts them.
func rangeAt(filename string, src []byte, off, n int) hcl.Range {
	pos := func(off int) hcl.Pos {
		line := 1 + bytes.Count(src[:off], []byte("\n"))
		start := bytes.LastIndexByte(src[:off], '\n') + 1
		return hcl.Pos{Line: line, Column: 1 + utf8.RuneCount(src[start:off]), Byte: off}
	}
	return hcl.Range{Filename: filename, Start: pos(off), End: pos(off + n)}
}
