// Package dsl is the second stage of the fsmc pipeline: it turns the
// syntax tree of package grammar into a checked model, reports what is
// wrong with it, and formats source canonically.
//
//	source -> grammar.Parse -> *grammar.File -> checker -> *Model + Diagnostics
//	                                                           |
//	                         text / json / sarif / github <- printers
//
// Check runs the pipeline for one file. The checker never changes the
// syntax tree; it declares every name first (so uses may precede
// declarations), then checks each state's task, transitions, timers and
// expressions (check.go, expr.go), then runs the graph pass over the
// resolved model (graph.go). Every finding is a Diagnostic with a stable
// Code (codes.go), a Range, related Notes and, where a near name exists,
// a "did you mean" Suggestion (spell.go). Diagnostics are collected, not
// stopped at: an expression with an error has type Invalid, which every
// operator accepts silently, and an item with one wrong name still counts
// for the graph, so one mistake is reported once.
//
// The Model is what the compiler consumes: machines with their context
// fields, events (plus the built-in done and error), actions, and states
// whose transitions, timers and tasks point at resolved objects, with
// every expression typed and every policy default filled in.
//
// Rendering is separate from the data: printer.go (text with caret
// snippets, json, github) and sarif.go. Format (format.go) lays out a file
// from its syntax tree and tokens, changing white space only.
package dsl
