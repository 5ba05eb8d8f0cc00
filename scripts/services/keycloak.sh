#!/usr/bin/env bash
# Keycloak 26 for tests and local development, from Maven Central's keycloak-quarkus-dist zip,
# serving the project's realm (connectors/keycloak/realm-quoteflow.json) on 127.0.0.1.
#   keycloak.sh fetch              download, unzip and build once into the cache; prints its home
#   keycloak.sh start DIR PORT     start an instance whose state lives in DIR; returns when the
#                                  realm answers and prints its base URL
#   keycloak.sh stop DIR           stop the instance started in DIR
#   keycloak.sh run DIR PORT       the same in the foreground (./dev keycloak fg)
# Admin: KC_BOOTSTRAP_ADMIN_USERNAME (admin when unset) / KC_BOOTSTRAP_ADMIN_PASSWORD; when
# unset, a password generated for the instance on its first start and kept in
# DIR/admin.password (0600): no two dev instances share an admin password, and none is a
# default an attacker could guess. Needs a JDK 21 or newer (Kafka keeps Java 17): the
# newest one in /usr/lib/jvm is used for Keycloak alone, or KEYCLOAK_JAVA_HOME.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${KEYCLOAK_VERSION:-26.7.3}"
cache="${QUOTEFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quoteflow}"
home="$cache/keycloak-$version"
realm_file="$root/connectors/keycloak/realm-quoteflow.json"
# Options fixed at build time: `start --optimized` then skips Quarkus' augmentation, which is
# most of a cold start on 2 cores.
build_options=(--db=dev-file --health-enabled=false --metrics-enabled=false)

die() { echo "keycloak: $*" >&2; exit 1; }
# shellcheck source=scripts/services/await_start.sh
. "$root/scripts/services/await_start.sh"

