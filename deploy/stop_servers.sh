#!/usr/bin/env bash
# Stop the local Prefect and MLflow servers started by deploy/start_*.sh.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${MMUPT_SERVER_DIR:-$here/.mmupt-cache/servers}"
for name in prefect mlflow; do
  pidfile="$state/$name.pid"
  [[ -f $pidfile ]] || continue
  pid="$(cat "$pidfile")"
  # the servers start worker children (uvicorn, gunicorn): stop the whole process group
  pkill -TERM -P "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null
  rm -f "$pidfile"
  echo "stopped $name ($pid)"
done
