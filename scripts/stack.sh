#!/usr/bin/env bash
# The whole stack on this machine, for a person to look at:
#   scripts/stack.sh up [RECORDING...]   Kafka, PostgreSQL, Keycloak, OpenBao, topics, the persist,
#                                        quote, arbitrage, predict and execute processes, the
#                                        control API; then replays the recordings into md.*
#   scripts/stack.sh down [--wipe]       stops all of it; --wipe also deletes every server's data
#                                        and the processes' state (the next up starts empty)
# Everything listens on 127.0.0.1: Kafka 9092, PostgreSQL 5432, Keycloak 8080, OpenBao 8200,
# API 8000. The API and the executor keep exchange keys in OpenBao, each logged in with its
# own AppRole (docs/secrets.md); the executor's may read owner $QUOTEFLOW_STACK_OWNER's only.
# Logs, pids and the generated configuration are in out/stack/ (mode 0700). Kafka is SASL_SSL
# with ACLs: each process logs in as its own principal (connectors/kafka/acls.py) with a
# password generated here (out/stack/bus/<principal>.password), and the API signs control
# commands with a key generated here (out/stack/command-signing.pem); docs/security.md.
set -euo pipefail
cd "$(dirname "$0")/.."

state=out/stack
config="$state/quoteflow.toml"
kafka_dir="${QUOTEFLOW_KAFKA_DIR:-/tmp/quoteflow-kafka}"
postgres_dir="${QUOTEFLOW_POSTGRES_DIR:-/tmp/quoteflow-postgres}"
keycloak_dir="${QUOTEFLOW_KEYCLOAK_DIR:-/tmp/quoteflow-keycloak}"
openbao_dir="${QUOTEFLOW_OPENBAO_DIR:-/tmp/quoteflow-openbao}"
owner="${QUOTEFLOW_STACK_OWNER:-trader}"
default_recordings=(../shared/data/binance/spot/btcusdt_20240808.gz ../shared/data/binance/usdm/btcusdt_20240808.gz)

start_process() {
    # NAME PRINCIPAL ARGS...: `quoteflow ARGS` logged in to Kafka as PRINCIPAL.
    local name=$1 principal=$2
    shift 2
    QUOTEFLOW_KAFKA__USERNAME="$principal" \
        QUOTEFLOW_KAFKA__PASSWORD_FILE="$PWD/$state/bus/$principal.password" \
        nohup .venv/bin/quoteflow "$@" >"$state/$name.log" 2>&1 &
    echo "$!" >"$state/$name.pid"
    echo "stack: $name started (log $state/$name.log)"
}

