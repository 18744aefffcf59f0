package main

import (
	"strings"
	"testing"
)

// TestConfigFromEnvironment: without --config, every command reads
// $AIRLOCK_CONFIG (as in the device's container); --config still wins.
func TestConfigFromEnvironment(t *testing.T) {
	t.Setenv(configEnv, "/nonexistent/airlock/runtime.toml")
	for _, args := range [][]string{{"run"}, {"status"}, {"check", t.TempDir()}, {"pull", "registry.example.com/a/b:1"},
		{"login", "-u", "me", "--password-stdin", "registry.example.com"}} {
		r := airlock(args...)
		if r.code != 1 || !strings.Contains(r.stderr, "open /nonexistent/airlock/runtime.toml") {
			t.Errorf("airlock %v with %s set: %v\nwant it to read that file", args, configEnv, r)
		}
	}
	r := airlock("run", "--config", "/nonexistent/other.toml")
	if !strings.Contains(r.stderr, "/nonexistent/other.toml") {
		t.Errorf("--config does not win over %s: %v", configEnv, r)
	}
	if r := airlock("run", "--help"); !strings.Contains(r.out, `(default "/nonexistent/airlock/runtime.toml")`) {
		t.Errorf("run --help does not show the default from %s: %v", configEnv, r)
	}
}
