# Sourced by the service scripts that start a server in the background (kafka.sh,
# keycloak.sh); the sourcing script defines `die MESSAGE` and `stop DIR`.

# await_start NAME DIR PID LOG TIMEOUT_S POLL_S PROBE [ARG]...
# Runs PROBE every POLL_S seconds until it succeeds. When PID has exited meanwhile, fails at
# once with the log's tail on stderr (a crash is not worth waiting out); after TIMEOUT_S,
# stops the half-started instance in DIR and fails. Both messages name the log.
await_start() {
    local name="$1" dir="$2" pid="$3" log="$4" timeout="$5" poll="$6"
    shift 6
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$log" >&2
            die "$name exited during start-up; log: $log"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            stop "$dir"
            die "$name did not start within $timeout s; log: $log"
        fi
        sleep "$poll"
    done
}
