package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/simdevice"
)

const devSynopsis = `dev [<plugin dir>]

Runs one plugin (default: the one in the current directory) alone on the
simulated device, with hot reload: a changed plugin.toml or module (for Go,
its source) reloads it, and a reload that fails keeps the old version
running. Its state (/data, the compile cache, the admin socket) and the
runtime.toml it runs are in <plugin dir>/.airlock, so that
  airlock trigger --config .airlock/runtime.toml <name> timer <timer>
sends it an event. Ctrl-C stops it.`

func cmdDev(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", devSynopsis, stderr)
	pos, err := parseArgs(fs, args, stdout, 0, 1)
	if err != nil {
		return err
	}
	dir := "."
	if len(pos) == 1 {
		dir = pos[0]
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// The manifest is read here first, so that a mistake in it is said
	// before the host starts, as airlock check would say it.
	def := manifest.DefaultRuntime()
	m, err := manifest.LoadManifest(filepath.Join(abs, "plugin.toml"), &def, host.Schema(builtin.Capabilities()))
	if err != nil {
		return err
	}
	state := filepath.Join(abs, ".airlock")
	if err := os.MkdirAll(state, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(state, "runtime.toml")
	text := "# Written by airlock dev: " + m.Name + " alone on the simulated device.\n" + simdevice.Solo(abs, state, true)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	trig := "airlock trigger --config " + conf + " " + m.Name + " timer <name>"
	if len(m.Timers) > 0 {
		trig = "airlock trigger --config " + conf + " " + m.Name + " timer " + m.Timers[0].Name
	}
	fmt.Fprintf(stderr, "airlock dev: %s on the simulated device; it reloads when %s or its module changes. Ctrl-C stops it.\n  send it an event: %s\n", m.Name, filepath.Join(abs, "plugin.toml"), trig)
	return runConfig(conf, stderr)
}
