package dsl

// The graph pass: reachability from the initial state (W101), paths to a
// final state (W102), dead ends (W105) and a machine without final states
// (W107). Only W101 needs an initial state. Edges are every transition and timer target; guards are not
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
