package clitest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
)

// proc is a long-running airlock subprocess whose stderr the test reads
// line by line.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	more  chan struct{}
	done  chan error
}

func (a *author) start(dir string, args ...string) *proc {
	a.t.Helper()
	cmd := exec.Command(a.bin, args...)
	cmd.Dir = dir
	cmd.Env = a.env
	r, err := cmd.StderrPipe()
	if err != nil {
		a.t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	p := &proc{t: a.t, cmd: cmd, more: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
		p.done <- cmd.Wait()
	}()
	a.t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

// wait waits for a line holding every part; the bound is a liveness guard
// for a loaded machine, not a timing assertion.
func (p *proc) wait(parts ...string) {
	p.t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		p.mu.Lock()
		more := p.more
		for _, l := range p.lines {
			if containsAll(l, parts) {
				p.mu.Unlock()
				return
			}
		}
		out := strings.Join(p.lines, "\n")
		p.mu.Unlock()
		select {
		case <-more:
		case <-deadline:
			p.t.Fatalf("no line with %q; output:\n%s", parts, out)
		}
	}
}

// stop sends SIGINT, as Ctrl-C does, and expects exit 0.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("airlock exited with %v", err)
		}
	case <-time.After(time.Minute):
		p.t.Error("airlock did not stop within a minute of SIGINT")
	}
}

func containsAll(s string, parts []string) bool {
	for _, part := range parts {
		if !strings.Contains(s, part) {
			return false
		}
	}
	return true
}

// TestDev: airlock dev runs one plugin on the simulated device, without a
// runtime.toml of the author's, and reloads it when its plugin.toml
// changes; airlock trigger reaches it with the config dev says.
func TestDev(t *testing.T) {
	testenv.NeedToolchain(t, "c")
	a := newAuthor(t)
	work := t.TempDir()
	a.must(work, "airlock", "new", "--lang", "c", "dev-c")
	dir := filepath.Join(work, "dev-c")
	a.must(dir, "./build.sh")
	p := a.start(dir, "dev")
	p.wait("send it an event: airlock trigger --config " + filepath.Join(dir, ".airlock", "runtime.toml") + " dev-c timer tick")
	p.wait("hello from dev-c")
	// Changes before the watcher starts are not seen (the initial load reads
	// them); the watcher starts before "airlock running".
	p.wait("airlock running")
	manifest := filepath.Join(dir, "plugin.toml")
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, []byte(strings.Replace(string(b), `greeting = "hello"`, `greeting = "howdy"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.wait("plugin reloaded", "plugin=dev-c")
	p.wait("howdy from dev-c")
	good, _ := os.ReadFile(manifest)

	// A mistake keeps the running version, and status says so; undoing it
	// clears that, though the plugin did not change.
	if err := os.WriteFile(manifest, append(append([]byte{}, good...), "bogus = 1\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	p.wait("reload failed; the old version runs on", "plugin=dev-c")
	if st := a.must(dir, "airlock", "status", "--config", ".airlock/runtime.toml"); !strings.Contains(st, "reload failed") {
		t.Errorf("status after a failed reload:\n%s", st)
	}
	if err := os.WriteFile(manifest, good, 0o644); err != nil {
		t.Fatal(err)
	}
	p.wait("the running version is back", "plugin=dev-c")
	if st := a.must(dir, "airlock", "status", "--config", ".airlock/runtime.toml"); strings.Contains(st, "reload failed") {
		t.Errorf("status after the good plugin.toml is back:\n%s", st)
	}
	a.must(dir, "airlock", "trigger", "dev-c", "timer", "tick", "--config", ".airlock/runtime.toml")
	p.wait("tick timer=tick count=1")
	p.stop()
}
