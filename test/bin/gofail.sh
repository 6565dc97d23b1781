# Shared by build.sh and build-release.sh (sourced; they set `cache`, GOFAIL_VERSION and log()).

# gofail, installed once per version into the cache.
gofail_bin() {
  local gofail="$cache/tools/gofail-$GOFAIL_VERSION"
  if [ ! -x "$gofail" ]; then
    log "installing gofail $GOFAIL_VERSION"
    mkdir -p "$cache/tools"
    local tmp
    tmp=$(mktemp -d)
    GOBIN="$tmp" go install "go.etcd.io/gofail@$GOFAIL_VERSION"
    mv "$tmp/gofail" "$gofail"
    rmdir "$tmp"
  fi
  echo "$gofail"
}

# A writable copy of etcd's server module with `gofail enable` run over every package that declares
# failpoints, the way etcd's own `make gofail-enable` prepares the binaries its robustness suite uses.
# An optional second argument names a patch (etcd-release/patches/<name>.patch, paths relative to the
# server module) applied to the copy first, e.g. to add a failpoint a release lacks; the copy is then
# .cache/src/etcd-server-<version>+<name>, and is prepared again when the patch changes.
prepare_gofail_server() {
  local version=$1 patch=${2:-} dest="$cache/src/etcd-server-$1" marker=""
  local patchfile=""
  if [ -n "$patch" ]; then
    patchfile="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/etcd-release/patches/$patch.patch"
    [ -f "$patchfile" ] || { log "no patch $patchfile"; exit 1; }
    dest="$dest+$patch"
    marker=$(sha256sum "$patchfile" | cut -d' ' -f1)
  fi
  [ -f "$dest/.gofail-enabled" ] && [ "$(cat "$dest/.gofail-enabled")" = "$marker" ] && return 0
  local srcdir gofail dirs
  mkdir -p "$cache/src"
  srcdir=$(cd "$cache/src" && go mod download -json "go.etcd.io/etcd/server/v3@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$srcdir" ] || { log "could not download go.etcd.io/etcd/server/v3@$version"; exit 1; }
  gofail=$(gofail_bin)
  rm -rf "$dest.tmp"
  cp -r "$srcdir" "$dest.tmp"
  chmod -R u+w "$dest.tmp"
  if [ -n "$patchfile" ]; then
    (cd "$dest.tmp" && patch -p1 --forward --batch --no-backup-if-mismatch <"$patchfile" >&2) || { log "patch $patch does not apply to etcd server $version"; exit 1; }
    log "patched etcd server $version with $patch"
  fi
  dirs=$(cd "$dest.tmp" && grep -rl --include='*.go' '// gofail:' . | xargs -n1 dirname | sort -u)
  [ -n "$dirs" ] || { log "no gofail failpoints found in etcd server $version"; exit 1; }
  # shellcheck disable=SC2086
  (cd "$dest.tmp" && "$gofail" enable $dirs)
  (cd "$dest.tmp" && go mod edit -require="go.etcd.io/gofail@$GOFAIL_VERSION")
  printf '%s' "$marker" >"$dest.tmp/.gofail-enabled"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  log "gofail enabled in etcd server $version${patch:+ (patched: $patch)} ($(echo "$dirs" | wc -l) packages)"
}
