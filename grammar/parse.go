// Package grammar is the front of the fsmc pipeline: it turns the bytes of
// a .fsm file into tokens (Lex, hand-written for speed and exact
// positions) and the tokens into a syntax tree (Parse, built with
// participle from the struct tags in ast.go).
//
//	source bytes -> Lex -> []lexer.Token (comments kept) -> participle -> *File
//
// The tree is purely syntactic: names are not resolved and types are not
// checked; package dsl does that. Source keeps the token list, including
// comments, for node end positions and for the formatter. grammar.ebnf is
// the grammar as participle sees it, kept equal to Parser.String() by a
// test.
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

// replay hands participle tokens that Lex already produced.
type replay struct {
	tokens []lexer.Token
	next   int
}

func (r *replay) Next() (lexer.Token, error) {
	t := r.tokens[r.next]
	if r.next < len(r.tokens)-1 {
		r.next++
	}
	return t, nil
}

// Parser is the participle parser for File.
var Parser = participle.MustBuild[File](
	participle.Lexer(lexDefinition{symbols}),
	participle.Elide("Comment"),
	participle.UseLookahead(1),
)

// lexDefinition tells participle the token types; the tokens themselves
// come from Lex through replay. It holds the symbol table so that package
// initialisation orders symbols before any parser built with it.
type lexDefinition struct{ symbols map[string]lexer.TokenType }

func (d lexDefinition) Symbols() map[string]lexer.TokenType { return d.symbols }
func (lexDefinition) Lex(string, io.Reader) (lexer.Lexer, error) {
	return nil, errors.New("grammar: lex with grammar.Lex")
}

// Parse lexes and parses src. On error it returns the Source (with the
// tokens lexed so far and any partial tree) and an *Error at the first
// token that does not fit.
func Parse(file string, src []byte) (*Source, error) {
	s := &Source{File: file, Text: src}
	tokens, err := Lex(file, src)
	s.Tokens = tokens
	if err != nil {
		return s, err
	}
	peek, err := lexer.Upgrade(&replay{tokens: tokens}, Comment)
	if err != nil {
		return s, &Error{Msg: err.Error()}
	}
	tree, err := Parser.ParseFromLexer(peek)
	s.Tree = tree
	if err != nil {
		return s, syntaxError(err)
	}
	return s, nil
}

// syntaxError rewrites participle's error into one that names the token
// found and what was expected, in the language's own words.
func syntaxError(err error) error {
	var unexpected *participle.UnexpectedTokenError
	if errors.As(err, &unexpected) {
		msg := "unexpected " + describe(unexpected.Unexpected)
		if exp := expected(unexpected.Message()); exp != "" {
			msg += ", expected " + exp
		}
		return &Error{Pos: unexpected.Unexpected.Pos, Msg: msg}
	}
	var perr participle.Error
	if errors.As(err, &perr) {
		return &Error{Pos: perr.Position(), Msg: perr.Message()}
	}
	return &Error{Msg: err.Error()}
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

// expected extracts participle's "(expected X)" and phrases it for a user.
func expected(msg string) string {
	i := strings.Index(msg, "(expected ")
	if i < 0 || !strings.HasSuffix(msg, ")") {
		return ""
	}
	e := msg[i+len("(expected ") : len(msg)-1]
	r := strings.NewReplacer("<ident>", "a name", "<int>", "an integer", "<float>", "a float",
		"<duration>", "a duration", "<string>", "a string", "<eof>", "end of file")
	return r.Replace(e)
}

// End returns the position just after the last token that starts before
// next (a node's EndPos), skipping comments: the exclusive end of the node.
func (s *Source) End(next lexer.Position) lexer.Position {
	i := sort.Search(len(s.Tokens), func(i int) bool { return s.Tokens[i].Pos.Offset >= next.Offset }) - 1
	for i >= 0 && s.Tokens[i].Type == Comment {
		i--
	}
	if i < 0 {
		return next
	}
	return TokenEnd(s.Tokens[i])
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
