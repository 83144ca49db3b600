package cnisrv

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// perHostName makes a name that is unique only on its host (a Podman
// container's, CNIRequest.name_per_host) unique in its network:
// "<name>-<host>", the host's dots as '-', cut to a DNS label's 63
// characters with 8 hex digits of the whole's hash when longer, so two long
// names stay distinct.
func perHostName(name, node string) string {
	full := name + "-" + strings.ReplaceAll(node, ".", "-")
	if len(full) <= 63 {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	return strings.TrimRight(full[:54], "-") + "-" + hex.EncodeToString(sum[:4])
}
