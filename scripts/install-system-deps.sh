#!/usr/bin/env bash
# Checks and installs what the project needs from the machine itself, before `npm ci && npm test`:
# Go (to build etcd and kube-apiserver from pinned modules) and the Debian packages listed below:
# Chromium and Prometheus for their tests, and what the test node (src/node) runs besides the binaries of
# npm run build:bins: containerd and runc, the CNI plugins (/usr/lib/cni), iptables and nftables for
# kube-proxy's rules and the node's guard, conntrack, iproute2 for its bridge, openssl for its certificates.
set -euo pipefail

min_go=1.26
debian_packages=(chromium prometheus containerd runc containernetworking-plugins iptables nftables conntrack iproute2 openssl)

log() { printf '[system-deps] %s\n' "$*" >&2; }

if ! command -v go >/dev/null; then
  log "Go >= $min_go is required to build etcd and kube-apiserver, and none is on PATH."
  exit 1
fi
go_version=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$min_go" "$go_version" | sort -V | head -n1)" != "$min_go" ]; then
  log "Go $go_version is too old: the pinned etcd and Kubernetes modules need Go >= $min_go."
  exit 1
fi
command -v npm >/dev/null || { log "npm is required (any Node.js; npm ci brings Node 24)"; exit 1; }

missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
log "ok: go $go_version, npm $(npm --version 2>/dev/null)"
