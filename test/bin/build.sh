#!/usr/bin/env bash
# Builds the real binaries the tests run, from Go modules at the versions pinned
# in the go.mod files beside this script:
#   etcd, etcdctl, etcdutl  (v3.6 and v3.5, gofail failpoints compiled in)
#   etcd, etcdctl, etcdutl  (the same versions as released, without failpoints: the plain etcd images of
#     test/bin/build-images.sh)
#   kube-apiserver, kubectl, and a node's kubelet, kube-scheduler, kube-controller-manager and
#     kube-proxy (k8s.io/kubernetes; the test node of src/node runs them)
#   coredns (github.com/coredns/coredns: the test node's cluster DNS)
#   helm (helm.sh/helm/v3)
#   etcd-wal-commit (tools/etcd-wal-commit: the repository's own Go tool, on plain upstream etcd modules)
#   etcd-launcher (tools/etcd-launcher: the member Pods' etcd entrypoint that honours the crash hold)
# into the git-ignored cache .cache/bin/<name>-<version>/ and writes
# .cache/bin/binaries.json, which the TypeScript test helpers read.
#
# Idempotent: each set of binaries carries a stamp of its inputs (go.mod, go.sum,
# this script, the Go version); a second call with the same inputs does nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="$root/.cache"
bin="$cache/bin"
mkdir -p "$bin" "$cache/src" "$cache/tools"

# Never let the go command fetch a different toolchain: the machine's Go builds all of this.
export GOTOOLCHAIN=local
export GOFLAGS="-buildvcs=false -trimpath"
export CGO_ENABLED=0

GOFAIL_VERSION=v0.2.0

# `build.sh --tidy` refreshes go.sum after a version bump in one of the go.mod files.
tidy=false
[ "${1:-}" = "--tidy" ] && tidy=true

