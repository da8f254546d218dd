package redisstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/redis/go-redis/v9"
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

// jobStore is a store of two partitions on c under a prefix of its own,
// with the Job machine registered.
func jobStore(t *testing.T, c redis.UniversalClient) (store *redisstore.Store, prefix string, m *ir.Machine) {
	t.Helper()
	prefix = fmt.Sprintf("t%d", prefixes.Add(1))
	store = redisstore.New(c, redisstore.Options{Prefix: prefix, Partitions: 2})
	m = compileJob(t)
	if err := store.PutMachine(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return store, prefix, m
}

// committedVersions lists the versions an instance's history records
// as committed (its start, transitions and timer firings), in order.
func committedVersions(v *runtime.View) []uint64 {
	var out []uint64
	for i := range v.History {
		if _, ok := runtime.ChangeOf(&v.Instance, &v.History[i]); ok {
			out = append(out, v.History[i].Version)
		}
	}
	return out
}
