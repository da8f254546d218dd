package grammar

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/alecthomas/participle/v2/lexer"
)

var update = flag.Bool("update", false, "rewrite grammar.ebnf")

func TestEBNFFileMatchesParser(t *testing.T) {
	want := EBNF()
	if *update {
		if err := os.WriteFile("grammar.ebnf", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("grammar.ebnf")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("grammar.ebnf differs from the parser's grammar; run go test ./grammar -update\nparser:\n%s", want)
	}
}

// render prints a fast-parser tree fully parenthesised.
func render(e *Expr) string {
	switch e.Kind {
	case ExprValue:
		for _, s := range []*string{e.Value.Int, e.Value.Float, e.Value.Duration, e.Value.String, e.Value.Bool} {
			if s != nil {
				return *s
			}
		}
	case ExprField:
		return e.Name.Text
	case ExprPayload:
		return "event." + e.Name.Text
	case ExprParen:
		return render(e.X)
	case ExprUnary:
		return "(" + e.Op + render(e.X) + ")"
	case ExprBinary:
		return "(" + render(e.X) + " " + e.Op + " " + render(e.Y) + ")"
	}
	return "?"
}

// renderRef prints a reference tree fully parenthesised, applying
// left-associativity level by level.
func renderRef(e *OrExpr) string {
	return leftFold(renderAnd(e.Left), e.Rest, func(r *AndExpr) (string, string) { return "||", renderAnd(r) })
}

func renderAnd(e *AndExpr) string {
	return leftFold(renderCmp(e.Left), e.Rest, func(r *CmpExpr) (string, string) { return "&&", renderCmp(r) })
}

func renderCmp(e *CmpExpr) string {
	return leftFold(renderAdd(e.Left), e.Rest, func(r *CmpOp) (string, string) { return r.Op, renderAdd(r.Right) })
}

func renderAdd(e *AddExpr) string {
	return leftFold(renderMul(e.Left), e.Rest, func(r *AddOp) (string, string) { return r.Op, renderMul(r.Right) })
}

func renderMul(e *MulExpr) string {
	return leftFold(renderUnary(e.Left), e.Rest, func(r *MulOp) (string, string) { return r.Op, renderUnary(r.Right) })
}

// leftFold parenthesises "left op right op right ..." from the left, the
// rendering of one binary precedence level.
func leftFold[R any](left string, rest []R, step func(R) (op, right string)) string {
	for _, r := range rest {
		op, right := step(r)
		left = "(" + left + " " + op + " " + right + ")"
	}
	return left
}

func renderUnary(e *UnaryExpr) string {
	s := renderOperand(e.Operand)
	for i := len(e.Ops) - 1; i >= 0; i-- {
		s = "(" + e.Ops[i] + s + ")"
	}
	return s
}

func renderOperand(o *Operand) string {
	switch {
	case o.Value != nil:
		return *o.Value
	case o.Payload != nil:
		return "event." + *o.Payload
	case o.Field != nil:
		return *o.Field
	}
	return renderRef(o.Paren)
}

// compareWithReference parses src with both parsers: both must accept
// or both reject it, and accepted trees must group the same way.
func compareWithReference(t *testing.T, src string) {
	t.Helper()
	fast, fastErr := ParseExpr([]byte(src))
	ref, refErr := ParseExprReference([]byte(src))
	if (fastErr == nil) != (refErr == nil) {
		t.Fatalf("%q: fast parser error %v, reference error %v", src, fastErr, refErr)
	}
	if fastErr != nil {
		return
	}
	if got, want := render(fast), renderRef(ref); got != want {
		t.Fatalf("%q: fast parser groups as %s, reference as %s", src, got, want)
	}
}

func TestExprMatchesReference(t *testing.T) {
	for _, src := range []string{
		`a`, `1 + 2 * 3`, `1 * 2 + 3`, `a - b - c`, `a / b / c % d`,
		`a || b && c`, `a && b || c && d`, `!a && -b < c`, `--a`, `!!a`, `-(a + b) * c`,
		`a == b != c`, `a < b == c > d`, `event.amount > 0 && attempts < 3`,
		`deadline * 2 + 30s`, `"a" + "b\n" == s`, `1.5 * f`, `true || false`,
		`((((a))))`, `a + (b || c) * d`, `x % 2 == 0 || event.tag == "x"`,
		// rejected by both
		``, `a +`, `(a`, `a)`, `a b`, `event`, `event.`, `event.5`, `+a`, `a ! b`, `* a`,
	} {
		compareWithReference(t, src)
	}
}

func FuzzExprReference(f *testing.F) {
	for _, s := range []string{`a + b * c`, `!(a > -1) && -a <= 2 || event.x % 2 == 0`, `1h30m * 2`, `"s" + t`, `(a)`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if _, err := Lex("", []byte(src)); err != nil {
			return
		}
		compareWithReference(t, src)
	})
}

