package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
)

// TestRefusedByACL: an operator command whose Redis user lacks a right
// exits 2 (Redis cannot be used as given), naming the refusal and where
// the rights are listed, whichever command it is.
func TestRefusedByACL(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	if err := c.Do(ctx, "ACL", "SETUSER", "fsmc-cli-read-only", "reset", "on", ">secret", "~*", "&*", "+@read", "+@connection").Err(); err != nil {
		t.Skipf("no ACL users on this Redis: %v", err)
	}
	prefix := fmt.Sprintf("acl%d", time.Now().UnixNano())
	admin := runtime.New(redisstore.New(c, redisstore.Options{Prefix: prefix}), runtime.Options{})
	if err := admin.Register(ctx, irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.Start(ctx, "Toggle", "a", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	url := strings.Replace(redistest.URL(t), "redis://", "redis://fsmc-cli-read-only:secret@", 1)
	for _, args := range [][]string{{"send", "a", "Flip"}, {"cancel", "a"}, {"start", "Toggle", "b"}} {
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"fsmc", args[0], "--redis", url, "--prefix", prefix}, args[1:]...), strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "Redis refused this user") || !strings.Contains(stderr.String(), "NOPERM") {
			t.Errorf("fsmc %s as a read-only user: exit %d, %s", args[0], code, stderr.String())
		}
	}
}
