#!/usr/bin/env bash
# The integration tests, in two phases to keep CI under its time budget on a two-CPU machine:
#
#   1. two lanes at once: the tests of the real single-node cluster (src/node: the in-cluster test and its
#      kin, mostly waiting on Pods and on minute boundaries; only one node runs at a time, so they stay
#      one after the other) beside the light tests (a kube-apiserver, a Chromium page, short functional
#      tests of local etcd processes, then operator and Prometheus end-to-end runs that wait with wide
#      margins: nothing timed against a clock that load could break). The node lane is the longer one
#      by minutes, so the light lane's end tests cost phase 1 nothing;
#   2. every other test (real etcd clusters under traffic and faults, timed recoveries), one file at a
#      time, on a quiet machine.
#
# Each lane's lines are prefixed with its name. Exits non-zero if any lane failed, after repeating each
# failed lane's "failing tests" summary at the very end (CI may keep only the tail of a long log, where
# phase 1's failures would otherwise be out of sight). The leak check follows in `npm test`. A new test
# file goes to phase 2 unless listed here.
set -uo pipefail
cd "$(dirname "$0")/.."

dir=test/integration
node_lane=(in-cluster kube-node dev-kubernetes images)
light_lane=(
  controller-kit crd-validation etcd-client-tls-kubernetes helm-chart helm-grafana-dashboard helm-prometheusrule
  kube-apiserver kubernetes-placement kubernetes-placement-upgrade operator-kubernetes report-html report-store
  runner-jobs secure-metrics witness-kube etcd-launcher gofail checker-real-etcd
  etcd-cluster etcd-flags etcd-client-tls wal-commit local-upgrade-member upgrade-step run-local-reclaim
  watch-probe watch-reopen witness-http agent-recovery
  operator-shutdown run-engine-violation fault-heal-removed cluster-deletion-grace peer-proxy history-crash-prefix
  prometheus-alerts dev-command grafana-dashboard-prometheus operator-local
)

for name in "${node_lane[@]}" "${light_lane[@]}"; do
  [ -f "$dir/$name.test.ts" ] || { echo "scripts/test-integration.sh: no $dir/$name.test.ts (renamed? update the lanes)" >&2; exit 2; }
done
node_files=("${node_lane[@]/#/$dir/}"); node_files=("${node_files[@]/%/.test.ts}")
light_files=("${light_lane[@]/#/$dir/}"); light_files=("${light_files[@]/%/.test.ts}")
rest_files=()
for f in "$dir"/*.test.ts; do
  base=$(basename "$f" .test.ts)
  case " ${node_lane[*]} ${light_lane[*]} " in *" $base "*) ;; *) rest_files+=("$f") ;; esac
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run_lane() {
  local name=$1
  shift
  node --test --test-reporter=spec --test-concurrency=1 "$@" 2>&1 | sed -u "s/^/[$name] /" | tee "$logs/$name.log"
  return "${PIPESTATUS[0]}"
}

# The spec reporter ends a failed run with "✖ failing tests:" and each failure's error; print that part.
failure_summary() {
  local name=$1 status=$2
  [ "$status" -eq 0 ] && return
  echo "test-integration: lane $name failed (exit $status); its failing tests:"
  sed -n '/failing tests:/,$p' "$logs/$name.log" | head -n 300
}

start=$(date +%s)
run_lane node "${node_files[@]}" &
node_pid=$!
run_lane light "${light_files[@]}" &
light_pid=$!
wait "$node_pid"; node_status=$?
wait "$light_pid"; light_status=$?
echo "test-integration: phase 1 (node and light lanes) took $(( $(date +%s) - start ))s: node exit $node_status, light exit $light_status"

start=$(date +%s)
run_lane rest "${rest_files[@]}"; rest_status=$?
echo "test-integration: phase 2 (${#rest_files[@]} files) took $(( $(date +%s) - start ))s: exit $rest_status"

failure_summary node "$node_status"
failure_summary light "$light_status"
failure_summary rest "$rest_status"
[ "$node_status" -eq 0 ] && [ "$light_status" -eq 0 ] && [ "$rest_status" -eq 0 ]
