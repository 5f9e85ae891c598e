#!/usr/bin/env bash
# Start a local Prefect server on 127.0.0.1 and point this shell's project at it.
#   source deploy/start_prefect.sh            # or: bash deploy/start_prefect.sh (prints the export line)
# Stop: bash deploy/stop_servers.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MMUPT_VENV:-$here/.venv}"
host="${PREFECT_HOST:-127.0.0.1}"
port="${PREFECT_PORT:-4200}"
state="${MMUPT_SERVER_DIR:-$here/.mmupt-cache/servers}"
mkdir -p "$state"
export PREFECT_HOME="${PREFECT_HOME:-$here/.mmupt-cache/prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_API_URL="http://$host:$port/api"
if curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1; then
  echo "Prefect server already up at $PREFECT_API_URL"
else
  nohup "$venv/bin/prefect" server start --host "$host" --port "$port" >"$state/prefect.log" 2>&1 &
  echo $! >"$state/prefect.pid"
  for _ in $(seq 1 180); do
    curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1 && break
    sleep 1
  done
  curl -fsS "$PREFECT_API_URL/health" >/dev/null || { echo "Prefect did not start; see $state/prefect.log" >&2; exit 1; }
  echo "Prefect server up at $PREFECT_API_URL (UI: http://$host:$port)"
fi
echo "export PREFECT_API_URL=$PREFECT_API_URL"
