//go:build race

package runtime_test

// raceEnabled: the tests run under the race detector.
const raceEnabled = true
