module github.com/fsmc/fsmc/bench

go 1.23

replace github.com/fsmc/fsmc => ../

require (
	github.com/fsmc/fsmc v0.0.0
	github.com/looplab/fsm v1.0.3
	github.com/qmuntal/stateless v1.7.2
)

require github.com/alecthomas/participle/v2 v2.1.4 // indirect
