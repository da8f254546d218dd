// Package grammar is the front of the fsmc pipeline: it turns the bytes of
// a .fsm file into tokens and the tokens into a syntax tree.
//
//	source bytes -> scanner -> participle's token buffer (comments kept) -> Parser -> *File
//
// The scanner (lexer.go) is hand-written for speed and exact positions.
// The grammar is the struct tags of ast.go, built into two participle
// parsers: Reference, purely from the tags, which is the definition and
// what grammar.ebnf prints (a test keeps the file equal to it); and
// Parser, which fsmc uses, where the productions that hold most tokens,
// expressions (expr.go) and state items (items.go), are parsed by hand
// through participle's Parseable and ParseTypeWith hooks. Differential
// tests and fuzz targets require Parser to build exactly Reference's trees
// and errors.
//
// The tree is purely syntactic: names are not resolved and types are not
// checked; package dsl does that. Source keeps the token list, including
// comments, for node end positions and for the formatter.
package grammar

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Source is a lexed and parsed file.
type Source struct {
	File   string
	Text   []byte
	Tokens []lexer.Token // every token, comments included, then EOF
	Tree   *File         // nil when lexing failed; partial when parsing failed
}

// Parser is the production parser for File: participle, with the items
// of state bodies (the bulk of a machine) parsed by hand in items.go.
// The grammar is LL(1), so lookahead 0 commits to an alternative at its
// first token and a syntax error is reported at the first token that does
// not fit.
var Parser = participle.MustBuild[File](
	participle.Lexer(lexDefinition{symbols}),
	participle.Elide("Comment"),
	participle.UseLookahead(0),
	participle.ParseTypeWith(parseStateItem),
)

// Reference is the same grammar entirely from the struct tags. It is the
// definition: grammar.ebnf prints it, and tests require Parser to build
// the same trees and fail at the same tokens.
var Reference = participle.MustBuild[File](
	participle.Lexer(lexDefinition{symbols}),
	participle.Elide("Comment"),
	participle.UseLookahead(0),
	participle.Union[StateItem](&Transition{}, &Timer{}, &Do{}, &Ignore{}),
)

// lexDefinition tells participle the token types; the tokens themselves
// are streamed from the scanner by Parse. It holds the symbol table so that package
// initialisation orders symbols before any parser built with it.
type lexDefinition struct{ symbols map[string]lexer.TokenType }

func (d lexDefinition) Symbols() map[string]lexer.TokenType { return d.symbols }
func (lexDefinition) Lex(string, io.Reader) (lexer.Lexer, error) {
	return nil, errors.New("grammar: lex with grammar.Lex")
}

// Parse lexes and parses src with Parser. On error it returns the Source
// (with the tokens lexed so far and any partial tree) and an *Error at the
// first token that does not fit.
func Parse(file string, src []byte) (*Source, error) {
	return parseWith(Parser, file, src)
}

// ParseReference is Parse with the Reference parser.
func ParseReference(file string, src []byte) (*Source, error) {
	return parseWith(Reference, file, src)
}

func parseWith(parser *participle.Parser[File], file string, src []byte) (*Source, error) {
	s := &Source{File: file, Text: src}
	// The scanner streams into participle's token buffer, which then
	// serves as Source.Tokens: one copy of the tokens, not two.
	scan := newScanner(file, src)
	peek, err := lexer.Upgrade(scan, Comment)
	if err != nil {
		return s, &Error{Msg: err.Error()}
	}
	s.Tokens = peek.Range(0, lexer.RawCursor(scan.count))
	tree, err := parser.ParseFromLexer(peek)
	s.Tree = tree
	if err != nil {
		serr := syntaxError(err, s.Tokens)
		// The token stream ends at a lexical error: a syntax error before
		// it is the first problem in the file; one at its end is the
		// lexical error itself.
		if scan.err != nil && serr.Pos.Offset >= scan.err.(*Error).Pos.Offset {
			return s, scan.err
		}
		return s, serr
	}
	if scan.err != nil {
		return s, scan.err
	}
	return s, nil
}

// syntaxError rewrites participle's error into one that names the token
// found and what was expected, in the language's own words.
func syntaxError(err error, tokens []lexer.Token) *Error {
	var own *Error
	if errors.As(err, &own) {
		return own
	}
	var unexpected *participle.UnexpectedTokenError
	if errors.As(err, &unexpected) {
		msg := "unexpected " + describe(unexpected.Unexpected)
		switch exp := expected(unexpected.Message()); {
		case unexpected.Expect != "":
			msg += ", expected " + unexpected.Expect // the expression parser's own words
		case exp == `"}"`:
			msg += ", expected " + blockContents(tokens, unexpected.Unexpected.Pos.Offset) + ` or "}"`
		case exp == `")"` && opensPayload(tokens, unexpected.Unexpected.Pos.Offset):
			msg += `, expected a payload field name or ")"`
		case exp != "":
			msg += ", expected " + exp
		default:
			// Only the file level fails without an expectation: after
			// its machines nothing but another machine may follow.
			msg += `, expected "machine"`
		}
		return &Error{Pos: unexpected.Unexpected.Pos, Msg: msg}
	}
	var perr participle.Error
	if errors.As(err, &perr) {
		return &Error{Pos: perr.Position(), Msg: perr.Message()}
	}
	return &Error{Msg: err.Error()}
}

