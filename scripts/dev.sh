#!/usr/bin/env bash
# `make dev`: the SMS Partner emulator in the background and `dg dev` on loopback, with the
# instance settings shipped in dagster_home/. Ctrl-C stops dg dev, then the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
EMULATOR_PORT="${EMULATOR_PORT:-8787}"
DAGSTER_PORT="${DAGSTER_PORT:-3000}"

export DAGSTER_HOME="$PWD/dagster_home"
export SMSP_API_KEY=dev
export SMSP_BASE_URL="http://127.0.0.1:$EMULATOR_PORT/v1"

"$BIN/smsp" emulator --port "$EMULATOR_PORT" --api-key dev --demo-size 1000 &
emulator_pid=$!
stop_emulator() {
    if kill -0 "$emulator_pid" 2>/dev/null; then
        kill -TERM "$emulator_pid" 2>/dev/null || true
        wait "$emulator_pid" 2>/dev/null || true
    fi
}
trap stop_emulator EXIT

# Start dagster only once the emulator answers: a port already taken must not go unnoticed.
"$BIN/python" - "$EMULATOR_PORT" "$emulator_pid" <<'PY'
import os, sys, time, urllib.request

port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"the emulator did not start (port {port} already in use?)")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/stats", timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"the emulator does not answer on 127.0.0.1:{port}")
        time.sleep(0.2)
PY

echo "Dagster UI: http://127.0.0.1:$DAGSTER_PORT   (emulator: $SMSP_BASE_URL, api key: dev)"
# dg dev loads the dg project (pyproject.toml's [tool.dg]: assets/ and its defs/ folder).
export VIRTUAL_ENV="$PWD/.venv"
"$BIN/dg" dev -h 127.0.0.1 -p "$DAGSTER_PORT"
