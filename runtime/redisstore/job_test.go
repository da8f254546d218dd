package redisstore_test

import (
	"testing"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
)

func compileJob(t *testing.T) *ir.Machine {
	return irtest.Compile(t, "job.fsm", []byte(`machine Job {
    action Work
    initial state Queued {
        do Work
        on done -> Cooling
        on error -> Failed
    }
    state Cooling {
        after 50ms -> Finished
    }
    final state Finished
    final state Failed
}`)).Machines[0]
}
