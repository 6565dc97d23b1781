#!/usr/bin/env bash
# Fails if any process started from the project's binaries (.cache/bin: etcd, kube-apiserver, ...) is
# still running: every test must stop what it started. Run it after the tests, as `npm test` does.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Match on the executable (the second field of `pgrep -a`), not on arguments such as `go build -o`.
leaked=$(pgrep -af -- "$root/.cache/bin/" | awk -v dir="$root/.cache/bin/" 'index($2, dir) == 1' || true)
# Fault agents and operator replicas the tests start run this project's CLI under node.
cli=$(pgrep -af -- "$root/(src/cli\.ts|dist/cli\.js) (agent|operator|dev|witness)" || true)
# Prometheus servers the tests start (test/helpers/prometheus.ts) run on a temporary etcd-robustness-prometheus-* folder.
prom=$(pgrep -af -- "prometheus .*etcd-robustness-prometheus-" || true)
leaked=$(printf '%s\n%s\n%s' "$leaked" "$cli" "$prom" | sed '/^$/d')
if [ -n "$leaked" ]; then
  echo "Leaked processes started from $root/.cache/bin (a test did not stop them):" >&2
  echo "$leaked" >&2
  exit 1
fi
echo "no leaked etcd, kube-apiserver, agent, operator or prometheus processes"
