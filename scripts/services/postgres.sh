#!/usr/bin/env bash
# A throwaway or development PostgreSQL from Debian's packages, without systemd.
#   postgres.sh install                      install the server package when initdb is missing
#   postgres.sh start DIR [PORT] [--ephemeral]
#       initdb DIR when it holds no cluster, start on 127.0.0.1:PORT (default 5432), wait
#       until it accepts connections, create role and database `quoteflow`, print the DSN.
#       --ephemeral: a cluster deleted after use, so durability is traded for speed.
#       The application role `quoteflow` is not a superuser: it owns its database (and so the
#       schema the migrations create), may create databases (the tests' fresh ones), and logs
#       in over TCP with a password generated once per cluster (DIR/quoteflow.password, 0600,
#       and in the printed DSN). The superuser `postgres` is reachable only through the Unix
#       socket in DIR, which only the cluster's owner can open.
#   postgres.sh stop DIR [--remove]          fast shutdown; --remove deletes DIR afterwards
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
    local initdb
    initdb=$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$initdb" ] && dirname "$initdb"
}

install_server() {
    [ -n "$(bindir)" ] && return 0
    echo "postgres.sh: installing PostgreSQL from Debian's packages" >&2
    if [ -z "$(apt-cache policy postgresql 2>/dev/null | grep Candidate | grep -v none)" ]; then
        apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    [ -n "$(bindir)" ] || die "postgresql installed but no initdb under /usr/lib/postgresql"
}

# Runs a server binary as the cluster's owner.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local dir=${1:?usage: postgres.sh start DIR [PORT] [--ephemeral]}
    local port=5432 ephemeral=
    shift
    for arg in "$@"; do
        case "$arg" in
            --ephemeral) ephemeral=1 ;;
            *[!0-9]*) die "bad argument: $arg" ;;
            *) port=$arg ;;
        esac
    done
    install_server
    local bin
    bin=$(bindir)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir" && chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$dir" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 --encoding=UTF8 \
            --locale=C.UTF-8 --no-sync >"$dir.initdb.log" 2>&1 \
            || die "initdb failed: $(cat "$dir.initdb.log")"
        rm -f "$dir.initdb.log"
    fi
    local options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir"
    if [ -n "$ephemeral" ]; then
        options="$options -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    if as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        echo "postgres.sh: already running in $dir" >&2
    else
        as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -o "$options" -w -t 30 start \
            >/dev/null || die "server did not start: $(tail -n 20 "$dir/server.log")"
    fi
    local psql=(as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -v ON_ERROR_STOP=1 -qtA)
    local password_file="$dir/quoteflow.password" password
    if [ ! -s "$password_file" ]; then
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$password_file")
        [ "$(id -u)" = 0 ] && chown postgres: "$password_file"
    fi
    password=$(cat "$password_file")
    # Created, or brought to least privilege if an older script made it a superuser.
    if [ -z "$("${psql[@]}" -d postgres -c "select 1 from pg_roles where rolname='quoteflow'")" ]
    then
        "${psql[@]}" -d postgres -c "create role quoteflow login" >/dev/null
    fi
    "${psql[@]}" -d postgres -c "alter role quoteflow nosuperuser nocreaterole createdb \
        password '$password'" >/dev/null
    if [ -z "$("${psql[@]}" -d postgres -c "select 1 from pg_database where datname='quoteflow'")" ]
    then
        "${psql[@]}" -d postgres -c "create database quoteflow owner quoteflow" >/dev/null
    fi
    echo "postgresql://quoteflow:$password@127.0.0.1:$port/quoteflow"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR [--remove]}
    local bin
    bin=$(bindir) || die "PostgreSQL is not installed"
    if [ -f "$dir/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    fi
    if [ "${2:-}" = --remove ]; then
        rm -rf "$dir"
    fi
}

command=${1:-}
shift || true
case "$command" in
    install) install_server ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
