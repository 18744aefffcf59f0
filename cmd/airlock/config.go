package main

import (
	"flag"
	"os"
)

// configEnv names the runtime config when --config is not given, so that
// airlock status and friends work in a device's container without flags
// (the Dockerfile sets it).
const configEnv = "AIRLOCK_CONFIG"

// defaultConfig is --config's default: $AIRLOCK_CONFIG, else runtime.toml
// in the working directory.
func defaultConfig() string {
	if p := os.Getenv(configEnv); p != "" {
		return p
	}
	return "runtime.toml"
}

// configNamed reports whether the runtime config was named, with --config
// or $AIRLOCK_CONFIG: then it must exist, and login and logout use its
// [registry] auth file rather than the user's docker config.
func configNamed(fs *flag.FlagSet) bool {
	return flagSet(fs, "config") || os.Getenv(configEnv) != ""
}
