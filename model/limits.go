package model

import "fmt"

// The API's message sizes (docs/design.md, "Message sizes and paging").
// gRPC's default, 4 MiB each way, is too small for a cluster's lists and
// for an apply of a large configuration; these are sdn's own.
const (
	// MaxRequestBytes is the largest request message a server takes: one
	// apply's objects, as sdnctl sends them (without source ranges). It
	// bounds the raft entry an apply becomes, the leader's memory while it
	// applies it (some 50 times the request at the peak) and how long
	// other writes wait meanwhile (some 3 s per 100,000 objects). 100,000
	// networks with three labels each are 8 to 12 MiB, with the file
	// name each carries. sdnctl refuses a bigger apply before sending it,
	// and a server refuses one with a message saying so.
	MaxRequestBytes = 16 << 20
	// MaxResponseBytes is the largest message sdn's clients accept from a
	// server: sdnctl's answers, an agent's watch events (one revision's
	// changes are one event, so an apply's delta may be a few times its
	// request), a server's answer to a call another server forwarded.
	// Lists come in pages far below it (ListStream).
	MaxResponseBytes = 256 << 20
)

// FormatOver renders a size and the limit it exceeds for a message, in
// MiB with one decimal ("20.5 MiB", "16.0 MiB"), or in bytes when that
// would show them equal ("16777624 bytes", "16777216 bytes").
func FormatOver(size, limit int) (string, string) {
	s, l := fmt.Sprintf("%.1f MiB", float64(size)/(1<<20)), fmt.Sprintf("%.1f MiB", float64(limit)/(1<<20))
	if s == l {
		return fmt.Sprintf("%d bytes", size), fmt.Sprintf("%d bytes", limit)
	}
	return s, l
}

// MaxApplyObjects is the most objects (the cluster block, networks and
// workloads together) one apply may declare; the HCL decoder refuses more
// before anything is sent. 100,000 labelled networks fit in
// MaxRequestBytes, so what validates locally is not refused for its size.
const MaxApplyObjects = 100000
