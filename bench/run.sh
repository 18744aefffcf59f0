#!/usr/bin/env bash
# Runs airlock's benchmarks beside their anchors (raw wazero, the Extism Go
# SDK) and writes BENCHMARKS.md at the repository root.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp)
go test -run '^$' -bench "${BENCH:-.}" -benchmem -count 1 -timeout 30m . | tee "$out"
go run ./report < "$out" > ../BENCHMARKS.md
echo "wrote BENCHMARKS.md"
