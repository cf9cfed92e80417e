#!/usr/bin/env bash
# Installs (when missing) and starts the real servers the test suite needs:
#   Redis       127.0.0.1:6379
#   PostgreSQL  127.0.0.1:5432  (user postgres, trust auth, database `test`)
#   ClickHouse  HTTP 127.0.0.1:8123
# Idempotent: a server whose port already answers is left alone. Runs as root on
# Debian 12 without systemd. Prints one line per service; exits non-zero naming the
# service that could not be started.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
WAIT_SECONDS="${SWITCHYARD_SERVICES_WAIT_SECONDS:-60}"

fail() {
    echo "services: $1 failed: $2" >&2
    exit 1
}

# --- installation ------------------------------------------------------------

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v pg_ctlcluster >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
    || missing+=(postgresql)
command -v clickhouse-server >/dev/null 2>&1 || missing+=(clickhouse-server)
command -v clickhouse-client >/dev/null 2>&1 || missing+=(clickhouse-client)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# promtool checks and unit-tests the alert rules in deploy/prometheus.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

if ((${#missing[@]} > 0)); then
    echo "services: installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- helpers -----------------------------------------------------------------

# wait_until CHECK...: polls CHECK once a second for up to WAIT_SECONDS.
wait_until() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 1
    done
}

redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
clickhouse_up() { [ "$(curl -sf --max-time 2 http://127.0.0.1:8123/ping 2>/dev/null)" = "Ok." ]; }

# --- Redis -------------------------------------------------------------------

if redis_up; then
    echo "redis: already running at 127.0.0.1:6379"
else
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null \
        || fail redis "redis-server did not start"
    wait_until redis_up || fail redis "no PONG on 127.0.0.1:6379 after ${WAIT_SECONDS}s"
    echo "redis: started at 127.0.0.1:6379"
fi

# --- PostgreSQL --------------------------------------------------------------

if postgres_up; then
    echo "postgresql: already running at 127.0.0.1:5432"
else
    pg_version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$pg_version" ]; then
        pg_version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    fi
    if [ ! -d "/etc/postgresql/$pg_version/main" ]; then
        pg_createcluster "$pg_version" main >/dev/null || fail postgresql "pg_createcluster $pg_version main"
    fi
    # Trust local TCP connections for the postgres user (first matching line wins).
    hba="/etc/postgresql/$pg_version/main/pg_hba.conf"
    if ! grep -q '^# switchyard-ci trust' "$hba"; then
        {
            echo '# switchyard-ci trust: local test connections need no password.'
            echo 'local all postgres trust'
            echo 'host all all 127.0.0.1/32 trust'
            echo 'host all all ::1/128 trust'
            cat "$hba"
        } >"$hba.switchyard" && mv "$hba.switchyard" "$hba"
        chown postgres:postgres "$hba"
    fi
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql
    pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start \
        || fail postgresql "pg_ctlcluster $pg_version main start (see /var/log/postgresql/)"
    wait_until postgres_up || fail postgresql "pg_isready failed on 127.0.0.1:5432 after ${WAIT_SECONDS}s"
    echo "postgresql: started cluster $pg_version/main at 127.0.0.1:5432"
fi
# The tests use database `test`.
has_test_db="$(psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null)" \
    || fail postgresql "cannot connect as postgres without a password on 127.0.0.1:5432"
if [ "$has_test_db" != "1" ]; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test' >/dev/null \
        || fail postgresql "CREATE DATABASE test"
fi

# --- ClickHouse --------------------------------------------------------------

if clickhouse_up; then
    echo "clickhouse: already running at http://127.0.0.1:8123"
else
    ch_user=clickhouse
    id -u "$ch_user" >/dev/null 2>&1 || ch_user=root
    install -d -o "$ch_user" -g "$ch_user" /var/lib/clickhouse /var/log/clickhouse-server
    # Runs in the foreground under start-stop-daemon's --background so the pid file
    # is exact; stdout and stderr land beside the server's own logs.
    start-stop-daemon --start --quiet --background \
        --chuid "$ch_user:$ch_user" --chdir /var/lib/clickhouse \
        --make-pidfile --pidfile /var/run/clickhouse-server.pid \
        --output /var/log/clickhouse-server/stdout.log \
        --exec /usr/sbin/clickhouse-server -- --config-file=/etc/clickhouse-server/config.xml \
        || fail clickhouse "start-stop-daemon clickhouse-server (see /var/log/clickhouse-server/)"
    wait_until clickhouse_up \
        || fail clickhouse "no Ok. from http://127.0.0.1:8123/ping after ${WAIT_SECONDS}s (see /var/log/clickhouse-server/)"
    echo "clickhouse: started at http://127.0.0.1:8123"
fi
