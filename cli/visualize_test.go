package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/compiler/dot"
	"github.com/fsmc/fsmc/internal/fsmgen"
)

// TestTooLargeToRender checks that SVG of more states than Graphviz lays
// out in reasonable time is refused, pointing to the text formats, which
// still work.
func TestTooLargeToRender(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "big.fsm")
	if err := os.WriteFile(src, fsmgen.Machine(dot.MaxRenderStates+1), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	svg := filepath.Join(dir, "big.svg")
	code := Main([]string{"fsmc", "visualize", src, "-o", svg}, strings.NewReader(""), &stdout, &stderr)
	if code != ExitUsage || !strings.Contains(stderr.String(), "501 states are too many to lay out as svg") || !strings.Contains(stderr.String(), "--format dot") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(svg); !os.IsNotExist(err) {
		t.Fatalf("an SVG was written: %v", err)
	}
	stderr.Reset()
	if code := Main([]string{"fsmc", "visualize", "--format", "dot", src, "-o", filepath.Join(dir, "big.dot")}, strings.NewReader(""), &stdout, &stderr); code != ExitOK {
		t.Fatalf("DOT: exit %d, stderr %q", code, stderr.String())
	}
}
