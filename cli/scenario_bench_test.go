package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkRealClockSend runs a scenario of sends on the real clock,
// where each line waits for the workers to handle what it did: the
// cost per line is that wait.
func BenchmarkRealClockSend(b *testing.B) {
	src := filepath.Join(b.TempDir(), "t.fsm")
	err := os.WriteFile(src, []byte(`machine T {
    event Go
    initial state A {
        on Go -> A
    }
}
`), 0o644)
	if err != nil {
		b.Fatal(err)
	}
	scenario := "start T t\n" + strings.Repeat("send t Go\n", b.N)
	b.ResetTimer()
	var stdout, stderr strings.Builder
	if code := Main([]string{"fsmc", "run", src}, strings.NewReader(scenario), &stdout, &stderr); code != 0 {
		b.Fatalf("exit %d: %s", code, stderr.String())
	}
}
