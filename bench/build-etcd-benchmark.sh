#!/usr/bin/env bash
# Builds etcd's own load generator, `benchmark` (etcd's tools/benchmark, in the root module
# go.etcd.io/etcd/v3), into the git-ignored bench/.bin/etcd-benchmark. The probe benchmark uses it as
# the baseline: etcd's own client at the same client count as our recorder.
#
# Versions come from bench/etcd-benchmark/go.mod: every etcd library the tool links (api, client/v3,
# client/pkg, pkg, server) is pinned to v3.6.16, the etcd the tests run (test/bin/etcd-v3.6/go.mod).
# The root module itself is at v3.6.8, the newest v3.6 release of go.etcd.io/etcd/v3 the Go module
# proxy serves here (it refuses v3.6.16); it only contributes the tool's command-line code, and its
# replace directives (./api, ./client/v3, ...) do not apply to it as a dependency, so the go.mod
# requirements above decide the library versions. `go version -m bench/.bin/etcd-benchmark` shows them.
#
# Idempotent: the binary carries a stamp of its inputs (go.mod, go.sum, this script, the Go version);
# a second call with the same inputs does nothing. `build-etcd-benchmark.sh --tidy` runs `go mod tidy`
# first (after a version change in go.mod).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
module="$here/etcd-benchmark"
out="$here/.bin/etcd-benchmark"
stamp_file="$out.stamp"

# Same conventions as test/bin/build.sh: the machine's Go builds it, never a downloaded toolchain.
export GOTOOLCHAIN=local
export GOFLAGS="-buildvcs=false -trimpath"
export CGO_ENABLED=0

log() { printf '[build-etcd-benchmark] %s\n' "$*" >&2; }

if ! command -v go >/dev/null; then
  log "ERROR: Go is required (go1.26 or newer, on PATH) to build etcd's benchmark tool; none found"
  exit 1
fi

if [ "${1:-}" = "--tidy" ]; then (cd "$module" && go mod tidy); fi

stamp=$({ go version; cat "$here/build-etcd-benchmark.sh" "$module/go.mod" "$module/go.sum"; } | sha256sum | cut -d' ' -f1)
if [ -x "$out" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
  log "bench/.bin/etcd-benchmark is up to date"
  exit 0
fi

log "building etcd's benchmark tool (a cold build takes a minute or two; later calls are no-ops)"
mkdir -p "$here/.bin"
rm -f "$out.tmp" "$stamp_file"
if ! (cd "$module" && go build -o "$out.tmp" go.etcd.io/etcd/v3/tools/benchmark); then
  rm -f "$out.tmp"
  log "ERROR: go build of go.etcd.io/etcd/v3/tools/benchmark failed (see above)"
  exit 1
fi
mv "$out.tmp" "$out"
echo "$stamp" >"$stamp_file"
log "built $out ($(go version -m "$out" | awk '$2 == "go.etcd.io/etcd/client/v3" { print "client/v3 " $3 }'))"
