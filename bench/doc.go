// Package bench measures fsmc against its peers, side by side in one
// benchmark run. It is a module of its own so that the main module does
// not depend on the peers.
//
//	go test -run '^$' -bench . -benchmem
//
// fire_test.go: firing events at a two-state toggle, in process, with
// fsmc's engine on its embedded store, github.com/qmuntal/stateless and
// github.com/looplab/fsm.
package bench
