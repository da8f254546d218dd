package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/fsmc/fsmc/compiler/ir"
)

// Values converts named values to a machine's typed values for fields:
// each name must be a field, each value of the field's type. Go values
// (int, int64, float64, string, bool, time.Duration) and values decoded
// from JSON (json.Number, float64, duration strings such as "90s") are
// accepted; fields not given get base, or their type's zero value when
// base is nil. Errors name the field.
func Values(fields []ir.Field, base []ir.Value, in map[string]any) ([]ir.Value, error) {
	return valuesInto(make([]ir.Value, len(fields)), fields, base, in)
}

// valuesInto is Values writing into out, of len(fields), which its
// caller may reuse (Fire converts each payload into its worker's), so
// it allocates nothing unless a value is wrong. Of several wrong
// fields, the error names the first by name, whatever the map's order.
func valuesInto(out []ir.Value, fields []ir.Field, base []ir.Value, in map[string]any) ([]ir.Value, error) {
	for i, f := range fields {
		switch {
		case base != nil:
			out[i] = base[i]
		case f.Default != nil:
			out[i] = *f.Default
		default:
			out[i] = ir.Zero(f.Type)
		}
	}
	var wrong string // the first wrong field by name, if err
	var err error
	for name, v := range in {
		if err != nil && name > wrong {
			continue
		}
		i := fieldIndex(fields, name)
		if i < 0 {
			wrong, err = name, fmt.Errorf("unknown field %q (fields: %s)", name, fieldNames(fields))
			continue
		}
		value, cerr := convert(fields[i].Type, v)
		if cerr != nil {
			wrong, err = name, fmt.Errorf("field %q: %v", name, cerr)
			continue
		}
		out[i] = value
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CheckValues checks typed values against fields, in field order, as
// Values would have made them: one per field, each of the field's type,
// a string valid UTF-8 and a bool 0 or 1. Errors name the field.
func CheckValues(fields []ir.Field, values []ir.Value) error {
	if len(values) != len(fields) {
		return fmt.Errorf("want %d values (fields: %s), got %d", len(fields), fieldNames(fields), len(values))
	}
	for i, f := range fields {
		v := values[i]
		switch {
		case v.T != f.Type:
			return fmt.Errorf("field %q: want %s, got a value of type %s", f.Name, f.Type, v.T)
		case v.T == ir.TypeString && !utf8.ValidString(v.S):
			return fmt.Errorf("field %q: want UTF-8 text, got %q", f.Name, v.S)
		case v.T == ir.TypeBool && v.I != 0 && v.I != 1:
			return fmt.Errorf("field %q: a bool holds 0 or 1, not %d", f.Name, v.I)
		}
	}
	return nil
}

// DecodeJSON decodes a JSON object into typed values for fields; an
// empty input gives the defaults.
func DecodeJSON(fields []ir.Field, base []ir.Value, data []byte) ([]ir.Value, error) {
	in, err := DecodeObject(data)
	if err != nil {
		return nil, err
	}
	return Values(fields, base, in)
}

// DecodeObject decodes a JSON object (numbers as json.Number, which
// Values takes) for Values, Start or Send; an empty input is an empty
// object.
func DecodeObject(data []byte) (map[string]any, error) {
	in := map[string]any{}
	if len(bytes.TrimSpace(data)) == 0 {
		return in, nil
	}
	if err := jsonText(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("bad JSON: %v", err)
		}
		var wrong *json.UnmarshalTypeError
		if errors.As(err, &wrong) && wrong.Field == "" {
			return nil, fmt.Errorf("not a JSON object: got a JSON %s", wrong.Value)
		}
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if in == nil {
		return nil, fmt.Errorf("not a JSON object: null")
	}
	if dec.More() {
		return nil, fmt.Errorf("not a JSON object: data after it")
	}
	if err := uniqueKeys(data); err != nil {
		return nil, err
	}
	return in, nil
}

// uniqueKeys refuses JSON (valid, decoded once already) in which an
// object names a field twice, at any depth: Go's decoder keeps the last,
// silently. The error names the field by its path ("payload.v").
func uniqueKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers as text: 1e400 is no float64, and not this check's to refuse
	return uniqueIn(dec, "")
}

// uniqueIn reads one JSON value from dec for uniqueKeys; path names it.
func uniqueIn(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return err
			}
			name, _ := key.(string)
			field := name
			if path != "" {
				field = path + "." + name
			}
			if seen[name] {
				return fmt.Errorf("field %q is given twice", field)
			}
			seen[name] = true
			if err := uniqueIn(dec, field); err != nil {
				return err
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := uniqueIn(dec, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	_, err = dec.Token() // the closing } or ]
	return err
}

// jsonText refuses JSON that is not UTF-8 text, or whose strings escape
// half a surrogate pair (\ud800 alone): Go's decoder would turn either
// into U+FFFD, storing text that differs from what was sent.
func jsonText(data []byte) error {
	if !utf8.Valid(data) {
		at := 0
		for at < len(data) {
			r, n := utf8.DecodeRune(data[at:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			at += n
		}
		return fmt.Errorf("not UTF-8 text (byte %d is 0x%02x)", at, data[at])
	}
	// Outside strings a backslash is a syntax error the decoder reports;
	// inside, it and the byte after it are an escape.
	for i := 0; i+1 < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		i++
		r, ok := hex4(data, i)
		if !ok || !utf16.IsSurrogate(r) {
			continue
		}
		if r < 0xdc00 && i+5 < len(data) && data[i+5] == '\\' { // a high half, then a low?
			if low, ok := hex4(data, i+6); ok && low >= 0xdc00 && utf16.IsSurrogate(low) {
				i += 10
				continue
			}
		}
		return fmt.Errorf("a string escapes \\u%04x, half of a UTF-16 surrogate pair: not a character", r)
	}
	return nil
}

// hex4 reads the rune of a \uXXXX escape whose 'u' is at data[i].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 >= len(data) || data[i] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(data[i+1:i+5]), 16, 16)
	return rune(n), err == nil
}

func fieldIndex(fields []ir.Field, name string) int {
	for i, f := range fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

func fieldNames(fields []ir.Field) string {
	if len(fields) == 0 {
		return "none"
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

func convert(t ir.Type, v any) (ir.Value, error) {
	bad := func() (ir.Value, error) {
		return ir.Value{}, fmt.Errorf("want %s, got %s", t, describe(v))
	}
	if n, ok := goInt(v); ok && (t == ir.TypeInt || t == ir.TypeFloat) {
		if t == ir.TypeFloat {
			return ir.Value{T: t, F: float64(n)}, nil
		}
		return ir.Value{T: t, I: n}, nil
	}
	switch t {
	case ir.TypeInt:
		switch x := v.(type) {
		case uint, uint64:
			return ir.Value{}, fmt.Errorf("want int, got %v (out of range)", x)
		case json.Number:
			n, whole, inRange := wholeNumber(string(x))
			switch {
			case !whole:
				return ir.Value{}, fmt.Errorf("want int, got %s", x)
			case !inRange:
				return ir.Value{}, fmt.Errorf("want int, got %s (out of range)", x)
			}
			return ir.Value{T: t, I: n}, nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return ir.Value{T: t, I: int64(x)}, nil
			}
		}
	case ir.TypeFloat:
		switch x := v.(type) {
		case float64:
			return ir.Value{T: t, F: x}, nil
		case float32:
			return ir.Value{T: t, F: float64(x)}, nil
		case json.Number:
			f, err := x.Float64()
			if err != nil {
				return ir.Value{}, fmt.Errorf("want float, got %s (out of range)", x)
			}
			return ir.Value{T: t, F: f}, nil
		case string:
			if f, ok := nonFinite[x]; ok {
				return ir.Value{T: t, F: f}, nil
			}
		}
	case ir.TypeString:
		if x, ok := v.(string); ok {
			if !utf8.ValidString(x) {
				return ir.Value{}, fmt.Errorf("want UTF-8 text, got %q", x)
			}
			return ir.Value{T: t, S: x}, nil
		}
	case ir.TypeBool:
		if x, ok := v.(bool); ok {
			if x {
				return ir.Value{T: t, I: 1}, nil
			}
			return ir.Value{T: t}, nil
		}
	case ir.TypeDuration:
		switch x := v.(type) {
		case time.Duration:
			return ir.Value{T: t, I: int64(x)}, nil
		case string:
			d, err := time.ParseDuration(x)
			if err != nil {
				return ir.Value{}, fmt.Errorf("want a duration such as \"90s\", got %q", x)
			}
			return ir.Value{T: t, I: int64(d)}, nil
		}
	}
	return bad()
}

// wholeNumber reads the text of a JSON number as an int: whole reports
// whether its exact decimal value is a whole number (42, 1e3, -2.50e1,
// not 1.5 or 1.0000000000000001, which a float64 would round to 1), and
// inRange whether that fits an int64. No float is involved, and no
// exponent makes it build more than 19 digits. text is a valid JSON
// number (json.Number from the decoder).
func wholeNumber(text string) (n int64, whole, inRange bool) {
	neg := strings.HasPrefix(text, "-")
	mantissa, expText := strings.TrimPrefix(text, "-"), ""
	if e := strings.IndexAny(mantissa, "eE"); e >= 0 {
		mantissa, expText = mantissa[:e], mantissa[e+1:]
	}
	intPart, frac, _ := strings.Cut(mantissa, ".")
	all := intPart + frac
	digits := strings.TrimLeft(all, "0")
	// point: where the decimal point falls in digits.
	point := len(intPart) - (len(all) - len(digits))
	digits = strings.TrimRight(digits, "0")
	if digits == "" {
		return 0, true, true // zero, whatever the exponent
	}
	if expText != "" {
		exp, err := strconv.Atoi(expText)
		if err != nil || exp > 1<<40 || exp < -1<<40 { // 1e99999999999999999999
			return 0, !strings.HasPrefix(expText, "-"), false
		}
		point += exp
	}
	if point < len(digits) {
		return 0, false, false
	}
	if point > 19 {
		return 0, true, false
	}
	magnitude := digits + strings.Repeat("0", point-len(digits))
	if neg {
		magnitude = "-" + magnitude
	}
	n, err := strconv.ParseInt(magnitude, 10, 64)
	return n, true, err == nil
}

// describe names a value that has the wrong type: in JSON's terms for
// what JSON decodes to, in Go's for other Go values.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", x)
	case json.Number:
		return "number " + x.String()
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%v (%T)", v, v)
}

// goInt reads v if it is one of Go's integer types that fits an int64.
func goInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint:
		return int64(x), x <= math.MaxInt64
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}

// Native returns v as a Go value: int64, float64, string, bool or
// time.Duration.
func Native(v ir.Value) any {
	switch v.T {
	case ir.TypeInt:
		return v.I
	case ir.TypeFloat:
		return v.F
	case ir.TypeString:
		return v.S
	case ir.TypeBool:
		return v.I != 0
	case ir.TypeDuration:
		return time.Duration(v.I)
	}
	return nil
}

// JSONValue returns v as it is written in JSON: durations as "90s",
// and the floats JSON has no number for (a float division by zero makes
// one) as the strings "+Inf", "-Inf" and "NaN", which Values reads back.
func JSONValue(v ir.Value) any {
	switch {
	case v.T == ir.TypeDuration:
		return ir.FormatDuration(time.Duration(v.I))
	case v.T == ir.TypeFloat && (math.IsInf(v.F, 0) || math.IsNaN(v.F)):
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	}
	return Native(v)
}

// nonFinite reads JSONValue's strings for the floats JSON has no number
// for.
var nonFinite = map[string]float64{"+Inf": math.Inf(1), "-Inf": math.Inf(-1), "NaN": math.NaN()}

// Fields is a read-only view of typed values by name: an instance's
// context or an event's payload.
type Fields struct {
	schema []ir.Field
	values []ir.Value
}

// Get returns the named value as a Go value (see Native).
func (f Fields) Get(name string) (any, bool) {
	i := fieldIndex(f.schema, name)
	if i < 0 || i >= len(f.values) {
		return nil, false
	}
	return Native(f.values[i]), true
}

// Int returns an int field (0 if absent or not an int).
func (f Fields) Int(name string) int64 { v, _ := f.Get(name); n, _ := v.(int64); return n }

// Float returns a float field.
func (f Fields) Float(name string) float64 { v, _ := f.Get(name); x, _ := v.(float64); return x }

// String returns a string field.
func (f Fields) String(name string) string { v, _ := f.Get(name); s, _ := v.(string); return s }

// Bool returns a bool field.
func (f Fields) Bool(name string) bool { v, _ := f.Get(name); b, _ := v.(bool); return b }

// Duration returns a duration field.
func (f Fields) Duration(name string) time.Duration {
	v, _ := f.Get(name)
	d, _ := v.(time.Duration)
	return d
}

// Map returns all fields as JSON-ready values.
func (f Fields) Map() map[string]any {
	out := make(map[string]any, len(f.schema))
	for i, fld := range f.schema {
		if i < len(f.values) {
			out[fld.Name] = JSONValue(f.values[i])
		}
	}
	return out
}

// Values returns the typed values, in field order (do not modify).
func (f Fields) Values() []ir.Value { return f.values }