java_major() { "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }

find_java_home() {
    if [ -n "${KEYCLOAK_JAVA_HOME:-}" ]; then
        echo "$KEYCLOAK_JAVA_HOME"
        return
    fi
    local best="" best_major=0 dir major
    for dir in /usr/lib/jvm/*/; do
        dir="${dir%/}"
        [ -x "$dir/bin/java" ] || continue
        major="$(java_major "$dir")"
        if [ -n "$major" ] && [ "$major" -gt "$best_major" ]; then
            best="$dir"
            best_major="$major"
        fi
    done
    [ "$best_major" -ge 21 ] || die "Keycloak $version needs Java 21 or newer; none in /usr/lib/jvm \
(Debian 12 ships only OpenJDK 17). Install a JDK 21+ (e.g. Temurin) there or set KEYCLOAK_JAVA_HOME."
    echo "$best"
}

unpack() {
    if command -v unzip >/dev/null; then
        unzip -q "$1" -d "$2"
    else
        python3 -m zipfile -e "$1" "$2"
        chmod +x "$2"/keycloak-"$version"/bin/*.sh
    fi
}

fetch() {
    local java_home
    java_home="$(find_java_home)"
    if [ ! -d "$home" ]; then
        command -v mvn >/dev/null || {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
        }
        local work="$cache/keycloak-$version.partial"
        rm -rf "$work"
        mkdir -p "$work"
        echo "keycloak: fetching org.keycloak:keycloak-quarkus-dist:$version from Maven Central" >&2
        mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
            -Dartifact="org.keycloak:keycloak-quarkus-dist:$version:zip" \
            -DoutputDirectory="$work" >&2
        unpack "$work/keycloak-quarkus-dist-$version.zip" "$work"
        mv "$work/keycloak-$version" "$home"
        rm -rf "$work"
    fi
    if [ "$(cat "$home/.built" 2>/dev/null)" != "${build_options[*]}" ]; then
        echo "keycloak: building the optimized server (once)" >&2
        JAVA_HOME="$java_home" "$home/bin/kc.sh" build "${build_options[@]}" >"$home/build.log" 2>&1 \
            || die "kc.sh build failed; see $home/build.log"
        echo "${build_options[*]}" >"$home/.built"
    fi
    echo "$home"
}

# Each instance gets its own home: symlinks to the cached, built distribution plus a private
# data/ (dev-file database, realm import, temp files), so instances never share state.
# kc.sh is copied, not linked: it derives kc.home.dir from its own resolved path.
make_instance() {
    local dir="$1"
    mkdir -p "$dir/bin" "$dir/data/import"
    cp "$home/bin/kc.sh" "$dir/bin/kc.sh"
    local part
    for part in lib conf providers themes; do
        ln -sfn "$home/$part" "$dir/$part"
    done
    cp "$realm_file" "$dir/data/import/realm-quoteflow.json"
}

# The instance's admin password: the caller's, else the one generated on its first start.
admin_password() {
    local file="$1/admin.password"
    if [ ! -s "$file" ]; then
        (umask 077 && head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
    fi
    cat "$file"
}

launch_env() {
    export JAVA_HOME="$1"
    export KC_BOOTSTRAP_ADMIN_USERNAME="${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}"
    if [ -z "${KC_BOOTSTRAP_ADMIN_PASSWORD:-}" ]; then
        KC_BOOTSTRAP_ADMIN_PASSWORD="$(admin_password "$2")"
    fi
    export KC_BOOTSTRAP_ADMIN_PASSWORD
    export JAVA_OPTS_KC_HEAP="${JAVA_OPTS_KC_HEAP:--Xms64m -Xmx512m}"
}

# --cache=local: a single node, so no JGroups cluster discovery on the network interfaces.
server_args() {
    echo start --optimized --http-enabled=true --http-host=127.0.0.1 --http-port="$1" \
        --hostname-strict=false --import-realm --cache=local
}

# A plain HTTP GET through bash's /dev/tcp: a bare machine may have no curl.
realm_answers() {
    local port="$1" status
    { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'GET /realms/quoteflow/.well-known/openid-configuration HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    status="$(head -c 12 <&3 || true)"
    exec 3<&-
    [ "${status#HTTP/1.? }" = "200" ]
}

start() {
    local dir="$1" port="$2" java_home pid
    if [ -f "$dir/keycloak.pid" ] && kill -0 -- "-$(cat "$dir/keycloak.pid")" 2>/dev/null; then
        die "already running from $dir; stop it first"
    fi
    fetch >/dev/null
    java_home="$(find_java_home)"
    make_instance "$dir"
    launch_env "$java_home" "$dir"
    # shellcheck disable=SC2046
    # Its own process group: kc.sh waits on java rather than exec'ing it, and stop signals both.
    setsid "$dir/bin/kc.sh" $(server_args "$port") >"$dir/keycloak.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/keycloak.pid"
    await_start Keycloak "$dir" "$pid" "$dir/keycloak.log" "${KEYCLOAK_START_TIMEOUT:-240}" 0.5 \
        realm_answers "$port"
    echo "http://127.0.0.1:$port"
}

stop() {
    local dir="$1" pid
    [ -f "$dir/keycloak.pid" ] || return 0
    pid="$(cat "$dir/keycloak.pid")"
    if kill -0 -- "-$pid" 2>/dev/null; then
        kill -TERM -- "-$pid"
        local waited=0
        while kill -0 -- "-$pid" 2>/dev/null && [ "$waited" -lt 60 ]; do
            sleep 0.5
            waited=$((waited + 1))
        done
        if kill -0 -- "-$pid" 2>/dev/null; then kill -KILL -- "-$pid"; fi
    elif kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"  # stopped before setsid made it a group leader: java not started yet
    fi
    rm -f "$dir/keycloak.pid"
}

run() {
    local dir="$1" port="$2" java_home
    fetch >/dev/null
    java_home="$(find_java_home)"
    make_instance "$dir"
    launch_env "$java_home" "$dir"
    echo "keycloak: http://127.0.0.1:$port (admin console /admin, realm quoteflow); Ctrl-C stops it" >&2
    # shellcheck disable=SC2046
    exec "$dir/bin/kc.sh" $(server_args "$port")
}

command="${1:-}"
shift || true
case "$command" in
    fetch) fetch ;;
    start) [ $# -eq 2 ] || die "usage: keycloak.sh start DIR PORT"; start "$@" ;;
    stop) [ $# -eq 1 ] || die "usage: keycloak.sh stop DIR"; stop "$1" ;;
    run) [ $# -eq 2 ] || die "usage: keycloak.sh run DIR PORT"; run "$@" ;;
    *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
