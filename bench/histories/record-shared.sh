#!/usr/bin/env bash
# Records a shared-mode history: the run in shared mode and a foreign writer outside its prefix, together.
#   bash bench/histories/record-shared.sh REPORT_DIR [MANIFEST (default: manifests/shared-quiet.yaml)]
set -euo pipefail
report=${1:?usage: record-shared.sh REPORT_DIR [MANIFEST]}
manifest=${2:-bench/histories/manifests/shared-quiet.yaml}
out="$report.out"
rm -f "$out"
node src/cli.ts run --local "$manifest" --report "$report" --progress-interval 5s >"$out" 2>&1 &
run=$!
node bench/histories/foreign-writer.ts "$out" &
writer=$!
status=0
wait "$run" || status=$?
kill "$writer" 2>/dev/null || true
wait "$writer" || true
exit "$status"
