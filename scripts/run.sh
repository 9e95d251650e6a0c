#!/usr/bin/env bash
# Runs the whole system in the foreground: API (granian) and arq worker. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8000}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://$HOST:$PORT}"

scripts/bootstrap.sh
uv run --frozen python -m app.cli setup

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM EXIT

# two API workers by default, as in the Dockerfile: one process saturates one core
# (filing: ~570/s on one, ~780/s on two on the 2-core bench machine, docs/benchmarks.md);
# each holds up to 2 x DB_POOL_SIZE PostgreSQL connections
uv run --frozen granian --interface asgi --factory app.main:create_app \
  --host "$HOST" --port "$PORT" --workers "${API_WORKERS:-2}" --log-level warning &
pids+=($!)
uv run --frozen python -m workers &
pids+=($!)

cat <<MSG

  City API      $PUBLIC_BASE_URL/api/v1
  API docs      $PUBLIC_BASE_URL/docs
  Health        $PUBLIC_BASE_URL/health/ready
  Metrics       $PUBLIC_BASE_URL/metrics
  Console       $PUBLIC_BASE_URL/console  (staff web console: planned, see docs/architecture.md)
  Worker        arq, queue "${REDIS_PREFIX:-city}:queue"

  Ctrl-C stops the API and the worker.

MSG
# if either process dies, stop the other
wait -n "${pids[@]}"
