#!/usr/bin/env bash
# Serves the system in the foreground once it is set up (scripts/run.sh does that first):
# the API (granian) and the arq worker. A worker that dies is restarted with backoff
# (1 s, doubling to 30 s; back to 1 s after it stayed up WORKER_BACKOFF_RESET_SECONDS)
# while the API keeps serving: the API files and answers without workers, and the
# reconciler catches up. If the API dies, everything stops. Ctrl-C (or SIGTERM) stops both.
#
# API_CMD / WORKER_CMD replace the two commands (tests run this script's supervision with
# stand-in commands); HOST, PORT, API_WORKERS as for `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8000}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://$HOST:$PORT}"
# two API workers by default, as in the Dockerfile: one process saturates one core
# (filing: ~570/s on one, ~780/s on two on the 2-core bench machine, docs/benchmarks.md);
# each holds up to 2 x DB_POOL_SIZE PostgreSQL connections
API_CMD="${API_CMD:-uv run --frozen granian --interface asgi --factory app.main:create_app \
--host $HOST --port $PORT --workers ${API_WORKERS:-2} --log-level warning}"
WORKER_CMD="${WORKER_CMD:-uv run --frozen python -m workers}"
BACKOFF_MAX="${WORKER_BACKOFF_MAX_SECONDS:-30}"
BACKOFF_RESET="${WORKER_BACKOFF_RESET_SECONDS:-60}"

log() { printf '%s run: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Runs WORKER_CMD again whenever it exits; on SIGTERM stops it and returns.
supervise_worker() {
  local stopping=0 pid="" rc delay=1 started
  trap 'stopping=1; [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null' TERM
  while [ "$stopping" = 0 ]; do
    started=$SECONDS
    $WORKER_CMD &
    pid=$!
    rc=0
    wait "$pid" || rc=$?
    # a signal interrupts `wait`: wait again until the worker has really gone
    while kill -0 "$pid" 2>/dev/null; do wait "$pid" || rc=$?; done
    [ "$stopping" = 0 ] || break
    if [ $((SECONDS - started)) -ge "$BACKOFF_RESET" ]; then delay=1; fi
    log "worker exited with status $rc; restarting it in ${delay} s (the API keeps serving)"
    sleep "$delay" &
    pid=$!
    wait "$pid" || true
    delay=$((delay * 2 > BACKOFF_MAX ? BACKOFF_MAX : delay * 2))
  done
}

api_pid="" supervisor_pid=""
stop() {
  trap - INT TERM EXIT
  for pid in $api_pid $supervisor_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

$API_CMD &
api_pid=$!
supervise_worker &
supervisor_pid=$!

cat <<MSG

  City API      $PUBLIC_BASE_URL/api/v1
  API docs      $PUBLIC_BASE_URL/docs
  Health        $PUBLIC_BASE_URL/health/ready
  Metrics       $PUBLIC_BASE_URL/metrics
  Console       $PUBLIC_BASE_URL/console  (staff web console; demo staff in README.md)
  Worker        arq, queue "${REDIS_PREFIX:-city}:queue" (restarted with backoff if it dies)

  Ctrl-C stops the API and the worker.

MSG
# the API is the service: when it stops, everything stops
rc=0
wait "$api_pid" || rc=$?
log "API exited with status $rc; stopping the worker"
exit "$rc"