// opensPayload reports whether the tokens before offset end with
// `event NAME (`: the start of an event's payload, which takes a field
// as well as the ")" that participle expects.
func opensPayload(tokens []lexer.Token, offset int) bool {
	var last [3]lexer.Token // the three tokens before offset, comments left out
	n := 0
	for i := len(tokens) - 1; i >= 0 && n < 3; i-- {
		if t := tokens[i]; t.Pos.Offset < offset && t.Type != Comment {
			last[n] = t
			n++
		}
	}
	return n == 3 && last[0].Value == "(" && last[1].Type == Ident && last[2].Type == Keyword && last[2].Value == "event"
}

// blockContents says what the innermost block still open before offset
// accepts, from the keyword that opened it.
func blockContents(tokens []lexer.Token, offset int) string {
	depth := 0
	for i := len(tokens) - 1; i >= 0; i-- {
		t := tokens[i]
		if t.Pos.Offset >= offset || t.Type != Punct {
			continue
		}
		switch t.Value {
		case "}":
			depth++
		case "{":
			if depth > 0 {
				depth--
				continue
			}
			for j := i - 1; j >= 0; j-- {
				if tokens[j].Type != Keyword {
					continue
				}
				switch tokens[j].Value {
				case "machine":
					return "a declaration (context, event, action or state)"
				case "state":
					return "a state item (on, after, do or ignore)"
				case "do":
					return "a policy item (timeout, retry, backoff or jitter)"
				case "context":
					return "a field"
				}
			}
			return "an item"
		}
	}
	return "an item"
}

// describe names a token for a message: `end of file`, `keyword "on"`.
func describe(t lexer.Token) string {
	switch t.Type {
	case EOF:
		return "end of file"
	case Keyword:
		return fmt.Sprintf("keyword %q", t.Value)
	case Ident:
		return fmt.Sprintf("name %q", t.Value)
	case String:
		return "string " + truncate(t.Value, 40)
	case Int, Float, Duration:
		return "number " + truncate(t.Value, 40)
	}
	return fmt.Sprintf("%q", t.Value)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "..."
}

// expected turns participle's "(expected X Y Z)", the rest of the
// production that failed, into the words for its first term.
func expected(msg string) string {
	i := strings.Index(msg, "(expected ")
	if i < 0 || !strings.HasSuffix(msg, ")") {
		return ""
	}
	return phrase(firstTerm(msg[i+len("(expected ") : len(msg)-1]))
}

// firstTerm returns the first term of an EBNF sequence: a quoted token,
// a production name, or a parenthesised group, without its ?, * or +.
func firstTerm(seq string) string {
	seq = strings.TrimSpace(seq)
	if seq == "" {
		return ""
	}
	end := len(seq)
	switch seq[0] {
	case '(':
		depth := 0
		for i, c := range seq {
			if c == '(' {
				depth++
			} else if c == ')' {
				depth--
				if depth == 0 {
					end = i + 1
					break
				}
			}
		}
	case '"':
		if j := strings.IndexByte(seq[1:], '"'); j >= 0 {
			end = j + 2
		}
	default:
		if j := strings.IndexByte(seq, ' '); j >= 0 {
			end = j
		}
	}
	return strings.TrimRight(seq[:end], "?*+")
}

// productionWords names the grammar's productions for users.
var productionWords = map[string]string{
	"Name":               "a name",
	"EventName":          "an event name",
	"Type":               "a type (int, float, string, bool or duration)",
	"Literal":            "a literal",
	"Value":              "a literal",
	"Expr":               "an expression",
	"Decl":               "a declaration (context, event, action or state)",
	"StateBody":          `"{"`,
	"StateItem":          "a state item (on, after, do or ignore)",
	"PolicyItem":         "a policy item (timeout, retry, backoff or jitter)",
	"Backoff":            `"constant", "linear" or "exponential"`,
	"LinearBackoff":      `"initial"`,
	"ExponentialBackoff": `"initial"`,
	"Assign":             "a field name",
	"Param":              "a payload field name",
	"Field":              "a field name",
	"Machine":            `"machine"`,
	"<ident>":            "a name",
	"<int>":              "an integer",
	"<float>":            "a float",
	"<duration>":         "a duration",
	"<string>":           "a string",
}

// phrase renders one term: alternatives become `"a", "b" or "c"`.
func phrase(term string) string {
	if strings.HasPrefix(term, "(") && strings.HasSuffix(term, ")") {
		alts := strings.Split(term[1:len(term)-1], " | ")
		if len(alts) == 1 {
			return phrase(firstTerm(alts[0]))
		}
		for i, a := range alts {
			alts[i] = phrase(firstTerm(a))
		}
		return strings.Join(alts[:len(alts)-1], ", ") + " or " + alts[len(alts)-1]
	}
	if w, ok := productionWords[term]; ok {
		return w
	}
	return term
}

// End returns the position just after the last token that starts before
// next (a node's EndPos), skipping comments: the exclusive end of the node.
func (s *Source) End(next lexer.Position) lexer.Position {
	i := s.TokenIndex(next.Offset) - 1
	for i >= 0 && s.Tokens[i].Type == Comment {
		i--
	}
	if i < 0 {
		return next
	}
	return TokenEnd(s.Tokens[i])
}

// TokenIndex returns the index of the first token that starts at or
// after offset.
func (s *Source) TokenIndex(offset int) int {
	return sort.Search(len(s.Tokens), func(i int) bool { return s.Tokens[i].Pos.Offset >= offset })
}

// TokenEnd is the position just after t.
func TokenEnd(t lexer.Token) lexer.Position {
	p := t.Pos
	for _, r := range t.Value {
		p.Offset += utf8.RuneLen(r)
		if r == '\n' {
			p.Line++
			p.Column = 1
		} else {
			p.Column++
		}
	}
	return p
}
