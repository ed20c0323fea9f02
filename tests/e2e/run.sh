#!/usr/bin/env bash
# End-to-end test (`make e2e`): a kind cluster, the image built from this checkout, the Helm chart,
# the Azure emulator in the operator's pod (tests/e2e/values.yaml explains why a sidecar), the
# examples applied, and llm-config asserted.
#
# Needs a Docker engine. Without one it says so and exits 0: GitHub Actions runs it
# (.github/workflows/ci.yaml). Tools: kind, kubectl and helm from PATH, or downloaded into
# $TMPDIR/foundry-e2e-tools when missing. Environment knobs:
#   E2E_CLUSTER     kind cluster name (default foundry-e2e)
#   E2E_KEEP=1      keep the cluster afterwards, for debugging
#   KIND_NODE_IMAGE kind node image (default: kind's own default)
set -euo pipefail

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "make e2e: no Docker engine here; skipped (runs in GitHub Actions)"
  exit 0
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
CLUSTER="${E2E_CLUSTER:-foundry-e2e}"
IMAGE="foundry-operator:e2e"
EMULATOR_IMAGE="foundry-operator-emulator:e2e"
OPERATOR_NS="foundry-system"
APP_NS="llm-e2e"
RELEASE="foundry-operator"
STATE_DIR="/run/foundry-emulator"   # the emulator's --state-dir in tests/e2e/values.yaml
EMULATOR_URL="https://127.0.0.1:8443"   # its --host/--port there, and azure.* endpoints there
TOOLS="${TMPDIR:-/tmp}/foundry-e2e-tools"
KIND_VERSION="v0.29.0"
KUBECTL_VERSION="v1.33.2"
HELM_VERSION="v3.18.4"

log() { printf '\n==> %s\n' "$*"; }

# --- tools ------------------------------------------------------------------------------------
install_tools() {
  local os arch
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  arch="$(uname -m)"
  case "$arch" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; esac
  mkdir -p "$TOOLS"
  export PATH="$TOOLS:$PATH"
  if ! command -v kind >/dev/null 2>&1; then
    log "installing kind $KIND_VERSION"
    curl -fsSLo "$TOOLS/kind" "https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-$os-$arch"
    chmod +x "$TOOLS/kind"
  fi
  if ! command -v kubectl >/dev/null 2>&1; then
    log "installing kubectl $KUBECTL_VERSION"
    curl -fsSLo "$TOOLS/kubectl" "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/$os/$arch/kubectl"
    chmod +x "$TOOLS/kubectl"
  fi
  if ! command -v helm >/dev/null 2>&1; then
    log "installing helm $HELM_VERSION"
    curl -fsSL "https://get.helm.sh/helm-$HELM_VERSION-$os-$arch.tar.gz" |
      tar -xzf - -C "$TOOLS" --strip-components=1 "$os-$arch/helm"
  fi
}

# --- cleanup: diagnostics on failure, then the cluster goes -------------------------------------
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "FAILED (exit $rc): diagnostics"
    kubectl get pods,deployments -A -o wide || true
    kubectl -n "$OPERATOR_NS" describe pods || true
    kubectl -n "$OPERATOR_NS" logs "deployment/$RELEASE" -c azure-emulator --tail=100 || true
    kubectl -n "$OPERATOR_NS" logs "deployment/$RELEASE" -c operator --tail=300 || true
    kubectl -n "$APP_NS" get fa,fdep -o yaml || true
    kubectl -n "$APP_NS" get events --sort-by=.lastTimestamp || true
  fi
  if [ "${E2E_KEEP:-0}" = "1" ]; then
    echo "E2E_KEEP=1: cluster $CLUSTER kept (kind delete cluster --name $CLUSTER)"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  exit "$rc"
}

install_tools
trap cleanup EXIT

# --- cluster and image --------------------------------------------------------------------------
log "creating kind cluster $CLUSTER"
kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
kind create cluster --name "$CLUSTER" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}

log "building $IMAGE"
docker build -t "$IMAGE" "$ROOT"
kind load docker-image "$IMAGE" --name "$CLUSTER"
# The emulator sidecar's image: the same build with the emulator distribution (a test-only target).
docker build --target emulator -t "$EMULATOR_IMAGE" "$ROOT"
kind load docker-image "$EMULATOR_IMAGE" --name "$CLUSTER"

# --- operator with the emulator sidecar ---------------------------------------------------------
log "installing the chart"
kubectl create namespace "$OPERATOR_NS"
# No --wait: the operator container starts only once the credentials Secret exists (below).
helm install "$RELEASE" charts/foundry-operator --namespace "$OPERATOR_NS" \
  --values tests/e2e/values.yaml

log "waiting for the emulator's ready line"
EMULATOR_JSON=""
for _ in $(seq 1 120); do
  EMULATOR_JSON="$(kubectl -n "$OPERATOR_NS" logs "deployment/$RELEASE" -c azure-emulator 2>/dev/null |
    grep -m1 '^{.*"ca_file"' || true)"
  [ -n "$EMULATOR_JSON" ] && break
  sleep 2
