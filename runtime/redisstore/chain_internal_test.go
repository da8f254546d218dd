package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
)

// TestChainedClaimOfNewWorkWakesNobody: a commit that makes a task
// attempt ready says so ("ready": the store then wakes idle workers),
// unless the claim made with it took that very attempt, which leaves
// nothing for them.
func TestChainedClaimOfNewWorkWakesNobody(t *testing.T) {
	ctx := context.Background()
	m := irtest.Compile(t, "go.fsm", []byte(`machine Go {
    action Work
    event Go
    initial state A {
        on Go -> B
    }
    state B {
        do Work
        on done -> C
    }
    final state C
}`)).Machines[0]
	for _, tc := range []struct {
		noTasks bool
		want    string
	}{{false, "ok"}, {true, "ready"}} {
		s := New(redistest.Client(t), Options{Prefix: testPrefix("chain"), NoRedlock: true})
		t.Cleanup(func() { s.Close() })
		if err := s.PutMachine(ctx, m); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		irtest.Create(t, s, m, "a", now, runtime.Work{Kind: runtime.WorkEvent, Instance: "a", Due: now, Event: 0})
		f := runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}
		var l runtime.Lease
		if ok, err := s.Claim(ctx, f, &l); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		inst := *l.Instance
		inst.State, inst.Visit = 1, inst.Visit+1
		c := &runtime.Commit{Instance: &inst, DropTimers: true,
			History:  []runtime.HistoryEntry{{Time: now, Kind: runtime.HistTransition, Version: inst.Version + 1, From: 0, To: 1, Event: 0}},
			Schedule: []runtime.Work{{Kind: runtime.WorkTask, Instance: "a", Due: now, Visit: inst.Visit, Attempt: 1}}}
		next := f
		next.NoTasks = tc.noTasks
		l.Then = &runtime.Chain{Filter: next}
		out, err := s.commit(ctx, &l, c, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if out != tc.want || l.Then.Found == tc.noTasks {
			t.Errorf("no tasks %v: the commit says %q (want %q), and its claim found %v", tc.noTasks, out, tc.want, l.Then.Found)
		}
		if l.Then.Found && (l.Then.Next.Work.Kind != runtime.WorkTask || l.Then.Next.Work.Instance != "a") {
			t.Errorf("claimed %+v, want a's task attempt", l.Then.Next.Work)
		}
	}
}
