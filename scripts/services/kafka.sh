#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, one combined broker+controller on 127.0.0.1) built from
# Maven Central jars, for tests and local development. It is never open: clients speak
# SASL SCRAM-SHA-512 over TLS, the KRaft StandardAuthorizer denies what no ACL allows, and
# the controller listener takes only the broker's own certificate (mTLS).
#
#   kafka.sh fetch                          jars into the cache; prints the libs folder
#   kafka.sh start DIR PORT CTRL_PORT [--foreground]
#                                           format DIR (once) and run the broker; prints the
#                                           bootstrap address when it answers
#   kafka.sh stop DIR                       SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT s
#
# At format time DIR gets a throwaway CA and broker certificate (DIR/tls, made here, never
# shared between instances) and two SCRAM users: `broker` (inter-broker) and `admin` (a
# super user that creates topics, the per-process principals and their ACLs; see
# connectors/kafka/acls.py). DIR/client.env (mode 0600) holds the admin's client settings as
# QUOTEFLOW_KAFKA__* variables: `set -a; . DIR/client.env; set +a`.
#
# Environment: KAFKA_VERSION (4.1.1), QUOTEFLOW_CACHE (~/.cache/quoteflow),
# KAFKA_START_TIMEOUT (60 s), KAFKA_STOP_TIMEOUT (15 s), KAFKA_HEAP_OPTS (-Xms128m -Xmx512m).
# The jars are fetched once per version and pom into $QUOTEFLOW_CACHE/kafka-$KAFKA_VERSION/libs,
# so every clone on the machine shares them. java (17+) and mvn are installed from Debian when
# missing.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
version="${KAFKA_VERSION:-4.1.1}"
cache="${QUOTEFLOW_CACHE:-$HOME/.cache/quoteflow}/kafka-$version"
libs="$cache/libs"
pom="$here/kafka-pom.xml"

