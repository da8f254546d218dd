//go:build linux

// Package asuser lets a test run its own binary as another user, for
// what a user without root's rights sees (root may write any file, read
// any cache). Dir makes a directory that user can reach (a test's own
// temporary directories are private); Command copies the test binary
// there once and runs it with that user's credentials, the child
// selecting what to do from its arguments or environment.
package asuser

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Nobody is the user id (and group id) of the unprivileged user.
const Nobody = 65534

// Dir returns a new directory with mode perm (0o755 for others to read,
// 0o777 to write too), removed when the test ends.
func Dir(t testing.TB, perm os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fsmc-asuser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Command returns a command running the test binary, copied into dir,
// as uid (with the group of the same number; 0 runs it as root).
func Command(t testing.TB, dir string, uid int, args ...string) *exec.Cmd {
	t.Helper()
	bin := filepath.Join(dir, "test.bin")
	if _, err := os.Stat(bin); os.IsNotExist(err) {
		copyFile(t, os.Args[0], bin)
	}
	cmd := exec.Command(bin, args...)
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	return cmd
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