done
if [ -z "$EMULATOR_JSON" ]; then
  echo "the emulator printed no ready line within 240 s" >&2
  exit 1
fi
echo "$EMULATOR_JSON"

# Read the fields this script needs from the JSON line; fail clearly if one is missing or the CA
# is not where tests/e2e/values.yaml points SSL_CERT_FILE. (Assigned first: `eval "$(cmd)"` would
# hide a failing cmd from set -e.)
EMU_VARS="$(python3 - "$EMULATOR_JSON" "$STATE_DIR/ca.pem" "$EMULATOR_URL" <<'PY'
import json
import shlex
import sys

ready = json.loads(sys.argv[1])
missing = [k for k in ("url", "tenant_id", "subscription_id", "client_id", "client_secret", "ca_file") if not ready.get(k)]
if missing:
    sys.exit(f"emulator ready line lacks {missing}")
if ready["ca_file"] != sys.argv[2]:
    sys.exit(f"emulator CA at {ready['ca_file']}, but tests/e2e/values.yaml trusts {sys.argv[2]}")
if ready["url"].rstrip("/") != sys.argv[3].rstrip("/"):
    sys.exit(f"emulator serves {ready['url']}, but tests/e2e/values.yaml points the operator at {sys.argv[3]}")
for key in ("tenant_id", "subscription_id", "client_id", "client_secret"):
    print(f"EMU_{key.upper()}={shlex.quote(ready[key])}")
PY
)"
eval "$EMU_VARS"

kubectl -n "$OPERATOR_NS" create secret generic foundry-e2e-azure \
  --from-literal=AZURE_TENANT_ID="$EMU_TENANT_ID" \
  --from-literal=AZURE_CLIENT_ID="$EMU_CLIENT_ID" \
  --from-literal=AZURE_CLIENT_SECRET="$EMU_CLIENT_SECRET"
kubectl -n "$OPERATOR_NS" rollout status "deployment/$RELEASE" --timeout=300s

# --- the examples -------------------------------------------------------------------------------
log "applying examples/ in namespace $APP_NS"
kubectl create namespace "$APP_NS"
# The examples name the emulator's default subscription; follow the emulator if it differs.
sed -E "s/^( *subscriptionId: *)[0-9a-fA-F-]+/\1$EMU_SUBSCRIPTION_ID/" examples/accounts.yaml |
  kubectl -n "$APP_NS" apply -f -
kubectl -n "$APP_NS" wait fa --all --for=condition=Ready --timeout=180s
kubectl -n "$APP_NS" apply -f examples/deployments.yaml
kubectl -n "$APP_NS" wait fdep --all --for=condition=Ready --timeout=420s
kubectl -n "$APP_NS" get fa,fdep

# --- llm-config ---------------------------------------------------------------------------------
log "checking llm-config"
python3 - \
  "$(kubectl -n "$APP_NS" get configmap llm-config -o json)" \
  "$(kubectl -n "$APP_NS" get fa -o json)" \
  "$(kubectl -n "$APP_NS" get fdep reasoning-pro -o json)" <<'PY'
import json
import sys

data = json.loads(sys.argv[1]).get("data", {})
accounts = json.loads(sys.argv[2])["items"]
pro = json.loads(sys.argv[3])

by_region = {a.get("status", {}).get("location"): a for a in accounts}
primary = next(a for a in accounts if a["spec"].get("primary"))
east = by_region.get("eastus2")
assert east is not None, f"no FoundryAccount reports location eastus2: {[a['metadata']['name'] for a in accounts]}"

def endpoints(account):
    status = account.get("status", {})
    return set(status.get("endpoints", {}).values()) | {status.get("endpoint")} - {None}

endpoint = data.get("FOUNDRY_ENDPOINT")
pro_endpoint = data.get("FOUNDRY_ENDPOINT_REASONING_PRO")
assert endpoint, f"FOUNDRY_ENDPOINT missing from llm-config: {sorted(data)}"
assert pro_endpoint, f"FOUNDRY_ENDPOINT_REASONING_PRO missing from llm-config: {sorted(data)}"
# FOUNDRY_ENDPOINT is the namespace's primary account (westus); gpt-5.4-pro is not offered there,
# so REASONING_PRO has its own endpoint, on the eastus2 account.
assert endpoint in endpoints(primary), f"FOUNDRY_ENDPOINT {endpoint} is not an endpoint of {primary['metadata']['name']}"
assert pro_endpoint in endpoints(east), f"FOUNDRY_ENDPOINT_REASONING_PRO {pro_endpoint} is not an endpoint of {east['metadata']['name']}"
assert pro_endpoint != endpoint
assert pro["status"].get("account") == east["metadata"]["name"], pro["status"]
assert pro["status"].get("region") == "eastus2", pro["status"]
print(f"FOUNDRY_ENDPOINT={endpoint}")
print(f"FOUNDRY_ENDPOINT_REASONING_PRO={pro_endpoint} ({east['metadata']['name']}, eastus2)")
PY

log "e2e passed"
