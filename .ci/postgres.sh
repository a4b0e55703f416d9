#!/usr/bin/env bash
# Start (or stop) a throw-away PostgreSQL server for the tests of the shared ledger.
#
#   source .ci/postgres.sh start   # exports RECON_TEST_PG, an admin URI on a Unix socket
#   source .ci/postgres.sh stop
#
# initdb runs in a temporary folder; the server listens on a Unix socket in that
# folder only (no TCP port), with fsync off (the data is thrown away). initdb refuses
# to run as root, so as root the server runs as the postgres account of Debian's
# package. The tests start a server of their own when RECON_TEST_PG is not set.
set -euo pipefail

_recon_pg_bin() {
    local found
    found=$(command -v initdb 2>/dev/null || true)
    if [[ -n "$found" ]]; then dirname "$(readlink -f "$found")"; return; fi
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

case "${1:-}" in
start)
    bin=$(_recon_pg_bin)
    if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
        echo "postgres: no initdb found (install Debian's postgresql package)" >&2
        return 1 2>/dev/null || exit 1
    fi
    RECON_CI_PG_DIR=$(mktemp -d /tmp/recon-ci-pg.XXXXXX)
    as=()
    user=$(id -un)
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres "$RECON_CI_PG_DIR"
        as=(runuser -u postgres --)
        user=postgres
    fi
    # from / : the postgres account may not be allowed into the checkout's folder
    (cd / && "${as[@]}" "$bin/initdb" -D "$RECON_CI_PG_DIR/data" -A trust -U "$user" -E UTF8 \
        >"$RECON_CI_PG_DIR/initdb.log")
    (cd / && "${as[@]}" "$bin/pg_ctl" -D "$RECON_CI_PG_DIR/data" -l "$RECON_CI_PG_DIR/server.log" -w \
        -o "-k $RECON_CI_PG_DIR -c listen_addresses='' -c fsync=off -c max_connections=200" start >/dev/null)
    export RECON_CI_PG_DIR RECON_CI_PG_BIN="$bin" RECON_CI_PG_AS="${as[*]}"
    export RECON_TEST_PG="postgresql://$user@/postgres?host=$RECON_CI_PG_DIR"
    echo "postgres: $("$bin/postgres" --version) on $RECON_CI_PG_DIR"
    ;;
stop)
    if [[ -n "${RECON_CI_PG_DIR:-}" && -d "$RECON_CI_PG_DIR" ]]; then
        # shellcheck disable=SC2086
        (cd / && $RECON_CI_PG_AS "$RECON_CI_PG_BIN/pg_ctl" -D "$RECON_CI_PG_DIR/data" -m fast -w stop >/dev/null 2>&1) || true
        rm -rf "$RECON_CI_PG_DIR"
        echo "postgres: stopped"
    fi
    ;;
*)
    echo "usage: source .ci/postgres.sh start|stop" >&2
    ;;
esac
