package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
)

// TestValuesConvert: what a host may pass for each type, and what is
// refused with a message naming the field.
func TestValuesConvert(t *testing.T) {
	fields := []ir.Field{{Name: "i", Type: ir.TypeInt}, {Name: "f", Type: ir.TypeFloat}, {Name: "s", Type: ir.TypeString}, {Name: "d", Type: ir.TypeDuration}}
	for _, c := range []struct {
		in   map[string]any
		want string // the value of the one field set, or the error
	}{
		{map[string]any{"i": int32(-7)}, "-7"},
		{map[string]any{"i": uint8(200)}, "200"},
		{map[string]any{"i": uint64(math.MaxUint64)}, `field "i": want int, got 18446744073709551615 (out of range)`},
		{map[string]any{"f": int16(3)}, "3.0"},
		{map[string]any{"f": float32(1.5)}, "1.5"},
		{map[string]any{"f": math.Inf(-1)}, "-Inf"},
		{map[string]any{"f": "+Inf"}, "+Inf"}, // JSONValue's forms of the floats JSON has no number for
		{map[string]any{"f": "NaN"}, "NaN"},
		{map[string]any{"f": "Inf"}, `field "f": want float, got string "Inf"`},
		{map[string]any{"s": "café ✓"}, "café ✓"},
		{map[string]any{"s": "bad \xff"}, `field "s": want UTF-8 text, got "bad \xff"`},
		{map[string]any{"d": 90 * time.Second}, "1m30s"},
		{map[string]any{"d": "soon"}, `field "d": want a duration such as "90s", got "soon"`},
		// What JSON decodes to is named in JSON's terms.
		{map[string]any{"i": json.Number("1e3")}, "1000"},
		{map[string]any{"i": json.Number("1.5e0")}, `field "i": want int, got 1.5e0`},
		{map[string]any{"d": json.Number("5")}, `field "d": want duration, got number 5`},
		{map[string]any{"i": nil}, `field "i": want int, got null`},
		{map[string]any{"s": []any{"a"}}, `field "s": want string, got a list`},
		{map[string]any{"s": map[string]any{}}, `field "s": want string, got an object`},
	} {
		vs, err := runtime.Values(fields, nil, c.in)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			for i, f := range fields {
				if _, set := c.in[f.Name]; set {
					got = strings.TrimSuffix(strings.TrimPrefix(vs[i].String(), `"`), `"`)
				}
			}
		}
		if got != c.want {
			t.Errorf("Values(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestDecodeJSONNumbers: an int field takes a JSON number whose exact
// decimal value is a whole number in range, however it is written, and
// nothing else; a number out of any range is refused naming its field,
// not by the decoder.
func TestDecodeJSONNumbers(t *testing.T) {
	fields := []ir.Field{{Name: "i", Type: ir.TypeInt}, {Name: "f", Type: ir.TypeFloat}}
	for in, want := range map[string]string{
		`{"i": 1E3}`:                        "1000",
		`{"i": -2.50e1}`:                    "-25",
		`{"i": 9007199254740993.0}`:         "9007199254740993", // beyond a float64's whole numbers
		`{"i": 92233720368547758.07e2}`:     "9223372036854775807",
		`{"i": -9223372036854775808}`:       "-9223372036854775808",
		`{"i": 0.000e99999999999999999999}`: "0",
		`{"i": 1.0000000000000001}`:         `field "i": want int, got 1.0000000000000001`, // a float64 rounds it to 1
		`{"i": 1e-400}`:                     `field "i": want int, got 1e-400`,
		`{"i": 1e-99999999999999999999}`:    `field "i": want int, got 1e-99999999999999999999`,
		`{"i": 9223372036854775808}`:        `field "i": want int, got 9223372036854775808 (out of range)`,
		`{"i": 1e400}`:                      `field "i": want int, got 1e400 (out of range)`,
		`{"i": 1e99999999999999999999}`:     `field "i": want int, got 1e99999999999999999999 (out of range)`,
		`{"f": -1e999}`:                     `field "f": want float, got -1e999 (out of range)`,
		`{"f": 2.5e-3}`:                     "0.0025",
		`{"i": 1, "n": {"deep": [1e400]}}`:  `unknown field "n"`,
	} {
		vs, err := runtime.DecodeJSON(fields, nil, []byte(in))
		got := ""
		switch {
		case err != nil:
			got = err.Error()
		case strings.Contains(in, `"i"`):
			got = vs[0].String()
		default:
			got = vs[1].String()
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("DecodeJSON(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestDecodeObjectRefusals: what is not one JSON object of UTF-8 text is
// refused with a message saying what it is; nothing is rewritten (Go's
// decoder would turn bad bytes and half surrogate pairs into U+FFFD).
func TestDecodeObjectRefusals(t *testing.T) {
	for in, want := range map[string]string{
		`[1, 2]`:                              "not a JSON object: got a JSON array",
		`"text"`:                              "not a JSON object: got a JSON string",
		`null`:                                "not a JSON object: null",
		`{"a": 1} {}`:                         "not a JSON object: data after it",
		`{"a": 1`:                             "bad JSON: unexpected EOF",
		`{"a": 1, "b": {"a": 2}, "a": 3}`:     `field "a" is given twice`,
		`{"a": 1, "b": {"c": 2, "c": 3}}`:     `field "b.c" is given twice`,
		`{"l": [{"x": 1}, {"x": 1, "x": 2}]}`: `field "l[1].x" is given twice`,
		`{"a" 1}`:                             "bad JSON: invalid character '1' after object key",
		"{\"s\": \"caf\xe9\"}":                "not UTF-8 text (byte 10 is 0xe9)",
		`{"s": "\ud800"}`:                     `a string escapes \ud800, half of a UTF-16 surrogate pair: not a character`,
		`{"s": "\ud800\u0041"}`:               `a string escapes \ud800, half of a UTF-16 surrogate pair: not a character`,
		`{"s": "x\udc00"}`:                    `a string escapes \udc00, half of a UTF-16 surrogate pair: not a character`,
	} {
		if _, err := runtime.DecodeObject([]byte(in)); err == nil || err.Error() != want {
			t.Errorf("DecodeObject(%s) = %v, want %s", in, err, want)
		}
	}
	// A pair, a literal backslash before "ud800", and U+FFFD itself are text.
	for in, want := range map[string]string{
		`{"s": "\ud83d\ude00"}`: "\U0001F600",
		`{"s": "\\ud800"}`:      `\ud800`,
		`{"s": "\ufffd"}`:       "\ufffd",
	} {
		got, err := runtime.DecodeObject([]byte(in))
		if err != nil || got["s"] != want {
			t.Errorf("DecodeObject(%s) = %q, %v; want %q", in, got["s"], err, want)
		}
	}
}

// TestNonFiniteFloatsInJSON: a context holding a float JSON has no
// number for still has a JSON form (external commands get it on stdin,
// inspect --json prints it), and that form reads back.
func TestNonFiniteFloatsInJSON(t *testing.T) {
	fields := []ir.Field{{Name: "a", Type: ir.TypeFloat}, {Name: "b", Type: ir.TypeFloat}, {Name: "c", Type: ir.TypeFloat}}
	in := []ir.Value{{T: ir.TypeFloat, F: math.Inf(1)}, {T: ir.TypeFloat, F: math.Inf(-1)}, {T: ir.TypeFloat, F: math.NaN()}}
	js := map[string]any{}
	for i, f := range fields {
		js[f.Name] = runtime.JSONValue(in[i]) // as Fields.Map writes each
	}
	b, err := json.Marshal(js)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":"+Inf","b":"-Inf","c":"NaN"}`; string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	out, err := runtime.Values(fields, nil, back)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(out[0].F, 1) || !math.IsInf(out[1].F, -1) || !math.IsNaN(out[2].F) {
		t.Fatalf("read back %v", out)
	}
}

// TestStartValuesChecked: typed context values are checked as Start's
// map is: a value of another type than its field's, text that is not
// UTF-8, a zero Value (no type), a bool other than 0 or 1 or a wrong
// count is refused naming the field, and nothing is stored.
func TestStartValuesChecked(t *testing.T) {
	m := irtest.Compile(t, "v.fsm", []byte(`machine V {
    context {
        n: int
        s: string
        b: bool
    }
    initial state A {}
}`)).Machines[0]
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{})
	ctx := context.Background()
	if err := e.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	good := []ir.Value{{T: ir.TypeInt, I: 7}, {T: ir.TypeString, S: "ok"}, {T: ir.TypeBool, I: 1}}
	for _, tc := range []struct {
		name   string
		values []ir.Value
		want   string
	}{
		{"wrong types", []ir.Value{{T: ir.TypeString, S: "oops"}, good[1], good[2]}, `context: field "n": want int, got a value of type string`},
		{"not UTF-8", []ir.Value{good[0], {T: ir.TypeString, S: "a\xffb"}, good[2]}, `context: field "s": want UTF-8 text, got "a\xffb"`},
		{"zero values", []ir.Value{{}, {}, {}}, `context: field "n": want int, got a value of type invalid`},
		{"a bool of 7", []ir.Value{good[0], good[1], {T: ir.TypeBool, I: 7}}, `context: field "b": a bool holds 0 or 1, not 7`},
		{"too few", good[:2], `context: want 3 values (fields: n, s, b), got 2`},
	} {
		err := e.StartValues(ctx, "V", "x", tc.values, runtime.StartOptions{})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
		if _, err := e.Get(ctx, "x"); !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("%s: the instance was stored (%v)", tc.name, err)
		}
	}
	if err := e.StartValues(ctx, "V", "x", good, runtime.StartOptions{}); err != nil {
		t.Errorf("good values: %v", err)
	}
}
