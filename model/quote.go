package model

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxEcho is how many bytes of a value a message quotes back. A value the
// rules refuse may be huge (a megabyte pasted by mistake, a hostile file);
// the message names it by its start and its size instead of echoing it.
const MaxEcho = 64

// Quote quotes s for a message, as %q does, cutting it after MaxEcho bytes
// (on a rune boundary) and saying how long it was:
//
//	"aaaa…aaaa"... (1048576 bytes)
//
// Every message that echoes a value from the user goes through it.
func Quote(s string) string {
	if len(s) <= MaxEcho {
		return strconv.Quote(s)
	}
	cut := MaxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:cut]), len(s))
}

// clip shortens a text that may embed a value (a parser's reason, say) to
// about twice MaxEcho bytes.
func clip(s string) string {
	if len(s) <= 2*MaxEcho {
		return s
	}
	cut := 2 * MaxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