up() {
    scripts/bootstrap.sh test
    if compgen -G "$state/*.pid" >/dev/null; then
        echo "stack: already up (pids in $state); ./dev stack down first" >&2
        exit 1
    fi
    # The servers keep their data between ups (Kafka topics and consumer offsets, the
    # database), so the processes keep theirs too: flow snapshots in $state/recovery and the
    # audit trails the executor and the API resume from. Wiping those while Kafka keeps its
    # records would make the flows read every topic again and publish their output twice.
    # Everything else here is generated afresh.
    mkdir -p "$state"
    chmod 700 "$state"
    find "$state" -mindepth 1 -maxdepth 1 ! -name recovery ! -name '*-audit.jsonl' \
        -exec rm -rf {} +
    scripts/services/kafka.sh start "$kafka_dir" 9092 9093
    dsn=$(scripts/services/postgres.sh start "$postgres_dir" 5432 | tail -n 1)
    scripts/services/keycloak.sh start "$keycloak_dir" 8080
    # The API introspects tokens (revocation) as its confidential client: its secret, read
    # with the instance's generated admin password, reaches the API through its environment.
    (umask 077 && KC_ADMIN_PASSWORD_FILE="$keycloak_dir/admin.password" .venv/bin/python -c \
        'import os; from pathlib import Path; from connectors.keycloak.admin import RealmAdmin
password = Path(os.environ["KC_ADMIN_PASSWORD_FILE"]).read_text().strip()
print(RealmAdmin("http://127.0.0.1:8080", "admin", password).client_secret("quoteflow-api"))' \
        >"$state/api-client.secret")
    vault_addr=$(scripts/services/openbao.sh start "$openbao_dir" 8200 --owner "$owner" | tail -n 1)
    executor_role=$(.venv/bin/python -c \
        'import sys; from connectors.secrets.vault_setup import executor_role; print(executor_role(sys.argv[1]))' \
        "$owner")
    local public_key
    public_key=$(.venv/bin/quoteflow bus signing-key --out "$state/command-signing.pem")
    cat >"$config" <<TOML
# Who each process is on Kafka (username, password_file) comes from its environment.
[kafka]
bootstrap = "127.0.0.1:9092"
security_protocol = "SASL_SSL"
ca_file = "$kafka_dir/tls/ca.pem"

# The control API's public key: the executor and the quote flow act only on commands it signed.
[commands]
public_keys = ["$public_key"]

[postgres]
dsn = "$dsn"

[keycloak]
issuer = "http://127.0.0.1:8080/realms/quoteflow"

[api]
audit_path = "$state/api-audit.jsonl"

[secrets]
backend = "vault"
vault_addr = "$vault_addr"
vault_transit_key = "quoteflow-exchange-keys"

# The replayed recordings are from 2024: intents are as old, so the age guard is opened up.
[execute]
venue = "paper"
exchange = "binanceusdm"
symbols = ["BTC/USDT:USDT"]
intent_max_age_s = 1e12
audit_path = "$state/executor-audit.jsonl"
TOML
    # The broker's admin creates the topics, each process's principal and their ACLs.
    QUOTEFLOW_KAFKA__USERNAME=admin QUOTEFLOW_KAFKA__PASSWORD_FILE="$kafka_dir/secrets/admin.password" \
        .venv/bin/quoteflow topics --config "$config"
    QUOTEFLOW_KAFKA__USERNAME=admin QUOTEFLOW_KAFKA__PASSWORD_FILE="$kafka_dir/secrets/admin.password" \
        .venv/bin/quoteflow bus principals --config "$config" --out "$state/bus" >/dev/null
    start_process persist persist persist --config "$config"
    # Each flow keeps its own snapshots: recovery directories are never shared.
    for flow in quote arbitrage predict surveillance; do
        start_process "$flow" "$flow" flow "$flow" --config "$config" \
            --recovery-dir "$state/recovery/$flow"
    done
    # Each process logs in to OpenBao with its own AppRole (VAULT_ROLE_ID, VAULT_SECRET_ID).
    (set -a && . "$openbao_dir/approle/$executor_role.env" && set +a \
        && start_process execute executor execute --config "$config")
    (set -a && . "$openbao_dir/approle/quoteflow-api.env" && set +a \
        && QUOTEFLOW_COMMANDS__SIGNING_KEY_FILE="$PWD/$state/command-signing.pem" \
        && QUOTEFLOW_API_CLIENT_SECRET="$(cat "$state/api-client.secret")" \
        && export QUOTEFLOW_COMMANDS__SIGNING_KEY_FILE QUOTEFLOW_API_CLIENT_SECRET \
        && start_process api api api --config "$config")
    local recordings=("$@")
    [ ${#recordings[@]} -gt 0 ] || recordings=("${default_recordings[@]}")
    QUOTEFLOW_KAFKA__USERNAME=ingest QUOTEFLOW_KAFKA__PASSWORD_FILE="$PWD/$state/bus/ingest.password" \
        .venv/bin/quoteflow ingest replay "${recordings[@]}" --config "$config" >"$state/ingest.json"
    cat <<TEXT
stack: up. Replayed ${recordings[*]} (counts in $state/ingest.json).
  Kafka       127.0.0.1:9092        SASL_SSL; as admin: set -a; . $kafka_dir/client.env; set +a
              each process's password in $state/bus/ (0600); ACLs: connectors/kafka/acls.py
  PostgreSQL  $dsn
  Keycloak    http://127.0.0.1:8080/admin  (admin / $keycloak_dir/admin.password; realm quoteflow)
  OpenBao     $vault_addr  (root token in $openbao_dir/root-token; in memory)
  API         http://127.0.0.1:8000/api/v1/health, OpenAPI at /api/v1/openapi.json
  Grafana     point it at PostgreSQL with grafana/provisioning (docs/grafana.md)
Stop with: ./dev stack down
TEXT
}

down() {
    local wipe=${1:-}
    if [ -n "$wipe" ] && [ "$wipe" != --wipe ]; then
        echo "stack: down takes only --wipe, not $wipe" >&2
        exit 2
    fi
    for pid_file in "$state"/*.pid; do
        [ -e "$pid_file" ] || continue
        kill "$(cat "$pid_file")" 2>/dev/null || true
        rm -f "$pid_file"
    done
    scripts/services/keycloak.sh stop "$keycloak_dir" || true
    scripts/services/openbao.sh stop "$openbao_dir" || true
    scripts/services/postgres.sh stop "$postgres_dir" || true
    scripts/services/kafka.sh stop "$kafka_dir" || true
    if [ -n "$wipe" ]; then
        rm -rf "$state" "$kafka_dir" "$postgres_dir" "$keycloak_dir" "$openbao_dir"
        echo "stack: down, data wiped"
    else
        echo "stack: down (data kept for the next up; --wipe deletes it)"
    fi
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) shift; down "$@" ;;
    *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
