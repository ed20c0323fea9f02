#!/usr/bin/env bash
# Prints the directory holding kube-apiserver, etcd and kubectl, building them first if needed.
#  - KUBEBUILDER_ASSETS set (envtest's convention, e.g. from setup-envtest): that directory is used.
#  - otherwise the binaries are built from this Go module into a cache directory keyed by the
#    module's content, so a fresh clone on the same machine reuses them; Go's build cache makes a
#    rebuild after a change quick.
# Build output goes to stderr; stdout is only the directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for bin in kube-apiserver etcd; do
    [[ -x "$KUBEBUILDER_ASSETS/$bin" ]] || { echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $bin" >&2; exit 1; }
  done
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

command -v go >/dev/null || { echo "make control-plane: Go is not installed; install Go >= 1.24 or set KUBEBUILDER_ASSETS to setup-envtest's directory" >&2; exit 1; }

k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit}' "$here/go.mod")"
minor="${k8s_version#v1.}"; minor="${minor%%.*}"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" "$here/cmd/etcd/main.go" | sha256sum | cut -c1-16)"
cache_root="${FOUNDRY_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/foundry-operator/controlplane}"
out="$cache_root/$k8s_version-$key"

if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kubectl" ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache_root"
tmp="$(mktemp -d "$cache_root/.build-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# The version the binaries report (kubectl version, /version): what a release build stamps.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
started=$SECONDS
echo "building kube-apiserver, kubectl ($k8s_version) and etcd into $out (a cold build takes several minutes)" >&2
cd "$here"
export GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
go build -trimpath -ldflags "$ldflags" -o "$tmp/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl ./cmd/etcd
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "built in $((SECONDS - started)) s: $(du -sh "$out" | cut -f1)" >&2
echo "$out"