die() { echo "kafka.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/services/await_start.sh
. "$here/await_start.sh"

apt_install() {
    echo "kafka.sh: installing system packages: $*" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_tools() {
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    command -v mvn >/dev/null || apt_install maven
}

fetch() {
    # The pom's hash is stored beside the jars: editing the pom refetches, nothing else does.
    local pom_sha
    pom_sha="$(sha256sum "$pom" | cut -d' ' -f1)"
    if [ -f "$libs/.pom.sha256" ] && [ "$(cat "$libs/.pom.sha256")" = "$pom_sha" ]; then
        echo "$libs"
        return
    fi
    ensure_tools
    echo "kafka.sh: fetching Kafka $version jars from Maven Central into $libs" >&2
    mkdir -p "$cache"
    local staging
    staging="$(mktemp -d "$cache/libs.XXXXXX")"
    mvn -q -B -Dstyle.color=never -f "$pom" -Dkafka.version="$version" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$staging" >&2 \
        || { rm -rf "$staging"; die "maven could not fetch org.apache.kafka:kafka_2.13:$version"; }
    echo "$pom_sha" >"$staging/.pom.sha256"
    # A whole folder swapped in at once: a concurrent reader sees the old jars or the new ones.
    rm -rf "$libs"
    mv "$staging" "$libs"
    echo "$libs"
}

write_properties() {
    local dir="$1" port="$2" ctrl_port="$3" broker_password
    broker_password="$(cat "$dir/secrets/broker.password")"
    # Holds the broker's own SCRAM password: readable by its owner only.
    (umask 077 && cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl_port
listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl_port
advertised.listeners=SASL_SSL://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
# Clients: SCRAM-SHA-512 over TLS. KRaft cannot check SCRAM on the controller listener (the
# credentials live in the metadata it serves), so that one wants the broker's certificate.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="$broker_password";
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.pem
ssl.enabled.protocols=TLSv1.3,TLSv1.2
# Nothing is allowed that no ACL allows; the ACLs come from connectors/kafka/acls.py.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:broker;User:CN=quoteflow-broker
log.dirs=$dir/data
# Topics come from connectors.kafka.ensure_topics only, so a misspelt name fails loudly.
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# One broker on a 2-core machine: one partition per internal topic (the first consumer group
# starts in milliseconds, not seconds), no rebalance grace period, few threads.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
EOF
    )
}

make_tls() {
    # A CA of this instance only: it signs the broker's certificate and is then thrown away,
    # so nothing else can ever be signed by it.
    local tls="$1/tls"
    [ -f "$tls/broker.pem" ] && return
    mkdir -p "$tls"
    chmod 700 "$tls"
    (
        umask 077
        cd "$tls"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
            -keyout ca.key -out ca.pem -subj "/CN=quoteflow dev CA $(openssl rand -hex 4)" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout broker.key -out broker.csr -subj "/CN=quoteflow-broker" 2>/dev/null
        printf '%s\n' "basicConstraints=CA:FALSE" "subjectAltName=IP:127.0.0.1,DNS:localhost" \
            "extendedKeyUsage=serverAuth,clientAuth" >broker.ext
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
            -extfile broker.ext -out broker.crt 2>/dev/null
        # Kafka's PEM keystore: the PKCS#8 key, then the certificate.
        cat broker.key broker.crt >broker.pem
        rm -f ca.key ca.srl broker.key broker.csr broker.ext broker.crt
        chmod 644 ca.pem
    ) || die "could not make the TLS certificates in $tls (openssl)"
    chmod 755 "$tls"
}

make_passwords() {
    local secrets="$1/secrets" name
    mkdir -p "$secrets"
    chmod 700 "$secrets"
    for name in admin broker; do
        [ -f "$secrets/$name.password" ] && continue
        (umask 077 && openssl rand -hex 24 >"$secrets/$name.password")
    done
}

write_client_env() {
    # The admin's client settings, as quoteflow's configuration loader reads them.
    local dir="$1" port="$2"
    (umask 077 && cat >"$dir/client.env" <<EOF
QUOTEFLOW_KAFKA__BOOTSTRAP=127.0.0.1:$port
QUOTEFLOW_KAFKA__SECURITY_PROTOCOL=SASL_SSL
QUOTEFLOW_KAFKA__SASL_MECHANISM=SCRAM-SHA-512
QUOTEFLOW_KAFKA__USERNAME=admin
QUOTEFLOW_KAFKA__PASSWORD_FILE=$dir/secrets/admin.password
QUOTEFLOW_KAFKA__CA_FILE=$dir/tls/ca.pem
EOF
    )
}

java_opts() {
    # shellcheck disable=SC2086
    echo ${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$here/kafka-log4j2.properties"
}

format_storage() {
    local dir="$1" cluster_id
    [ -f "$dir/data/meta.properties" ] && return
    # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding; like Kafka's
    # own Uuid.randomUuid, never one that starts with '-', which the storage tool's argument
    # parser takes for an option (1 start in 64 failed with "expected one argument").
    cluster_id="-"
    while [[ "$cluster_id" == -* ]]; do
        cluster_id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    # shellcheck disable=SC2046
    # The SCRAM users go into the bootstrap metadata (KIP-900): the broker needs its own at
    # once, and the admin creates everyone else through the admin API.
    java $(java_opts) -XX:TieredStopAtLevel=1 -cp "$libs/*" kafka.tools.StorageTool \
        format -t "$cluster_id" -c "$dir/server.properties" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=$(cat "$dir/secrets/admin.password")]" \
        --add-scram "SCRAM-SHA-512=[name=broker,password=$(cat "$dir/secrets/broker.password")]" \
        >"$dir/format.log" 2>&1 \
        || die "formatting KRaft storage failed; see $dir/format.log"
}

running_pid() {
    local pid_file="$1/kafka.pid"
    [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null && cat "$pid_file"
}

start() {
    [ $# -ge 3 ] || die "usage: kafka.sh start DIR PORT CTRL_PORT [--foreground]"
    local dir="$1" port="$2" ctrl_port="$3" mode="${4:-}"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if running_pid "$dir" >/dev/null; then
        die "a broker from $dir is already running (pid $(cat "$dir/kafka.pid")); stop it first"
    fi
    fetch >/dev/null
    if [ -f "$dir/data/meta.properties" ] && [ ! -f "$dir/secrets/admin.password" ]; then
        die "$dir holds a broker formatted without authentication; remove it (or use another DIR)"
    fi
    make_tls "$dir"
    make_passwords "$dir"
    write_properties "$dir" "$port" "$ctrl_port"
    format_storage "$dir"
    write_client_env "$dir" "$port"
    # shellcheck disable=SC2046
    set -- java $(java_opts) -cp "$libs/*" kafka.Kafka "$dir/server.properties"
    if [ "$mode" = "--foreground" ]; then
        echo "kafka.sh: broker on 127.0.0.1:$port (Ctrl-C stops it)" >&2
        client_help "$dir" >&2
        exec "$@"
    fi
    nohup "$@" >"$dir/kafka.log" 2>&1 &
    echo $! >"$dir/kafka.pid"
    await_start "the broker" "$dir" "$!" "$dir/kafka.log" "${KAFKA_START_TIMEOUT:-60}" 0.2 \
        started "$dir"
    client_help "$dir" >&2
    echo "127.0.0.1:$port"
}

client_help() {
    echo "kafka.sh: SASL_SSL only; admin credentials in $1/client.env (mode 0600). Use them with:"
    echo "    set -a; . $1/client.env; set +a"
}

started() { grep -q "Kafka Server started" "$1/kafka.log" 2>/dev/null; }

stop() {
    [ $# -ge 1 ] || die "usage: kafka.sh stop DIR"
    local dir="$1" pid deadline
    pid="$(running_pid "$dir")" || { rm -f "$dir/kafka.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + ${KAFKA_STOP_TIMEOUT:-15}))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "kafka.sh: broker $pid ignored SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$dir/kafka.pid"
}

command="${1:-}"
shift || true
case "$command" in
    fetch) fetch ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    *) sed -n '7,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
