package store

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// deadPID returns the pid of a process of this host that has exited and
// been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "0")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	pid := cmd.Process.Pid
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestNewOwner(t *testing.T) {
	host, _ := os.Hostname()
	a, b := NewOwner(), NewOwner()
	if a == b {
		t.Errorf("two NewOwner calls: both %q, want distinct owners", a)
	}
	parts := strings.Split(a, "/")
	if len(parts) != 3 || parts[0] != host || parts[1] != strconv.Itoa(os.Getpid()) || parts[2] == "" {
		t.Errorf("NewOwner: got %q, want %q/%d/<random>", a, host, os.Getpid())
	}
	if OwnerDead(a) {
		t.Errorf("OwnerDead(NewOwner()) = true, want false: this process is alive")
	}
}

func TestOwnerDead(t *testing.T) {
	host, _ := os.Hostname()
	dead := deadPID(t)
	for _, c := range []struct {
		owner string
		want  bool
	}{
		{host + "/" + strconv.Itoa(dead) + "/x", true},
		{host + "/" + strconv.Itoa(os.Getpid()) + "/x", false},
		{host + "/" + strconv.Itoa(os.Getppid()) + "/x", false},
		{"another-host-" + host + "/" + strconv.Itoa(dead) + "/x", false},
		{host + "/" + strconv.Itoa(dead), false},
		{host + "/notapid/x", false},
		{host + "/0/x", false},
		{host + "/-1/x", false},
		{"", false},
	} {
		if got := OwnerDead(c.owner); got != c.want {
			t.Errorf("OwnerDead(%q): got %v, want %v", c.owner, got, c.want)
		}
	}
}

func TestKind(t *testing.T) {
	for _, c := range []struct{ in, kind, rest string }{
		{"sqlite:/var/lib/tb/state.db", "sqlite", "/var/lib/tb/state.db"},
		{"/var/lib/tb/state.db", "sqlite", "/var/lib/tb/state.db"},
		{"postgres://u@h/db", "postgres", "postgres://u@h/db"},
		{"postgresql://u@h/db", "postgres", "postgresql://u@h/db"},
	} {
		kind, rest := Kind(c.in)
		if kind != c.kind || rest != c.rest {
			t.Errorf("Kind(%q): got %q, %q, want %q, %q", c.in, kind, rest, c.kind, c.rest)
		}
	}
}
