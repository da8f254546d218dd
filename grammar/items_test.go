package grammar

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// corpus gathers every .fsm text the repository holds: the examples and
// the inputs of the dsl golden tests, valid and broken alike.
func corpus(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	files, _ := filepath.Glob("../examples/*.fsm")
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = src
	}
	archives, _ := filepath.Glob("../dsl/testdata/*/*.txtar")
	for _, a := range archives {
		ar, err := txtar.ParseFile(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range ar.Files {
			if filepath.Ext(f.Name) == ".fsm" {
				out[a+"/"+f.Name] = f.Data
			}
		}
	}
	if len(out) < 50 {
		t.Fatalf("corpus has only %d files", len(out))
	}
	return out
}

// compareParsers requires Parser and Reference to agree on src: the same
// tree when it parses, the same error (message and position) when not.
func compareParsers(t testing.TB, name string, src []byte) {
	t.Helper()
	fast, fastErr := Parse("f.fsm", src)
	ref, refErr := ParseReference("f.fsm", src)
	if (fastErr == nil) != (refErr == nil) {
		t.Fatalf("%s: Parser error %v, Reference error %v", name, fastErr, refErr)
	}
	if fastErr != nil {
		if fastErr.Error() != refErr.Error() {
			t.Fatalf("%s: Parser error\n  %v\nReference error\n  %v", name, fastErr, refErr)
		}
		return
	}
	if !reflect.DeepEqual(fast.Tree, ref.Tree) {
		t.Fatalf("%s: Parser and Reference build different trees", name)
	}
}

func TestItemsMatchReference(t *testing.T) {
	for name, src := range corpus(t) {
		compareParsers(t, name, src)
	}
	for i, src := range []string{
		"machine M { state A { on E -> B /* c */ set a = 1 /* d */, b = c // e\n } }",
		"machine M { state A { after 5m * n -> B after d -> C set x = y } }",
		"machine M { state A { on done if a -> B on error -> C } }",
		// errors at each step of the two items
		"machine M { state A { on -> B } }",
		"machine M { state A { on E if -> B } }",
		"machine M { state A { on E if a b -> B } }",
		"machine M { state A { on E -> } }",
		"machine M { state A { on E -> B set } }",
		"machine M { state A { on E -> B set a } }",
		"machine M { state A { on E -> B set a = } }",
		"machine M { state A { on E -> B set a = 1, } }",
		"machine M { state A { after -> B } }",
		"machine M { state A { after 5m B } }",
		"machine M { state A { on E -> B",
		"machine M { state A { on machine -> B } }",
		"machine M { state A { do X { timeout -5s retry 3 backoff constant(1s) jitter equal } ignore a, done, error } }",
		"machine M { state A { do X { backoff linear(initial: 1s, step: 2s, max: 1m) } do Y {} do Z } }",
		"machine M { state A { do X { backoff exponential(initial: 1s, factor: 1.5) /* c */ } // d\n } }",
		"machine M { state A { do } }",
		"machine M { state A { do X { frob } } }",
		"machine M { state A { do X { timeout } } }",
		"machine M { state A { do X { timeout - } } }",
		"machine M { state A { do X { jitter some } } }",
		"machine M { state A { do X { backoff quadratic(1s) } } }",
		"machine M { state A { do X { backoff constant 1s } } }",
		"machine M { state A { do X { backoff constant(1s } } }",
		"machine M { state A { do X { backoff linear(initial: 1s) } } }",
		"machine M { state A { do X { backoff linear(step: 1s) } } }",
		"machine M { state A { do X { backoff linear(initial 1s) } } }",
		"machine M { state A { do X { backoff exponential(initial: 1s, factor: 2, min: 1s) } } }",
		"machine M { state A { do X { backoff exponential(initial: 1s, factor: 2 max: 1s) } } }",
		"machine M { state A { ignore } }",
		"machine M { state A { ignore a, } }",
		"machine M { state A { do X { retry \"3\" timeout true } } }",
	} {
		compareParsers(t, "case "+string(rune('a'+i)), []byte(src))
	}
}

func FuzzItemsMatchReference(f *testing.F) {
	for _, src := range corpus(f) {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		compareParsers(t, "fuzz input", src)
	})
}
