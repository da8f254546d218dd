package dsl

import (
	"sort"
	"strings"
)

// spellComparisons bounds the candidate names one file's "did you mean"
// searches compare in all. Each search compares the name with every
// name of its kind, so a file with thousands of undefined references to
// thousands of declared names (a generated file, a rename half done)
// would take minutes; past the bound, diagnostics come without a
// suggestion. Hand-written files stay far below it.
const spellComparisons = 500_000

// spell is suggest over the names declared in declared, and extra,
// while the file's budget of comparisons lasts, and "" after.
func spell[V any](c *checker, name string, declared map[string]V, extra ...string) string {
	n := len(declared) + len(extra)
	if n > c.spellBudget {
		c.spellBudget = 0
		return ""
	}
	c.spellBudget -= n
	return suggest(name, append(keys(declared), extra...))
}

// suggest returns the candidate nearest to name for a "did you mean"
// hint, or "" when none is near enough: a case-insensitive match, or an
// edit distance of at most half the name's length.
func suggest(name string, candidates []string) string {
	sort.Strings(candidates)
	best, bestDist := "", 1<<30
	limit := len(name) / 2 // 0 for names under two letters: only a case-only match is near
	for _, c := range candidates {
		if strings.EqualFold(c, name) {
			return c
		}
		if d := editDistance(name, c, limit); d <= limit && d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (with adjacent
// transpositions) between a and b; it returns early with a value above
// limit once the distance must exceed it.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
