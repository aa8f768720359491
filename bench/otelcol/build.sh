#!/usr/bin/env bash
# Build the OpenTelemetry Collector distribution for bench_ingest.py --vs-otel
# from the Go module proxy (versions pinned in go.mod/go.sum) into a cache dir
# outside the repository. Prints the binary's path. Safe to rerun: a binary
# already built from the same go.mod, go.sum and main.go is reused.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v go >/dev/null || { echo "build.sh: needs the Go toolchain (go.mod says which)" >&2; exit 1; }
cache="${STREAMSLO_OTELCOL_CACHE:-$HOME/.cache/streamslo/otelcol}"
mkdir -p "$cache"
stamp="$(sha256sum "$here/go.mod" "$here/go.sum" "$here/main.go" 2>/dev/null | sha256sum | cut -c1-12)"
out="$cache/otelcol-bench-$stamp"
if [[ ! -x "$out" ]]; then
  cd "$here"
  # -p 2: this machine has two cores shared with everything else.
  # -mod=readonly: build exactly what go.mod/go.sum pin, never update them.
  GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -p 2 -trimpath -ldflags="-s -w" -o "$out.tmp" .
  mv "$out.tmp" "$out"
fi
echo "$out"
