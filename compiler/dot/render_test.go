package dot_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"image/png"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/compiler/dot"
	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/fsmgen"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/rogpeppe/go-internal/txtar"
)

// files gathers the examples and the compiler's own golden cases.
func files(t *testing.T) map[string]*ir.File {
	out := map[string]*ir.File{}
	for name, src := range irtest.Examples(t) {
		out[name] = irtest.Compile(t, name, src)
	}
	ar, err := txtar.ParseFile("../testdata/unusual.txtar")
	if err != nil {
		t.Fatal(err)
	}
	out["unusual.fsm"] = irtest.Compile(t, "unusual.fsm", ar.Files[0].Data)
	return out
}

// svgTexts parses an SVG document and returns all its text content.
func svgTexts(t *testing.T, svg []byte) string {
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var texts strings.Builder
	sawSVG := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			sawSVG = sawSVG || tok.Name.Local == "svg"
		case xml.CharData:
			texts.Write(tok)
			texts.WriteByte('\n')
		}
	}
	if !sawSVG {
		t.Fatal("no <svg> element")
	}
	return texts.String()
}

func TestSVGAndPNG(t *testing.T) {
	ctx := context.Background()
	for name, f := range files(t) {
		t.Run(name, func(t *testing.T) {
			var d bytes.Buffer
			if err := dot.Write(&d, f.Machines); err != nil {
				t.Fatal(err)
			}
			svg, err := dot.Render(ctx, d.Bytes(), "svg")
			if err != nil {
				t.Fatal(err)
			}
			texts := svgTexts(t, svg)
			for _, m := range f.Machines {
				for _, s := range m.States {
					if !strings.Contains(texts, s.Name) {
						t.Errorf("state %q is not in the SVG", s.Name)
					}
				}
			}
			img, err := dot.Render(ctx, d.Bytes(), "png")
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := png.Decode(bytes.NewReader(img))
			if err != nil {
				t.Fatalf("PNG does not decode: %v", err)
			}
			if b := decoded.Bounds(); b.Dx() < 50 || b.Dy() < 50 {
				t.Errorf("PNG is only %v", b)
			}
		})
	}
}

// TestLabelsSurviveRendering checks the escaping of a label full of
// special characters end to end: Graphviz must read the DOT back to the
// original text.
func TestLabelsSurviveRendering(t *testing.T) {
	f := files(t)["unusual.fsm"]
	var d bytes.Buffer
	if err := dot.Write(&d, f.Machines); err != nil {
		t.Fatal(err)
	}
	svg, err := dot.Render(context.Background(), d.Bytes(), "svg")
	if err != nil {
		t.Fatal(err)
	}
	texts := svgTexts(t, svg)
	for _, want := range []string{`event.text == "a\"b %%{x"`, `"\t<&>"`, `set note = "after: \"done\""`, "`x` -- y --> z", `"<b>x</b>; #quot; &lt;&#38;&amp; & x"`} {
		if !strings.Contains(texts, want) {
			t.Errorf("SVG text lacks %s:\n%s", want, texts)
		}
	}
}

func TestRenderRejectsUnknownFormat(t *testing.T) {
	if _, err := dot.Render(context.Background(), []byte("digraph{}"), "gif"); err == nil {
		t.Fatal("gif should be refused")
	}
	if _, err := dot.Render(context.Background(), []byte("digraph {"), "svg"); err == nil {
		t.Fatal("broken DOT should be an error")
	}
}

// BenchmarkRenderLarge draws generated machines (internal/fsmgen) of
// more than LargeStates states, or LargeEdges edges (dense: every state
// linked to every state), as SVG: the bounded layout's cost.
func BenchmarkRenderLarge(b *testing.B) {
	sources := map[string][]byte{}
	for _, states := range []int{70, 100, 300} {
		sources[fmt.Sprintf("states=%d", states)] = fsmgen.Machine(states)
	}
	for _, states := range []int{20, 31, 42} { // every state linked to every state
		sources[fmt.Sprintf("dense=%d", states)] = fsmgen.Dense(states)
	}
	names := slices.Sorted(maps.Keys(sources))
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			f := irtest.Compile(b, "big.fsm", sources[name])
			var text bytes.Buffer
			if err := dot.Write(&text, f.Machines); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := dot.Render(context.Background(), text.Bytes(), "svg"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
