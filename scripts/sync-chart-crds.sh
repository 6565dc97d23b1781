#!/usr/bin/env bash
# Copies the generated CustomResourceDefinitions in crds/ to the two places that ship them:
#   charts/etcd-robustness-operator/crds/  (helm installs them before the templates)
#   config/crd/bases/                      (kustomize loads no file outside config/)
# Run it after regenerating crds/; test/integration/helm-chart.test.ts fails while the copies differ.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shopt -s nullglob
sources=("$root"/crds/*.yaml)
if [ ${#sources[@]} -eq 0 ]; then
  echo "sync-chart-crds: no CRD files in $root/crds" >&2
  exit 1
fi

for target in "$root/charts/etcd-robustness-operator/crds" "$root/config/crd/bases"; do
  mkdir -p "$target"
  # Drop copies of CRDs that no longer exist.
  for copy in "$target"/*.yaml; do
    [ -f "$root/crds/$(basename "$copy")" ] || rm -f "$copy"
  done
  cp "${sources[@]}" "$target/"
  echo "sync-chart-crds: ${#sources[@]} CRD file(s) -> ${target#"$root"/}" >&2
done
