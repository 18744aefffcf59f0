package simdevice

import (
	"fmt"
	"strings"
)

// Solo is the runtime.toml of one plugin alone on the simulated device: no
// demo, no recorded udev events (the author's events only), debug logs.
// airlock dev, airlock test and plugintest run it. extra is more TOML, such
// as a [limits] table; reload turns on hot reload.
func Solo(pluginDir, stateDir string, reload bool, extra ...string) string {
	return fmt.Sprintf(`plugins = [%q]
state_dir = %q
device = "sim"
build = "auto"
reload = %t

[scenario]
play = "none"

# No recorded events: udev events come from the author alone.
[udev]
source = "replay"
replay = "none"
coldplug = false

[log]
level = "debug"
%s
`, pluginDir, stateDir, reload, strings.Join(extra, "\n"))
}
