package grammar

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// Token types produced by Lex. Keywords are their own type so that a
// reserved word can never be captured as an identifier.
const (
	EOF      = lexer.EOF
	Comment  = lexer.TokenType(-2 - iota)
	Ident    // name
	Keyword  // reserved word
	Int      // 42
	Float    // 1.5
	Duration // 1h30m
	String   // "a\"b"
	Punct    // operators and punctuation
)

var symbols = map[string]lexer.TokenType{
	"EOF": EOF, "Comment": Comment, "Ident": Ident, "Keyword": Keyword,
	"Int": Int, "Float": Float, "Duration": Duration, "String": String, "Punct": Punct,
}

// Reserved lists the words that cannot be used as names.
var Reserved = map[string]bool{}

func init() {
	for _, w := range []string{"machine", "context", "event", "action", "emits", "state",
		"initial", "final", "on", "if", "after", "do", "set", "retry", "backoff", "jitter",
		"timeout", "exponential", "constant", "linear", "ignore", "true", "false", "done",
		"error", "int", "float", "string", "bool", "duration"} {
		Reserved[w] = true
	}
}

// MaxNesting bounds how deeply parentheses may nest, so that hostile input
// cannot drive the recursive-descent parser into a deep recursion.
const MaxNesting = 200

// MinIntMagnitude is the largest integer literal the lexer takes: the
// magnitude of the smallest int, 9223372036854775808, which is only in
// range negated (-9223372036854775808). The lexer takes it only right
// after a unary minus (see scanner.unary), and reports it anywhere else.
const MinIntMagnitude = 1 << 63

// Error is a lexical or syntax error at one position.
type Error struct {
	Pos lexer.Position
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Pos.Line, e.Pos.Column, e.Msg) }

// scanner turns source bytes into tokens. Columns count characters, not
// bytes; offsets count bytes.
type scanner struct {
	src   []byte
	text  string // src as one string: token values are substrings of it
	file  string
	off   int
	line  int
	col   int
	cur   lexer.Token // the token next() scanned
	count int         // tokens returned so far
	depth int
	err   error // the first lexical error; Next then returns EOF there
	// unary: the last token other than a comment is a minus that negates
	// what follows (it does not follow an operand, so it is not a
	// subtraction); ended: that token ends an operand.
	unary, ended bool
}

// Lex splits src into tokens, comments included, ending with an EOF token.
// It validates what can be validated at the token level: UTF-8, string
// escapes, number ranges, duration units and parenthesis depth.
func Lex(file string, src []byte) ([]lexer.Token, error) {
	s := newScanner(file, src)
	tokens := make([]lexer.Token, 0, len(src)/4+1)
	for {
		t, _ := s.Next()
		if s.err != nil {
			return tokens, s.err
		}
		tokens = append(tokens, t)
		if t.Type == EOF {
			return tokens, nil
		}
	}
}

func newScanner(file string, src []byte) *scanner {
	s := &scanner{src: src, text: string(src), file: file, line: 1, col: 1}
	if bytes.HasPrefix(src, byteOrderMark) {
		s.off = len(byteOrderMark) // as Go does, ignore a leading byte order mark
	}
	return s
}

// byteOrderMark is U+FEFF in UTF-8, which some editors put first.
var byteOrderMark = []byte("\xef\xbb\xbf")

// Next implements lexer.Lexer: it returns the next token, comments
// included, and an EOF token at the end. At a lexical error it records
// the error and ends the stream there with an EOF token, so the parser
// can still find an earlier syntax error (see Parse).
func (s *scanner) Next() (lexer.Token, error) {
	s.skipSpace()
	if s.off >= len(s.src) {
		s.count++
		return lexer.EOFToken(s.pos()), nil
	}
	if err := s.next(); err != nil {
		s.err = err
		s.count++
		return lexer.EOFToken(err.(*Error).Pos), nil
	}
	s.count++
	if s.cur.Type != Comment {
		s.unary = s.cur.Type == Punct && s.cur.Value == "-" && !s.ended
		s.ended = endsOperand(s.cur)
	}
	return s.cur, nil
}

