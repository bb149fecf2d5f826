#!/usr/bin/env bash
# Install Debian's PostgreSQL server binaries when they are missing; do nothing otherwise.
#
# tests/postgres_server.py starts a throwaway server from /usr/lib/postgresql/<version>/bin
# (initdb, pg_ctl) for the shared rate limit and the dagster-postgres instance tests; under
# CI=true those tests fail, rather than skip, when the binaries are missing. The package's own
# cluster is not used (the tests make their own, in a temporary folder, on a loopback port).
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-postgres.sh: PostgreSQL is missing; run this script as root" \
        "(it runs: apt-get install --no-install-recommends postgresql)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends postgresql </dev/null
