package ir

import (
	"regexp"
	"testing"
)

// positionRegexp is the pattern withoutPositions removes, written as a
// regular expression: the reference the scan is held to.
var positionRegexp = regexp.MustCompile(`,"pos":\{"line":-?\d+,"column":-?\d+\}`)

func TestWithoutPositionsMatchesPattern(t *testing.T) {
	for _, s := range []string{
		``,
		`{"name":"A","pos":{"line":3,"column":9}}`,
		`[{"a":1,"pos":{"line":1,"column":1}},{"b":2,"pos":{"line":-1,"column":-20}}]`,
		`{"a":1,"pos":{"line":,"column":1}}`,
		`{"a":1,"pos":{"line":1,"column":}}`,
		`{"a":1,"pos":{"line":1,"column":2,"x":3}}`,
		`{"a":1,"pos":{"line":1,"col":2}}`,
		`{"a":1,"pos":{"line":-,"column":2}}`,
		`,"pos":{"line":1,"column":2`,
		`,"pos":{"line":1`,
		`,"pos":{"line":,"pos":{"line":1,"column":2}`,
		`,"pos":{"line":1,"column":2},"pos":{"line":3,"column":4}`,
	} {
		want := string(positionRegexp.ReplaceAll([]byte(s), nil))
		if got := string(withoutPositions([]byte(s))); got != want {
			t.Errorf("%s:\ngot  %s\nwant %s", s, got, want)
		}
	}
}

func FuzzWithoutPositions(f *testing.F) {
	f.Add([]byte(`{"a":1,"pos":{"line":1,"column":2}}`))
	f.Add([]byte(`,"pos":{"line":,"pos":{"line":1,"column":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := string(positionRegexp.ReplaceAll(b, nil))
		if got := string(withoutPositions(append([]byte(nil), b...))); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}
