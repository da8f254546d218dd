package dsl_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/dsl"
)

const printerSrc = `machine M {
    event Paid(tx: string)
    event Paid
    action Charge emits Paid
    initial state A {
        do Charge
        on Paid -> Shiped
        on error -> A
    }
    final state Shipped
}
`

func printerReport(t *testing.T) *dsl.Report {
	t.Helper()
	_, diags := dsl.Check("dir/a b.fsm", []byte(printerSrc))
	if len(diags) < 2 {
		t.Fatalf("want several diagnostics, got %v", diags)
	}
	return &dsl.Report{Diagnostics: diags, Sources: map[string][]byte{"dir/a b.fsm": []byte(printerSrc)}}
}

// require fails unless obj has every key.
func require(t *testing.T, where string, obj map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("%s: missing required property %q", where, k)
		}
	}
}

// TestSARIFRequiredFields checks the output against the properties the
// SARIF 2.1.0 schema requires of each object fsmc emits.
func TestSARIFRequiredFields(t *testing.T) {
	var out bytes.Buffer
	if err := dsl.WriteSARIF(&out, printerReport(t), "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(out.Bytes(), &log); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	require(t, "sarifLog", log, "version", "runs")
	if log["version"] != "2.1.0" {
		t.Errorf("version %v", log["version"])
	}
	run := log["runs"].([]any)[0].(map[string]any)
	require(t, "run", run, "tool", "invocations")
	inv := run["invocations"].([]any)[0].(map[string]any)
	require(t, "invocation", inv, "executionSuccessful")
	if inv["executionSuccessful"] != true {
		t.Errorf("a run that read every file says executionSuccessful %v", inv["executionSuccessful"])
	}
	driver := run["tool"].(map[string]any)["driver"].(map[string]any)
	require(t, "toolComponent", driver, "name")
	rules := driver["rules"].([]any)
	if len(rules) != len(dsl.Codes) {
		t.Errorf("%d rules, want one per code (%d)", len(rules), len(dsl.Codes))
	}
	for i, r := range rules {
		rule := r.(map[string]any)
		require(t, "reportingDescriptor", rule, "id")
		if rule["id"] != string(dsl.Codes[i].Code) {
			t.Errorf("rule %d is %v, want %s", i, rule["id"], dsl.Codes[i].Code)
		}
		require(t, "rule.shortDescription", rule["shortDescription"].(map[string]any), "text")
	}
	results := run["results"].([]any)
	if len(results) != len(printerReport(t).Diagnostics) {
		t.Errorf("%d results for %d diagnostics", len(results), len(printerReport(t).Diagnostics))
	}
	for _, r := range results {
		res := r.(map[string]any)
		require(t, "result", res, "message", "ruleId", "ruleIndex", "locations")
		require(t, "result.message", res["message"].(map[string]any), "text")
		idx := int(res["ruleIndex"].(float64))
		if rules[idx].(map[string]any)["id"] != res["ruleId"] {
			t.Errorf("ruleIndex %d does not point at rule %v", idx, res["ruleId"])
		}
		loc := res["locations"].([]any)[0].(map[string]any)["physicalLocation"].(map[string]any)
		if uri := loc["artifactLocation"].(map[string]any)["uri"]; uri != "dir/a%20b.fsm" {
			t.Errorf("uri %v, want a relative, escaped URI", uri)
		}
		region := loc["region"].(map[string]any)
		require(t, "region", region, "startLine", "startColumn", "endLine", "endColumn")
	}
}

func TestJSONShape(t *testing.T) {
	var out bytes.Buffer
	if err := dsl.WriteJSON(&out, printerReport(t)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Diagnostics []map[string]any `json:"diagnostics"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var sawRelated, sawSuggestion bool
	for _, d := range doc.Diagnostics {
		require(t, "diagnostic", d, "file", "line", "column", "end_line", "end_column", "severity", "code", "message", "related")
		if rel := d["related"].([]any); len(rel) > 0 {
			sawRelated = true
			require(t, "related", rel[0].(map[string]any), "file", "line", "column", "end_line", "end_column", "message")
		}
		if d["suggestion"] == "Shipped" {
			sawSuggestion = true
		}
	}
	if !sawRelated || !sawSuggestion {
		t.Errorf("want a related location and a suggestion in %s", out.String())
	}
}

// TestUnreadablePaths: a report that could not read some paths is not
// the whole answer, and each machine-read format says so, naming them.
func TestUnreadablePaths(t *testing.T) {
	r := printerReport(t)
	r.Unreadable = []dsl.Unreadable{{Path: "gone,1.fsm", Message: "stat gone,1.fsm: no such file or directory"}, {Message: "an empty path was given"}}
	render := func(format string) string {
		var out bytes.Buffer
		if err := dsl.Write(&out, format, r, false, "v1"); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}

	var doc struct {
		Diagnostics []any            `json:"diagnostics"`
		Unreadable  []dsl.Unreadable `json:"unreadable"`
	}
	if err := json.Unmarshal([]byte(render("json")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Diagnostics) != len(r.Diagnostics) || !reflect.DeepEqual(doc.Unreadable, r.Unreadable) {
		t.Errorf("json: %d diagnostics, unreadable %+v; want %d and %+v", len(doc.Diagnostics), doc.Unreadable, len(r.Diagnostics), r.Unreadable)
	}

	var log struct {
		Runs []struct {
			Invocations []struct {
				ExecutionSuccessful        bool `json:"executionSuccessful"`
				ToolExecutionNotifications []struct {
					Level   string `json:"level"`
					Message struct {
						Text string `json:"text"`
					} `json:"message"`
					Locations []struct {
						PhysicalLocation struct {
							ArtifactLocation struct {
								URI string `json:"uri"`
							} `json:"artifactLocation"`
							Region any `json:"region"`
						} `json:"physicalLocation"`
					} `json:"locations"`
				} `json:"toolExecutionNotifications"`
			} `json:"invocations"`
			Results []any `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(render("sarif")), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if len(run.Invocations) != 1 || run.Invocations[0].ExecutionSuccessful {
		t.Fatalf("sarif: invocations %+v, want one that was not successful", run.Invocations)
	}
	notes := run.Invocations[0].ToolExecutionNotifications
	if len(notes) != 2 || notes[0].Level != "error" || notes[0].Message.Text != r.Unreadable[0].Message ||
		len(notes[0].Locations) != 1 || notes[0].Locations[0].PhysicalLocation.ArtifactLocation.URI != "gone%2C1.fsm" ||
		notes[0].Locations[0].PhysicalLocation.Region != nil || len(notes[1].Locations) != 0 {
		t.Errorf("sarif notifications %+v", notes)
	}
	if len(run.Results) != len(r.Diagnostics) {
		t.Errorf("sarif: %d results for %d diagnostics", len(run.Results), len(r.Diagnostics))
	}

	gh := render("github")
	for _, want := range []string{
		"::error file=gone%2C1.fsm,title=fsmc::stat gone,1.fsm: no such file or directory\n",
		"::error title=fsmc::an empty path was given\n",
	} {
		if !strings.Contains(gh, want) {
			t.Errorf("github output lacks %q:\n%s", want, gh)
		}
	}
}

func TestGitHubEscaping(t *testing.T) {
	r := &dsl.Report{Diagnostics: dsl.Diagnostics{{
		Severity: dsl.Error, Code: dsl.TypeMismatch, Message: "100% wrong\nsecond line",
		Range: dsl.Range{File: "a,b:c.fsm", Start: dsl.Pos{Line: 2, Column: 3}},
	}}}
	var out bytes.Buffer
	if err := dsl.WriteGitHub(&out, r); err != nil {
		t.Fatal(err)
	}
	want := "::error file=a%2Cb%3Ac.fsm,line=2,col=3,title=E007::100%25 wrong%0Asecond line\n"
	if out.String() != want {
		t.Errorf("got  %q\nwant %q", out.String(), want)
	}
}

func TestTextColourOnlyWhenAsked(t *testing.T) {
	var plain, coloured bytes.Buffer
	dsl.WriteText(&plain, printerReport(t), false)
	dsl.WriteText(&coloured, printerReport(t), true)
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("plain text has escape codes")
	}
	if !strings.Contains(coloured.String(), "\x1b[1;31merror") {
		t.Error("coloured text has no red error")
	}
	// Each caret line is in its diagnostic's colour: red under an
	// error, yellow under a warning.
	carets := map[string]bool{}
	for _, line := range strings.Split(coloured.String(), "\n") {
		i := strings.Index(line, "^")
		if i < 0 {
			continue
		}
		// The last escape before the carets sets their colour.
		switch esc := line[strings.LastIndex(line[:i], "\x1b["):]; {
		case strings.HasPrefix(esc, "\x1b[1;31m"):
			carets["red"] = true
		case strings.HasPrefix(esc, "\x1b[1;33m"):
			carets["yellow"] = true
		default:
			t.Errorf("caret line in no severity's colour: %q", line)
		}
	}
	if !carets["red"] || !carets["yellow"] {
		t.Errorf("caret colours %v, want red (errors) and yellow (warnings) in:\n%q", carets, coloured.String())
	}
	if !strings.Contains(plain.String(), `help: did you mean "Shipped"?`) {
		t.Errorf("no suggestion in:\n%s", plain.String())
	}
}

// TestTextControlCharacters: a name holding escape sequences (a machine
// called "\x1b]0;title\x07") cannot drive the terminal through a
// diagnostic's message or its source line.
func TestTextControlCharacters(t *testing.T) {
	src := "machine \"\x1b]0;pwned\x07\x1b[2J\" {}\n"
	_, diags := dsl.Check("e.fsm", []byte(src))
	if len(diags) == 0 {
		t.Fatal("no diagnostic")
	}
	var out bytes.Buffer
	dsl.WriteText(&out, &dsl.Report{Diagnostics: diags, Sources: map[string][]byte{"e.fsm": []byte(src)}}, false)
	if strings.ContainsAny(out.String(), "\x1b\x07") {
		t.Errorf("control characters in:\n%q", out.String())
	}
}

// TestCaretUnderWideCharacters: the caret line counts terminal columns,
// two for a wide character, so it stays under the range.
func TestCaretUnderWideCharacters(t *testing.T) {
	src := "machine M {\n    context {\n        s: string = \"\"\n    }\n    event Go\n    initial state A {\n        on Go if s == \"日本語\" && zz -> A\n    }\n}\n"
	_, diags := dsl.Check("w.fsm", []byte(src))
	var out bytes.Buffer
	dsl.WriteText(&out, &dsl.Report{Diagnostics: diags, Sources: map[string][]byte{"w.fsm": []byte(src)}}, false)
	lines := strings.Split(out.String(), "\n")
	for i, line := range lines {
		code, found := strings.CutPrefix(line, " 7 | ")
		if !found || i+1 == len(lines) {
			continue
		}
		marks := strings.TrimPrefix(lines[i+1], "   | ")
		// Columns before zz: the text before it, with 日本語 two columns each.
		before := strings.Index(code, "zz")
		want := before - len("日本語") + 2*3 // bytes of the three, then their columns
		if got := strings.Index(marks, "^"); got != want {
			t.Fatalf("caret at column %d, want %d:\n%s", got, want, out.String())
		}
		return
	}
	t.Fatalf("no snippet of line 7:\n%s", out.String())
}

// TestSnippetAfterByteOrderMark: a file that starts with a byte order
// mark shows its first line without it, the caret under the range (its
// columns count from after the mark).
func TestSnippetAfterByteOrderMark(t *testing.T) {
	src := "\uFEFFmachine M {\n    initial state S {\n        on X -> S\n    }\n}\n"
	_, diags := dsl.Check("bom.fsm", []byte(src))
	var out bytes.Buffer
	dsl.WriteText(&out, &dsl.Report{Diagnostics: diags, Sources: map[string][]byte{"bom.fsm": []byte(src)}}, false)
	want := " 1 | machine M {\n   |         ^\n"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("want the snippet\n%s\nin:\n%s", want, out.String())
	}
}
