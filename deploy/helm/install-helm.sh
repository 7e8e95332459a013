#!/usr/bin/env bash
# Installs the pinned helm from the Go module proxy (`go install`), once per machine, into
#   ${XDG_CACHE_HOME:-~/.cache}/datahub-lambda-trigger/helm-<version>/helm
# and prints that path. A second run finds it there and returns at once. Used by .ci/run; the
# tests in tests/deploy look for helm in the same place.
#
# A cold build downloads helm's modules (about 300 MB into the Go module cache) and compiles for
# 3-5 minutes on 2 cores. Without Go, Debian's golang-go is installed when run as root.
set -euo pipefail

HELM_VERSION="v3.22.0"
# What helm v3.22.0's go.mod asks for (go 1.26.0), when the local go is too old to fetch it itself.
GO_TOOLCHAIN="go1.26.8"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/datahub-lambda-trigger/helm-$HELM_VERSION"
if [[ -x "$cache/helm" ]]; then
    echo "$cache/helm"
    exit 0
fi

go="${GO:-go}"
if ! command -v "$go" > /dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get > /dev/null 2>&1; then
        echo "install-helm: no go on PATH; installing Debian's golang-go" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends golang-go >&2 ||
            { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends golang-go >&2; }
        go=go
    else
        echo "install-helm: go is not on PATH (install Go, or helm $HELM_VERSION yourself and set HELM=/path/to/helm)" >&2
        exit 1
    fi
fi
# helm's go.mod asks for a newer Go than Debian's. Go >= 1.21 fetches that toolchain from the
# module proxy by itself (GOTOOLCHAIN=auto); for an older go, fetch the same toolchain module
# the way the go command would, and build with it.
go_minor="$("$go" env GOVERSION | sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p')"
if [[ -z "$go_minor" ]] || ((go_minor < 21)); then
    toolchain="golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.$("$go" env GOOS)-$("$go" env GOARCH)"
    echo "install-helm: $("$go" env GOVERSION) is too old for helm $HELM_VERSION; fetching $toolchain" >&2
    dir="$("$go" mod download -json "$toolchain" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
    # Module files carry no execute bit; the go command sets it on its own toolchains too.
    chmod u+x "$dir"/bin/* "$dir"/pkg/tool/*/* 2> /dev/null || true
    go="$dir/bin/go"
    if [[ ! -x "$go" ]]; then
        echo "install-helm: could not fetch $toolchain" >&2
        exit 1
    fi
fi
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

# helm's own Makefile stamps its version and the Kubernetes version it defaults to (for
# `helm template` and `helm lint`) at link time; without them it claims Kubernetes 1.20.
gomod="$("$go" mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
k8s_minor="$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2] }' "$gomod")"
if [[ -z "$k8s_minor" ]]; then
    echo "install-helm: cannot read the client-go version from $gomod" >&2
    exit 1
fi
ldflags="-s -w"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

# Built into a temporary folder and moved into place, so an interrupted build leaves nothing.
mkdir -p "$(dirname "$cache")"
work="$(mktemp -d "$(dirname "$cache")/.helm-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
echo "install-helm: building helm $HELM_VERSION with $("$go" env GOVERSION) (a few minutes, once)" >&2
CGO_ENABLED=0 GOBIN="$work/bin" "$go" install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
"$work/bin/helm" version --short >&2
rm -rf "$cache"
mv "$work/bin" "$cache"
echo "$cache/helm"
