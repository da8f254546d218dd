package main

import (
	"strings"
	"testing"
)

// TestOrdersEnd builds and runs the program: every order ends, small ones
// paid and large ones declined into Failed.
func TestOrdersEnd(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 8 {
		t.Fatalf("want 8 orders:\n%s", out.String())
	}
	for _, line := range lines {
		f := strings.Fields(line)
		amount, state, tx := f[2], f[3], f[5]
		large := len(amount) >= 4 && amount > "1000"
		switch {
		case large && (state != "Failed" || tx != `""`):
			t.Errorf("a declined order should fail without a transaction: %s", line)
		case !large && (state != "Done" || !strings.HasPrefix(tx, `"tx-`)):
			t.Errorf("a small order should be paid: %s", line)
		}
	}
}