log() { printf '[build-bins] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required (go1.26 or newer) to build etcd and kube-apiserver"; exit 1; }

# Prints the version that go.mod in $1 requires for module $2.
required_version() {
  (cd "$1" && go list -m -f '{{.Version}}' "$2")
}

stamp_of() {
  local dir=$1 file
  # A module with its own sources (tools/) is stamped with them too.
  # A module without dependencies has no go.sum.
  local sources=("$here/build.sh" "$dir/go.mod")
  [ -f "$dir/go.sum" ] && sources+=("$dir/go.sum")
  for file in "$dir"/*.go; do [ -f "$file" ] && sources+=("$file"); done
  { go version; cat "${sources[@]}"; } | sha256sum | cut -d' ' -f1
}

up_to_date() {
  local out=$1 stamp=$2
  [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]
}

# shellcheck source=gofail.sh
source "$(dirname "${BASH_SOURCE[0]}")/gofail.sh"

# build_set NAME MODULE_DIR OUTPUT_NAME=PACKAGE...
build_set() {
  local out=$1 dir=$2
  shift 2
  if $tidy; then (cd "$dir" && go mod tidy); fi
  local stamp
  stamp=$(stamp_of "$dir")
  if up_to_date "$out" "$stamp"; then
    log "$(basename "$out") is up to date"
    return 0
  fi
  log "building $(basename "$out") (a cold build takes minutes; later calls are no-ops)"
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  local spec name pkg
  for spec in "$@"; do
    name=${spec%%=*}
    pkg=${spec#*=}
    (cd "$dir" && go build -o "$out.tmp/$name" "$pkg")
  done
  echo "$stamp" >"$out.tmp/.stamp"
  rm -rf "$out"
  mv "$out.tmp" "$out"
}

build_etcd() {
  local series=$1 dir="$here/etcd-$1"
  local version
  # Read go.mod as text: the go command cannot load this module before the replaced copy exists.
  version=$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v[0-9]/ { print $2; exit }' "$dir/go.mod")
  [ -n "$version" ] || { log "no etcd server version pinned in $dir/go.mod"; exit 1; }
  prepare_gofail_server "$version"
  build_set "$bin/etcd-$version" "$dir" \
    etcd=go.etcd.io/etcd/server/v3 \
    etcdctl=go.etcd.io/etcd/etcdctl/v3 \
    etcdutl=go.etcd.io/etcd/etcdutl/v3
  echo "$version"
}

# The same version as released (plain upstream modules, no gofail), for the plain etcd images.
build_etcd_plain() {
  local dir="$here/etcd-$1-plain" version
  version=$(required_version "$dir" go.etcd.io/etcd/server/v3)
  build_set "$bin/etcd-plain-$version" "$dir" \
    etcd=go.etcd.io/etcd/server/v3 \
    etcdctl=go.etcd.io/etcd/etcdctl/v3 \
    etcdutl=go.etcd.io/etcd/etcdutl/v3
  echo "$version"
}

build_kube() {
  local dir="$here/kube" version
  version=$(required_version "$dir" k8s.io/kubernetes)
  # Stamp the version the way Kubernetes' own build does (hack/lib/version.sh): unstamped, every
  # component says v0.0.0-master, and a chart's kubeVersion constraint refuses the cluster.
  local major minor pkg flags=""
  major=$(cut -d. -f1 <<<"${version#v}")
  minor=$(cut -d. -f2 <<<"$version")
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags="$flags -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  GOFLAGS="$GOFLAGS '-ldflags=${flags# }'" \
    build_set "$bin/kube-$version" "$dir" \
    kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
    kubectl=k8s.io/kubernetes/cmd/kubectl \
    kubelet=k8s.io/kubernetes/cmd/kubelet \
    kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
    kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
    kube-proxy=k8s.io/kubernetes/cmd/kube-proxy
  echo "$version"
}

build_coredns() {
  local dir="$here/coredns" version
  version=$(required_version "$dir" github.com/coredns/coredns)
  build_set "$bin/coredns-$version" "$dir" coredns=github.com/coredns/coredns
  echo "$version"
}

build_helm() {
  local dir="$here/helm" version client_go major minor
  version=$(required_version "$dir" helm.sh/helm/v3)
  client_go=$(required_version "$dir" k8s.io/client-go)
  # Stamp the version and the Kubernetes version helm assumes without a cluster (helm template, helm lint)
  # the way helm's Makefile does: client-go v0.N.x goes with Kubernetes 1.N. Unstamped, helm says v3.x and 1.20.
  major=1
  minor=$(cut -d. -f2 <<<"$client_go")
  GOFLAGS="$GOFLAGS '-ldflags=-X helm.sh/helm/v3/internal/version.version=$version \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor'" \
    build_set "$bin/helm-$version" "$dir" helm=helm.sh/helm/v3/cmd/helm
  echo "$version"
}

# The tools the operator's image carries too (see the Dockerfile), built against plain upstream etcd
# modules (no gofail) at the version test/bin/etcd-v3.6 pins.
build_tools() {
  local dir="$root/tools/etcd-wal-commit" version
  version=$(required_version "$dir" go.etcd.io/etcd/server/v3)
  build_set "$bin/tools-etcd-$version" "$dir" etcd-wal-commit=.
  echo "$version"
}

# The member Pods' etcd entrypoint (standard library only), which the operator's image carries too.
build_launcher() {
  build_set "$bin/etcd-launcher" "$root/tools/etcd-launcher" etcd-launcher=.
}

etcd_current=$(build_etcd v3.6)
etcd_previous=$(build_etcd v3.5)
plain_current=$(build_etcd_plain v3.6)
plain_previous=$(build_etcd_plain v3.5)
# An image named etcd:<version> must hold the version its failpoint twin holds.
[ "$plain_current" = "$etcd_current" ] && [ "$plain_previous" = "$etcd_previous" ] ||
  { log "test/bin/etcd-v3.6-plain and etcd-v3.5-plain pin $plain_current and $plain_previous, but etcd-v3.6 and etcd-v3.5 pin $etcd_current and $etcd_previous: pin the same versions"; exit 1; }
kube=$(build_kube)
helm=$(build_helm)
coredns=$(build_coredns)
tools=$(build_tools)
build_launcher >&2
# The tool reads and writes the WAL of the etcd the tests and the image run: one etcd version for both.
[ "$tools" = "$etcd_current" ] || { log "tools/etcd-wal-commit requires etcd server $tools but test/bin/etcd-v3.6 pins $etcd_current: pin one version in both go.mod files"; exit 1; }

cat >"$bin/binaries.json.tmp" <<EOF
{
  "etcd": {
    "current": { "version": "$etcd_current", "dir": "$bin/etcd-$etcd_current" },
    "previous": { "version": "$etcd_previous", "dir": "$bin/etcd-$etcd_previous" }
  },
  "etcdPlain": {
    "current": { "version": "$plain_current", "dir": "$bin/etcd-plain-$plain_current" },
    "previous": { "version": "$plain_previous", "dir": "$bin/etcd-plain-$plain_previous" }
  },
  "kube": { "version": "$kube", "dir": "$bin/kube-$kube" },
  "helm": { "version": "$helm", "dir": "$bin/helm-$helm" },
  "coredns": { "version": "$coredns", "dir": "$bin/coredns-$coredns" },
  "tools": { "dir": "$bin/tools-etcd-$tools" },
  "launcher": { "dir": "$bin/etcd-launcher" }
}
EOF
mv "$bin/binaries.json.tmp" "$bin/binaries.json"
log "binaries ready: $bin/binaries.json"