// endsOperand reports whether t can be the last token of an operand: a
// minus after it subtracts rather than negates.
func endsOperand(t lexer.Token) bool {
	switch t.Type {
	case Ident, Int, Float, Duration, String:
		return true
	case Keyword:
		return t.Value == "true" || t.Value == "false"
	case Punct:
		return t.Value == ")"
	}
	return false
}

func (s *scanner) pos() lexer.Position {
	return lexer.Position{Filename: s.file, Offset: s.off, Line: s.line, Column: s.col}
}

func (s *scanner) errorf(pos lexer.Position, format string, args ...any) error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// advance moves over n bytes that hold no newline and are valid UTF-8.
func (s *scanner) advance(n int) {
	s.col += utf8.RuneCount(s.src[s.off : s.off+n])
	s.off += n
}

func (s *scanner) skipSpace() {
	for s.off < len(s.src) {
		switch s.src[s.off] {
		case ' ', '\t', '\r':
			s.off++
			s.col++
		case '\n':
			s.off++
			s.line++
			s.col = 1
		default:
			return
		}
	}
}

func (s *scanner) emit(typ lexer.TokenType, start lexer.Position) {
	s.cur = lexer.Token{Type: typ, Value: s.text[start.Offset:s.off], Pos: start}
}

func isLetter(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

func (s *scanner) peek(i int) byte {
	if s.off+i < len(s.src) {
		return s.src[s.off+i]
	}
	return 0
}

func (s *scanner) next() error {
	start := s.pos()
	c := s.src[s.off]
	switch {
	case isLetter(c):
		n := 1
		for s.off+n < len(s.src) && (isLetter(s.src[s.off+n]) || isDigit(s.src[s.off+n])) {
			n++
		}
		s.advance(n)
		if Reserved[string(s.src[start.Offset:s.off])] {
			s.emit(Keyword, start)
		} else {
			s.emit(Ident, start)
		}
		return nil
	case isDigit(c):
		return s.number(start)
	case c == '"':
		return s.string(start)
	case c == '/' && s.peek(1) == '/':
		for s.off < len(s.src) && s.src[s.off] != '\n' {
			if err := s.stepRune(); err != nil {
				return err
			}
		}
		s.emit(Comment, start)
		return nil
	case c == '/' && s.peek(1) == '*':
		s.advance(2)
		for {
			if s.off >= len(s.src) {
				return s.errorf(start, "comment not terminated: missing */")
			}
			if s.src[s.off] == '*' && s.peek(1) == '/' {
				s.advance(2)
				break
			}
			if err := s.stepRune(); err != nil {
				return err
			}
		}
		s.emit(Comment, start)
		return nil
	}
	if n := punctLen(s.src[s.off:]); n > 0 {
		switch c {
		case '(':
			s.depth++
			if s.depth > MaxNesting {
				return s.errorf(start, "parentheses nested too deeply (more than %d levels)", MaxNesting)
			}
		case ')':
			s.depth--
		}
		s.advance(n)
		s.emit(Punct, start)
		return nil
	}
	r, size := utf8.DecodeRune(s.src[s.off:])
	if r == utf8.RuneError && size <= 1 {
		return s.errorf(start, "invalid UTF-8 encoding (byte 0x%02x)", s.src[s.off])
	}
	if r < ' ' || r == 0x7f {
		return s.errorf(start, "unexpected control character %U", r)
	}
	if hint, ok := characterHints[r]; ok {
		return s.errorf(start, "unexpected character %q: %s", r, hint)
	}
	return s.errorf(start, "unexpected character %q", r)
}

// characterHints say what was probably meant by a character the
// language does not use.
var characterHints = map[rune]string{
	'&':  `did you mean "&&"?`,
	'|':  `did you mean "||"?`,
	';':  "declarations and items need no separator",
	'\'': `strings are written in double quotes ("...")`,
	'#':  "comments start with // or /*",
}

// stepRune moves over one character inside a comment, tracking lines.
func (s *scanner) stepRune() error {
	c := s.src[s.off]
	if c == '\n' {
		s.off++
		s.line++
		s.col = 1
		return nil
	}
	if c < utf8.RuneSelf {
		s.off++
		s.col++
		return nil
	}
	r, size := utf8.DecodeRune(s.src[s.off:])
	if r == utf8.RuneError && size <= 1 {
		return s.errorf(s.pos(), "invalid UTF-8 encoding (byte 0x%02x)", c)
	}
	s.off += size
	s.col++
	return nil
}

// punctLen returns the length of the operator or punctuation at the start
// of b, or 0.
func punctLen(b []byte) int {
	if len(b) >= 2 {
		switch string(b[:2]) {
		case "->", "==", "!=", "<=", ">=", "&&", "||":
			return 2
		}
	}
	switch b[0] {
	case '{', '}', '(', ')', ',', ':', '=', '.', '<', '>', '+', '-', '*', '/', '%', '!':
		return 1
	}
	return 0
}

var durationUnits = []string{"ms", "h", "m", "s"}

func (s *scanner) digits() int {
	n := 0
	for isDigit(s.peek(n)) {
		n++
	}
	return n
}

// number scans an integer, a float or a duration such as 1h30m or 1.5s.
func (s *scanner) number(start lexer.Position) error {
	isFloat := false
	isDuration := false
	for {
		s.advance(s.digits())
		if s.peek(0) == '.' && isDigit(s.peek(1)) {
			s.advance(1)
			s.advance(s.digits())
			isFloat = true
		}
		unit := ""
		for _, u := range durationUnits {
			if s.off+len(u) <= len(s.src) && string(s.src[s.off:s.off+len(u)]) == u {
				unit = u
				break
			}
		}
		if unit == "" {
			break
		}
		s.advance(len(unit))
		isDuration = true
		if !isDigit(s.peek(0)) {
			break
		}
	}
	if c := s.peek(0); isLetter(c) || isDigit(c) {
		end := s.off
		for end < len(s.src) && (isLetter(s.src[end]) || isDigit(s.src[end])) {
			end++
		}
		text := string(s.src[start.Offset:end])
		if isDuration {
			return s.errorf(start, "invalid duration %q: durations use the units ms, s, m and h", text)
		}
		return s.errorf(start, "invalid number %q: write integers as 42, floats as 1.5 and durations as 1h30m (units ms, s, m, h)", text)
	}
	text := string(s.src[start.Offset:s.off])
	switch {
	case isDuration:
		if _, err := time.ParseDuration(text); err != nil {
			return s.errorf(start, "invalid duration %s (each number needs a unit: ms, s, m or h; at most about 290 years)", text)
		}
		s.emit(Duration, start)
	case isFloat:
		if _, err := strconv.ParseFloat(text, 64); err != nil {
			return s.errorf(start, "float %s is out of range", text)
		}
		s.emit(Float, start)
	default:
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil || n > MinIntMagnitude {
			return s.errorf(start, "integer %s is out of range (64-bit)", text)
		}
		if n == MinIntMagnitude && !s.unary { // in range only negated
			return s.errorf(start, "integer %s is out of range (64-bit); the smallest int is written -%[1]s", text)
		}
		s.emit(Int, start)
	}
	return nil
}

// string scans a double-quoted string with Go escapes.
func (s *scanner) string(start lexer.Position) error {
	n := 1
	for {
		if s.off+n >= len(s.src) || s.src[s.off+n] == '\n' {
			return s.errorf(start, "string not terminated: missing closing quote")
		}
		c := s.src[s.off+n]
		if c == '\\' && s.off+n+1 < len(s.src) && s.src[s.off+n+1] != '\n' {
			n += 2
			continue
		}
		n++
		if c == '"' {
			break
		}
	}
	text := s.src[s.off : s.off+n]
	if !utf8.Valid(text) {
		for i := 0; i < len(text); {
			r, size := utf8.DecodeRune(text[i:])
			if r == utf8.RuneError && size <= 1 {
				s.advance(i)
				return s.errorf(s.pos(), "invalid UTF-8 encoding (byte 0x%02x)", text[i])
			}
			i += size
		}
	}
	value, err := strconv.Unquote(string(text))
	if err != nil {
		return s.errorf(start, "invalid string literal %s: bad escape sequence", text)
	}
	if !utf8.ValidString(value) {
		// Strings are text: the IR (JSON) could not carry other bytes.
		return s.errorf(start, "invalid string literal %s: its \\x or octal escapes do not spell UTF-8 text", text)
	}
	s.advance(n)
	s.emit(String, start)
	return nil
}

// Symbols is the token type table participle needs.
func Symbols() map[string]lexer.TokenType { return symbols }
