#!/usr/bin/env bash
# Build the pinned Go tools this project uses into .tools/bin/, each once per version, reusing Go's module and
# build caches. Prints what it built or reused and how long it took. Adding a tool is one `tool` line at the end.
set -euo pipefail
renice -n 19 -p $$ >/dev/null  # builds run niced: the machine is shared
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOFLAGS="${GOFLAGS:-} -trimpath"
root=$PWD/.tools
mkdir -p "$root/bin"

# `scripts/tools.sh NAME...` builds only the named tools (the unit suite needs helm alone; .ci/run builds the engine
# tools in the background meanwhile); without names it builds all (scripts/e2e.sh).
selected() { [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " == *" $1 "* ]]; }
wanted=("$@")

# tool NAME PACKAGE VERSION [LDFLAGS]: NAME at .tools/NAME-VERSION/NAME, linked from .tools/bin/NAME.
# `go install PACKAGE@VERSION` first; where Go refuses that (the module has replace directives), the module's
# source is copied into a scratch module under .tools/src/ and built there, so its replace directives apply.
tool() {
  local name=$1 pkg=$2 version=$3 ldflags=${4:-}
  local dir=$root/$name-$version start=$SECONDS
  selected "$name" || return 0
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


# module_tool NAME MODULE VERSION PACKAGE [LDFLAGS] [SIBLINGS]: for a module whose go.mod replaces its sibling modules
# by local paths (../sdk, ./staging/src/...), which neither `go install` nor a copy of the module can resolve. A
# scratch module under .tools/src/ requires MODULE@VERSION, replaces each required sibling by its published version
# SIBLINGS (default VERSION), keeps the module's other replace lines, and builds PACKAGE there. A PACKAGE of `.`
# is our own main in scripts/tools/NAME/, built with the files it names in an `//embed-from-module:` line.
module_tool() {
  local name=$1 module=$2 version=$3 pkg=$4 ldflags=${5:-} siblings=${6:-$3}
  local dir=$root/$name-$version src=$root/src/$name-$version start=$SECONDS upstream
  selected "$name" || return 0
  if [ -x "$dir/$name" ]; then
    echo "tools: reused $name $version ($dir/$name)"
  else
    mkdir -p "$dir" && rm -rf "$src" && mkdir -p "$src"
    upstream=$(go mod download -json "$module@$version" | jq -r .Dir)
    (cd "$src" && go mod init "pai.tools/$name" >/dev/null 2>&1 && go mod edit -require "$module@$version")
    go mod edit -json "$upstream/go.mod" | jq -r --arg v "$siblings" '
      (.Require // [] | map(.Path)) as $required | .Replace // [] | .[]
      | .Old.Path as $old | if (.New.Version // "") != "" then "-replace=\($old)=\(.New.Path)@\(.New.Version)"
        elif ($required | index($old)) then "-replace=\($old)=\($old)@\($v)"
        else empty end' | (cd "$src" && xargs -r go mod edit)
    if [ "$pkg" = . ]; then
      cp scripts/tools/"$name"/*.go "$src/"
      for file in $(sed -n 's|^//embed-from-module: ||p' "$src"/*.go); do cp "$upstream/$file" "$src/"; done
    fi
    (cd "$src" && go build -mod=mod -ldflags "$ldflags" -o "$dir/$name" "$pkg")
    echo "tools: built $name $version in $((SECONDS - start))s ($dir/$name)"
  fi
  ln -sfn "../$name-$version/$name" "$root/bin/$name"
}

tool helm helm.sh/helm/v4/cmd/helm v4.3.2 "-X helm.sh/helm/v4/internal/version.version=v4.3.2"
module_tool pulumi github.com/pulumi/pulumi/pkg/v3 v3.276.0 github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
  "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v3.276.0"
# v4.25.0 is the commit f47bc2d6f199 (the provider module has no v4 tags on the proxy).
module_tool pulumi-resource-kubernetes github.com/pulumi/pulumi-kubernetes/provider/v4 \
  v4.0.0-20260115033456-f47bc2d6f199 . \
  "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=4.25.0" v4.25.0
module_tool etcd go.etcd.io/etcd/server/v3 v3.6.17 go.etcd.io/etcd/server/v3
module_tool kube-apiserver k8s.io/kubernetes v1.36.3 k8s.io/kubernetes/cmd/kube-apiserver \
  "-X k8s.io/component-base/version.gitVersion=v1.36.3 -X k8s.io/component-base/version.gitMajor=1
   -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean" v0.36.3
