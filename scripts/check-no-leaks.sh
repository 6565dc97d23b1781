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
# The test node (src/node): containerd and its shims name the node's folder in their arguments.
node_dir=/var/tmp/etcd-robustness-node
node_procs=$(pgrep -af -- "$node_dir" || true)
leaked=$(printf '%s\n%s\n%s\n%s' "$leaked" "$cli" "$prom" "$node_procs" | sed '/^$/d')
if [ -n "$leaked" ]; then
  echo "Leaked processes started from $root/.cache/bin (a test did not stop them):" >&2
  echo "$leaked" >&2
  exit 1
fi
echo "no leaked etcd, kube-apiserver, agent, operator, prometheus or node processes"

# What else a test node leaves when it is not closed: its bridges (erk<N>), mounts under its folder (the
# kubelet's volumes, containers' root filesystems, Pod network namespaces), the Pods' cgroups in any
# hierarchy, network namespaces in /run/netns, the folder itself.
node_left=$(
  ip -o link show type bridge 2>/dev/null | awk -F': ' '$2 ~ /^erk[0-9]+$/ { print "bridge " $2 }'
  awk -v dir="$node_dir" '$5 == dir || index($5, dir "/") == 1 { print "mount " $5 }' /proc/self/mountinfo
  for cg in /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/kubepods; do [ -d "$cg" ] && echo "cgroup $cg"; done
  for ns in /run/netns/cni-*; do [ -e "$ns" ] && echo "netns $ns"; done
  [ -e "$node_dir" ] && echo "folder $node_dir"
  true
)
if [ -n "$node_left" ]; then
  echo "A test node was not torn down (KubeNode.close() removes all of it; the next KubeNode.start() reclaims it):" >&2
  echo "$node_left" >&2
  exit 1
fi
echo "no test node leftovers (bridge, mounts, kubepods cgroups, netns, $node_dir)"
