package model

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	long := strings.Repeat("a", 1<<20)
	for _, tc := range []struct{ in, want string }{
		{"proj1", `"proj1"`},
		{"", `""`},
		{strings.Repeat("x", MaxEcho), `"` + strings.Repeat("x", MaxEcho) + `"`},
		{long, `"` + strings.Repeat("a", MaxEcho) + `"... (1048576 bytes)`},
		// Cut on a rune boundary: 63 ASCII bytes, then a 2-byte rune.
		{strings.Repeat("b", MaxEcho-1) + "öö", `"` + strings.Repeat("b", MaxEcho-1) + `"... (67 bytes)`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%d bytes) = %.100s, want %.100s", len(tc.in), got, tc.want)
		}
	}
}

// A huge value in any rule's message is echoed cut short: an operator who
// pasted a megabyte by mistake gets a line, not a megabyte, back.
func TestErrorsEchoValuesShort(t *testing.T) {
	huge := strings.Repeat("a", 1<<20)
	for name, err := range map[string]error{
		"ValidateName":       ValidateName(huge),
		"ValidateNodeName":   ValidateNodeName(huge),
		"node name part":     ValidateNodeName(huge[:300] + ".x"),
		"ValidateLabelKey":   ValidateLabelKey(huge + "/k"),
		"label key prefix":   ValidateLabelKey(huge[:200] + "/k"),
		"label key name":     ValidateLabelKey(huge),
		"ValidateLabelValue": ValidateLabelValue(huge),
		"ParseIPv4Prefix":    second(ParseIPv4Prefix("cidr", huge)),
		"ParseIPv4Prefix ip": second(ParseIPv4Prefix("cidr", "10.0.0.1"+huge)),
		"ParseIPv4":          second(ParseIPv4("ip", huge)),
		"ParseMAC":           second(ParseMAC("mac", huge)),
	} {
		if err == nil {
			t.Errorf("%s: no error for a 1 MB value", name)
			continue
		}
		if msg := err.Error(); len(msg) > 400 {
			t.Errorf("%s: a %d-byte message for a 1 MB value: %.200s...", name, len(msg), msg)
		}
	}
}

func second[T any](_ T, err error) error { return err }