func TestLexPositionsAndKinds(t *testing.T) {
	src := "machine \"Ünï\" { // c\n\tevent E(d: duration = 1h30m) \"a\\\"b\" 1.5 -> >= /* x\ny */ z }"
	tokens, err := Lex("f", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tok := range tokens {
		got = append(got, fmt.Sprintf("%d:%d:%s", tok.Pos.Line, tok.Pos.Column, tok.Value))
	}
	want := []string{"1:1:machine", `1:9:"Ünï"`, "1:15:{", "1:17:// c", "2:2:event", "2:8:E", "2:9:(", "2:10:d", "2:11::",
		"2:13:duration", "2:22:=", "2:24:1h30m", "2:29:)", `2:31:"a\"b"`, "2:38:1.5", "2:42:->", "2:45:>=",
		"2:48:/* x\ny */", "3:6:z", "3:8:}", "3:9:"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("tokens:\n got %v\nwant %v", got, want)
	}
	kinds := map[string]lexer.TokenType{"machine": Keyword, "z": Ident, "1h30m": Duration, "1.5": Float, `"a\"b"`: String, "->": Punct}
	for _, tok := range tokens {
		if want, ok := kinds[tok.Value]; ok && tok.Type != want {
			t.Errorf("token %q has type %d, want %d", tok.Value, tok.Type, want)
		}
	}
}

func TestLexErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"a \"open", `1:3: string not terminated`},
		{`"bad \q"`, `1:1: invalid string literal`},
		{`x = "\xff"`, `1:5: invalid string literal "\xff": its \x or octal escapes do not spell UTF-8 text`},
		{`x = "caf\xc3\xa9 \303\251"`, ``}, // é twice: escapes that spell UTF-8 are fine
		{"x = 10sec", `1:5: invalid duration "10sec"`},
		{"x = 1e3", `1:5: invalid number "1e3"`},
		{"x = 1h30", `1:5: invalid duration 1h30`},
		{"a @ b", `1:3: unexpected character '@'`},
		{"a & b", `1:3: unexpected character '&': did you mean "&&"?`},
		{"a | b", `1:3: unexpected character '|': did you mean "||"?`},
		{"state Z ;", `1:9: unexpected character ';': declarations and items need no separator`},
		{"\xef\xbb\xbfmachine M {}", ``},                         // a byte order mark first is ignored
		{"a \xef\xbb\xbf", `1:3: unexpected character '\ufeff'`}, // but not elsewhere
		{"ok\xff", `1:3: invalid UTF-8 encoding (byte 0xff)`},
		{"a\x00", `1:2: unexpected control character U+0000`},
		{"/* never closed", `1:1: comment not terminated`},
		{"99999999999999999999", `1:1: integer 99999999999999999999 is out of range`},
		// The smallest int's magnitude is in range only after a unary minus.
		{"-9223372036854775808", ``},
		{"= - /* c */ 9223372036854775808", ``},
		{"x - -9223372036854775808", ``},
		{"9223372036854775808", `1:1: integer 9223372036854775808 is out of range (64-bit); the smallest int is written -9223372036854775808`},
		{"x - 9223372036854775808", `1:5: integer 9223372036854775808 is out of range (64-bit); the smallest`},
		{"f() - 9223372036854775808", `1:7: integer 9223372036854775808 is out of range`},
		{"true -9223372036854775808", `1:7: integer 9223372036854775808 is out of range`},
		{"-(9223372036854775808)", `1:3: integer 9223372036854775808 is out of range`},
		{"9223372036854775809", `1:1: integer 9223372036854775809 is out of range`},
		{strings.Repeat("(", MaxNesting+1), `1:201: parentheses nested too deeply`},
	} {
		_, err := Lex("", []byte(c.src))
		if c.want == "" {
			if err != nil {
				t.Errorf("Lex(%q) = %v, want no error", c.src, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Lex(%q) = %v, want %s...", c.src, err, c.want)
		}
	}
}

// BenchmarkParseExpr compares the precedence climber with the
// reference grammar's one participle production per precedence level.
func BenchmarkParseExpr(b *testing.B) {
	src := []byte(`!(count > -1) && -count <= 2 || event.x % 2 == 0 && label + "x" != "y" || wait * 2 >= 30s`)
	b.Run("climber", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ParseExpr(src); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ParseExprReference(src); err != nil {
				b.Fatal(err)
			}
		}
	})
}
