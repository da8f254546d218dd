package dsl

import "testing"

func TestSarifURI(t *testing.T) {
	for path, want := range map[string]string{
		"order.fsm":        "order.fsm",
		"dir/a b.fsm":      "dir/a%20b.fsm",
		"x:y.fsm":          "x%3Ay.fsm", // not scheme "x"
		"dir/50%.fsm":      "dir/50%25.fsm",
		"/tmp/flows/a.fsm": "file:///tmp/flows/a.fsm",
		"/tmp/a b.fsm":     "file:///tmp/a%20b.fsm",
	} {
		if got := sarifURI(path); got != want {
			t.Errorf("sarifURI(%q) = %q, want %q", path, got, want)
		}
	}
}
