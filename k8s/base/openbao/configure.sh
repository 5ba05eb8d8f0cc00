#!/bin/sh
# One-time OpenBao set-up, run by an operator after `bao operator init` and unseal:
#   kubectl -n quoteflow exec -it openbao-0 -- env BAO_TOKEN=<root or admin token> \
#       /openbao/setup/configure.sh <executor owner: the Keycloak subject in [execute] owner>
# Idempotent: every step may be re-run. The token is typed by the operator, never stored.
set -eu
owner="${1:?usage: configure.sh EXECUTOR_OWNER}"
namespace="${NAMESPACE:-quoteflow}"
here="$(dirname "$0")"

bao secrets list | grep -q '^secret/' || bao secrets enable -path=secret kv-v2
bao secrets list | grep -q '^transit/' || bao secrets enable transit
bao read transit/keys/quoteflow-exchange-keys >/dev/null 2>&1 ||
    bao write -f transit/keys/quoteflow-exchange-keys type=aes256-gcm96

bao auth list | grep -q '^kubernetes/' || bao auth enable kubernetes
bao write auth/kubernetes/config kubernetes_host="https://kubernetes.default.svc"

sed "s/OWNER/$owner/g" "$here/executor.hcl" | bao policy write "quoteflow-executor-$owner" -
bao policy write quoteflow-api "$here/api.hcl"
bao policy write quoteflow-platform "$here/platform.hcl"

# Short-lived tokens bound to one service account each; audience "openbao" matches the
# projected tokens the pods mount (never the default API-server token).
bao write auth/kubernetes/role/quoteflow-executor \
    bound_service_account_names=quoteflow-executor bound_service_account_namespaces="$namespace" \
    audience=openbao token_policies="quoteflow-executor-$owner" token_ttl=1h token_max_ttl=4h
bao write auth/kubernetes/role/quoteflow-api \
    bound_service_account_names=quoteflow-api bound_service_account_namespaces="$namespace" \
    audience=openbao token_policies=quoteflow-api token_ttl=1h token_max_ttl=4h
bao write auth/kubernetes/role/quoteflow-platform \
    bound_service_account_names=quoteflow-secrets-sync bound_service_account_namespaces="$namespace" \
    audience=openbao token_policies=quoteflow-platform token_ttl=1h token_max_ttl=4h
echo "configured; now put the platform secrets (docs/kubernetes.md, step 5)"
