package dsl_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/dsl"
	"github.com/fsmc/fsmc/grammar"
	"github.com/rogpeppe/go-internal/txtar"
)

var updateFormat = flag.Bool("update-format", false, "rewrite want.fsm in testdata/format")

// exampleFiles returns the .fsm files under examples/.
func exampleFiles(t testing.TB) []string {
	files, err := filepath.Glob("../examples/*.fsm")
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestExamplesAreCanonicalAndClean(t *testing.T) {
	files := exampleFiles(t)
	if len(files) < 5 {
		t.Fatalf("want at least 5 examples, found %d", len(files))
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, diags := dsl.Check(file, src); len(diags) > 0 {
			t.Errorf("%s is not clean: %v", file, diags)
		}
		out, diags := dsl.Format(file, src)
		if diags != nil {
			t.Fatalf("%s: %v", file, diags)
		}
		if !bytes.Equal(out, src) {
			t.Errorf("%s is not formatted canonically; run fsmc fmt -w %s", file, file)
		}
	}
}

// TestFormatCRLF: a CRLF file comes out in LF throughout, block
// comments included, and their lines lose trailing blanks (a CR before
// a CRLF too, so formatting once is enough).
func TestFormatCRLF(t *testing.T) {
	in := "machine M {\r\n    /* a \t\r\r\n       b */\r\n    event Go\r\n    initial state A {\r\n        on Go -> B\r\n    }\r\n    final state B\r\n}\r\n"
	got, diags := dsl.Format("crlf.fsm", []byte(in))
	if diags != nil {
		t.Fatal(diags)
	}
	if bytes.Contains(got, []byte("\r")) {
		t.Fatalf("a CR is left:\n%q", got)
	}
	if !bytes.Contains(got, []byte("/* a\n       b */")) {
		t.Fatalf("the comment's lines changed:\n%q", got)
	}
}

// TestFormatGolden formats each testdata/format case: in.fsm must give
// want.fsm, formatting want.fsm again must change nothing, and the
// tokens (comments included) must be the same as the input's.
func TestFormatGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/format/*.txtar")
	if len(cases) == 0 {
		t.Fatal("no format cases")
	}
	for _, path := range cases {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			in, want := fileOf(ar, "in.fsm"), fileOf(ar, "want.fsm")
			got, diags := dsl.Format("in.fsm", in)
			if diags != nil {
				t.Fatalf("format: %v", diags)
			}
			if *updateFormat {
				setFile(ar, "want.fsm", got)
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("formatted:\n%s\nwant:\n%s", got, want)
			}
			checkSameMeaning(t, in, got)
			again, _ := dsl.Format("want.fsm", got)
			if !bytes.Equal(again, got) {
				t.Errorf("not idempotent; second pass:\n%s", again)
			}
		})
	}
}

func fileOf(ar *txtar.Archive, name string) []byte {
	for _, f := range ar.Files {
		if f.Name == name {
			return f.Data
		}
	}
	return nil
}

func setFile(ar *txtar.Archive, name string, data []byte) {
	for i, f := range ar.Files {
		if f.Name == name {
			ar.Files[i].Data = data
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: data})
}

var lineEndBlanks = regexp.MustCompile(`(?m)[ \t\r]+$`)

// tokenTexts lists the tokens of src, with each comment as the
// formatter writes it: no blanks (spaces, tabs, CRs) at the end of its
// lines.
func tokenTexts(t testing.TB, src []byte) []string {
	tokens, err := grammar.Lex("", src)
	if err != nil {
		t.Fatalf("lex: %v", err)
	}
	var out []string
	for _, tok := range tokens {
		text := tok.Value
		if tok.Type == grammar.Comment {
			text = lineEndBlanks.ReplaceAllString(text, "")
		}
		out = append(out, text)
	}
	return out
}

// checkSameMeaning asserts that formatting changed white space only.
func checkSameMeaning(t testing.TB, before, after []byte) {
	t.Helper()
	a, b := tokenTexts(t, before), tokenTexts(t, after)
	if strings.Join(a, "\x00") != strings.Join(b, "\x00") {
		t.Fatalf("formatting changed the tokens:\nbefore %q\nafter  %q", a, b)
	}
}
