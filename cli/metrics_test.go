//go:build unix

package cli

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
)

// TestWorkerMetrics: a worker's /metrics has fsmc's series and the
// process's and Go's own (memory, goroutines, open files).
func TestWorkerMetrics(t *testing.T) {
	redistest.URL(t) // skips, or fails, without a Redis
	url, err := redistest.FreshDatabase()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "toggle.fsm")
	if err := os.WriteFile(file, []byte(irtest.Toggle), 0o644); err != nil {
		t.Fatal(err)
	}
	b := runInBackground("", "run", "--redis", url, "--metrics-addr", "127.0.0.1:0", file)
	b.waitFor(t, &b.stderr, "worker started")
	addr := regexp.MustCompile(`serving metrics" addr=(\S+)`).FindStringSubmatch(b.stderr.String())
	if addr == nil {
		t.Fatalf("no metrics address in:\n%s", b.stderr.String())
	}
	resp, err := http.Get("http://" + addr[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, series := range []string{"fsmc_queue_waiting", "go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		if !strings.Contains(string(body), series) {
			t.Errorf("no %s in /metrics", series)
		}
	}
	if code := b.interrupt(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, b.stderr.String())
	}
}
