package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/compiler/dot"
	"github.com/fsmc/fsmc/internal/fsmgen"
)

// TestTooLargeToRender checks that SVG of more states, or more edges,
// than Graphviz lays out in reasonable time is refused, pointing to the
// text formats, which still work.
func TestTooLargeToRender(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, src, says string
	}{
		{"big", string(fsmgen.Machine(dot.MaxRenderStates + 1)), "501 states and 2500 transitions and timers are too many to lay out as svg"},
		{"dense", string(fsmgen.Dense(32)), "32 states and 1024 transitions and timers are too many to lay out as svg"},
	} {
		src := filepath.Join(dir, tc.name+".fsm")
		if err := os.WriteFile(src, []byte(tc.src), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr strings.Builder
		svg := filepath.Join(dir, tc.name+".svg")
		code := Main([]string{"fsmc", "visualize", src, "-o", svg}, strings.NewReader(""), &stdout, &stderr)
		if code != ExitUsage || !strings.Contains(stderr.String(), tc.says) || !strings.Contains(stderr.String(), "--format dot") {
			t.Fatalf("%s: exit %d, stderr %q", tc.name, code, stderr.String())
		}
		if _, err := os.Stat(svg); !os.IsNotExist(err) {
			t.Fatalf("%s: an SVG was written: %v", tc.name, err)
		}
		stderr.Reset()
		if code := Main([]string{"fsmc", "visualize", "--format", "dot", src, "-o", filepath.Join(dir, tc.name+".dot")}, strings.NewReader(""), &stdout, &stderr); code != ExitOK {
			t.Fatalf("%s DOT: exit %d, stderr %q", tc.name, code, stderr.String())
		}
	}
}
