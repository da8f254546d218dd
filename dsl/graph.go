package dsl

import "fmt"

// The graph pass: reachability from the initial state (W101), paths to a
// final state (W102), dead ends (W105), a machine without final states
// (W107) and loops of timers with no delay (W109). Only W101 needs an initial state. Edges are every transition and timer target; guards are not
// evaluated, so an edge counts when it could ever be taken.

func checkGraph(c *checker, m *Machine) {
	n := len(m.States)
	forward := make([][]int, n)
	backward := make([][]int, n)
	edge := func(from *State, to *State) {
		if to == nil {
			return
		}
		forward[from.Index] = append(forward[from.Index], to.Index)
		backward[to.Index] = append(backward[to.Index], from.Index)
	}
	var finals []int
	for _, s := range m.States {
		// targets also holds transitions dropped for another error (an
		// undefined event, say), so one mistake is not reported again here.
		for _, t := range s.targets {
			edge(s, t)
		}
		if s.Final {
			finals = append(finals, s.Index)
		}
	}
	if m.Initial != nil { // without one, E008 says enough
		reachable := walk(forward, []int{m.Initial.Index})
		for _, s := range m.States {
			if !reachable[s.Index] {
				c.warnf(s.Range, Unreachable, "state %q is unreachable from the initial state %q", s.Name, m.Initial.Name)
			}
		}
	}
	if len(finals) == 0 {
		c.warnf(m.Range, NoFinalState, "machine %q has no final state, so its instances never complete", m.Name)
	} else {
		canFinish := walk(backward, finals)
		for _, s := range m.States {
			if !canFinish[s.Index] {
				c.warnf(s.Range, NoPathToFinal, "no path leads from state %q to a final state", s.Name)
			}
		}
	}
	for _, s := range m.States {
		if !s.Final && s.Task == nil && s.written == 0 { // a broken transition is still one
			c.warnf(s.Range, DeadEnd, "state %q is a dead end: it has no transitions, no timers and no task", s.Name)
		}
	}
	checkZeroDelayLoops(c, m)
}

// checkZeroDelayLoops reports each loop of timers with no delay (W109).
// A state with a timer whose delay is the constant 0 is left as soon as
// it is entered, by the first such timer (the others belong to a visit
// that is over by the time they fire), so each state has at most one
// such way out, and a loop of them is followed for ever. An event that
// arrives in between may leave the loop; nothing in the machine waits
// for one.
func checkZeroDelayLoops(c *checker, m *Machine) {
	next := make([]*Timer, len(m.States))
	for _, s := range m.States {
		for _, t := range s.Timers {
			if v, ok := constValue(t.Delay); ok && v.I == 0 && t.Target != nil {
				next[s.Index] = t
				break
			}
		}
	}
	// Follow each state's way out until it ends, meets a state an
	// earlier walk saw, or comes back to this walk's own path: a loop.
	walked := make([]int, len(m.States)) // 0: not yet; else the walk (1-based) that saw the state
	for start := range m.States {
		at := start
		for walked[at] == 0 && next[at] != nil {
			walked[at] = start + 1
			at = next[at].Target.Index
		}
		if walked[at] != start+1 || next[at] == nil {
			continue
		}
		// at is on the loop: name its states from the first in the
		// source.
		first := at
		for s := next[at].Target.Index; s != at; s = next[s].Target.Index {
			first = min(first, s)
		}
		at = first
		names := fmt.Sprintf("%q", m.States[at].Name)
		var notes []Note
		for s := next[at].Target.Index; ; s = next[s].Target.Index {
			names += fmt.Sprintf(" -> %q", m.States[s].Name)
			if s == first {
				break
			}
			notes = append(notes, Note{Range: next[s].Range, Message: fmt.Sprintf("state %q is left at once here", m.States[s].Name)})
		}
		d := c.warnf(next[first].Range, ZeroDelayLoop, "timers with no delay loop through states %s: an instance there goes round for ever without waiting", names)
		d.Related = notes
	}
}

// walk returns the nodes reachable from roots along edges.
func walk(edges [][]int, roots []int) []bool {
	seen := make([]bool, len(edges))
	stack := append([]int(nil), roots...)
	for _, r := range roots {
		seen[r] = true
	}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, w := range edges[v] {
			if !seen[w] {
				seen[w] = true
				stack = append(stack, w)
			}
		}
	}
	return seen
}
