#!/usr/bin/env bash
# Build the pinned Go tools this project uses into .tools/bin/, each once per version, reusing Go's module and
# build caches. Prints what it built or reused and how long it took. Adding a tool is one `tool` line at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOFLAGS="${GOFLAGS:-} -trimpath"
root=$PWD/.tools
mkdir -p "$root/bin"

# tool NAME PACKAGE VERSION [LDFLAGS]: NAME at .tools/NAME-VERSION/NAME, linked from .tools/bin/NAME.
# `go install PACKAGE@VERSION` first; where Go refuses that (the module has replace directives), the module's
# source is copied into a scratch module under .tools/src/ and built there, so its replace directives apply.
tool() {
  local name=$1 pkg=$2 version=$3 ldflags=${4:-}
  local dir=$root/$name-$version start=$SECONDS
  if [ -x "$dir/$name" ]; then
    echo "tools: reused $name $version ($dir/$name)"
  else
    mkdir -p "$dir"
    if ! GOBIN=$dir go install -ldflags "$ldflags" "$pkg@$version" 2>"$dir/install.log"; then
      grep -q "replace directives" "$dir/install.log" || { cat "$dir/install.log" >&2; exit 1; }
      local module src
      module=$(go list -m -json "${pkg%%/cmd/*}@$version" | sed -n 's/^\t"Path": "\(.*\)",$/\1/p')
      src=$root/src/$name-$version
      rm -rf "$src" && mkdir -p "$root/src"
      cp -r "$(go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')" "$src"
      chmod -R u+w "$src"
      (cd "$src" && go build -ldflags "$ldflags" -o "$dir/$name" "./${pkg#"$module"/}")
    fi
    rm -f "$dir/install.log"
    echo "tools: built $name $version in $((SECONDS - start))s ($dir/$name)"
  fi
  ln -sfn "../$name-$version/$name" "$root/bin/$name"
}

tool helm helm.sh/helm/v4/cmd/helm v4.3.2 "-X helm.sh/helm/v4/internal/version.version=v4.3.2"
