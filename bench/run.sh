#!/usr/bin/env bash
# Runs airlock's benchmarks beside their anchors (raw wazero, the Extism Go
# SDK, shell scripts run per uevent) and writes BENCHMARKS.md at the
# repository root. The automount comparison (item 4) needs root; without
# it, it says so and the report marks it as not measured.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp)
go test -run '^$' -bench "${BENCH:-.}" -benchmem -count 1 -timeout 30m . | tee "$out"
if [ -z "${BENCH:-}" ]; then
	# The watchdog's checks against wazero's, in the host's own package.
	(cd .. && go test -run '^$' -bench '^BenchmarkLoop$' -count 1 ./internal/wasmbin) | tee -a "$out"
	# Start-up and memory per plugin, by the real host, in every SDK
	# language (they build the hello examples, so they need the toolchains
	# the tests do).
	(cd .. && go test -run '^$' -bench '^(BenchmarkColdStart|BenchmarkMemory)$' -count 1 -timeout 60m ./host) | tee -a "$out"
fi
if [ -z "${BENCH:-}" ] || [ -n "${AUTOMOUNT:-}" ]; then
	# A failure here is reported in BENCHMARKS.md, not fatal to the report.
	go run ./automount -n "${AUTOMOUNT_N:-20}" 2>&1 | tee -a "$out" || echo "# automount: failed to run (see the output above)" | tee -a "$out"
fi
go run ./report < "$out" > ../BENCHMARKS.md
echo "wrote BENCHMARKS.md"
