// Package cells measures text as a terminal shows it: Width is how many
// columns a string takes, for the printers that line text up (the
// carets under a diagnostic's source line, the columns of `fsmc ls`).
// A string goes in and a count comes out; nothing is kept.
package cells

import (
	"unicode"

	"golang.org/x/text/width"
)

// Width is how many terminal columns s takes: two for each wide
// character (CJK, say), none for a combining mark, one for the rest.
func Width(s string) int {
	n := 0
	for _, r := range s {
		switch k := width.LookupRune(r).Kind(); {
		case k == width.EastAsianWide || k == width.EastAsianFullwidth:
			n += 2
		case unicode.In(r, unicode.Mn, unicode.Me):
		default:
			n++
		}
	}
	return n
}
