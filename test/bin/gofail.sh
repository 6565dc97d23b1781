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
prepare_gofail_server() {
  local version=$1 dest="$cache/src/etcd-server-$1"
  [ -f "$dest/.gofail-enabled" ] && return 0
  local srcdir gofail dirs
  mkdir -p "$cache/src"
  srcdir=$(cd "$cache/src" && go mod download -json "go.etcd.io/etcd/server/v3@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$srcdir" ] || { log "could not download go.etcd.io/etcd/server/v3@$version"; exit 1; }
  gofail=$(gofail_bin)
  rm -rf "$dest.tmp"
  cp -r "$srcdir" "$dest.tmp"
  chmod -R u+w "$dest.tmp"
  dirs=$(cd "$dest.tmp" && grep -rl --include='*.go' '// gofail:' . | xargs -n1 dirname | sort -u)
  [ -n "$dirs" ] || { log "no gofail failpoints found in etcd server $version"; exit 1; }
  # shellcheck disable=SC2086
  (cd "$dest.tmp" && "$gofail" enable $dirs)
  (cd "$dest.tmp" && go mod edit -require="go.etcd.io/gofail@$GOFAIL_VERSION")
  touch "$dest.tmp/.gofail-enabled"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  log "gofail enabled in etcd server $version ($(echo "$dirs" | wc -l) packages)"
}
