#!/usr/bin/env bash
# Start a local MLflow tracking server on 127.0.0.1 (sqlite backend, local artifact root).
#   bash deploy/start_mlflow.sh [STORE_DIR]      # default STORE_DIR: .mmupt-cache/mlflow
# Then: export MLFLOW_TRACKING_URI=http://127.0.0.1:5000   (the script prints it)
# To browse a campaign's own store instead: mlflow ui --backend-store-uri sqlite:///runs/demo/mlflow.db
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MMUPT_VENV:-$here/.venv}"
host="${MLFLOW_HOST:-127.0.0.1}"
port="${MLFLOW_PORT:-5000}"
store="$(mkdir -p "${1:-$here/.mmupt-cache/mlflow}" && cd "${1:-$here/.mmupt-cache/mlflow}" && pwd)"
state="${MMUPT_SERVER_DIR:-$here/.mmupt-cache/servers}"
mkdir -p "$state" "$store/artifacts"
export MLFLOW_DISABLE_TELEMETRY=true
url="http://$host:$port"
if curl -fsS "$url/health" >/dev/null 2>&1; then
  echo "MLflow server already up at $url"
else
  nohup "$venv/bin/mlflow" server --host "$host" --port "$port" \
    --backend-store-uri "sqlite:///$store/mlflow.db" --artifacts-destination "$store/artifacts" \
    >"$state/mlflow.log" 2>&1 &
  echo $! >"$state/mlflow.pid"
  for _ in $(seq 1 180); do
    curl -fsS "$url/health" >/dev/null 2>&1 && break
    sleep 1
  done
  curl -fsS "$url/health" >/dev/null || { echo "MLflow did not start; see $state/mlflow.log" >&2; exit 1; }
  echo "MLflow server up at $url"
fi
echo "export MLFLOW_TRACKING_URI=$url"
