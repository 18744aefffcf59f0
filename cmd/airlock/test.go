package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airlockhq/airlock/internal/solo"
)

const testSynopsis = `test [--timeout 60s] [<plugin dir>] [<scenario.toml>...]

Plays scenario files against a plugin (default: the one in the current
directory), each in a fresh host on the simulated device: their [config],
[data] and [env], then their steps in order, events to send (timer, udev,
dbus) and outcomes to wait for (log, audit, supervisor, data). Without
scenario files it plays <plugin dir>/test/*.toml. A step fails at the
timeout, or at once when the plugin traps or logs an error. A Go plugin
is built first when its module is stale. Exit code 1 if any failed.`

func cmdTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("test", testSynopsis, stderr)
	timeout := fs.Duration("timeout", 60*time.Second, "how long each step may wait")
	pos, err := parseArgs(fs, args, stdout, 0, 1<<16)
	if err != nil {
		return err
	}
	dir, files := ".", []string{}
	for _, p := range pos {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			dir = p
		} else {
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		if files, err = solo.Scripts(dir); err != nil {
			return err
		}
	}
	failed := 0
	for _, f := range files {
		name := f // as the plugin directory names it
		if r, err := filepath.Rel(dir, f); err == nil && !strings.HasPrefix(r, "..") {
			name = r
		}
		start := time.Now()
		s, err := solo.LoadScript(f)
		if err == nil {
			err = s.Run(dir, *timeout)
		}
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL %s: %s\n", name, strings.ReplaceAll(err.Error(), "\n", "\n     "))
			continue
		}
		fmt.Fprintf(stdout, "ok   %s (%d steps, %s)\n", name, len(s.Steps), time.Since(start).Round(time.Millisecond))
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "FAIL: %d of %d scenarios\n", failed, len(files))
		return errReported
	}
	fmt.Fprintf(stdout, "PASS: %d scenarios\n", len(files))
	return nil
}
