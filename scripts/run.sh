#!/usr/bin/env bash
# Runs the whole system in the foreground: installs what is missing, migrates, loads the
# reference data, then serves the API (granian) and the arq worker (scripts/serve.sh: a
# dying worker is restarted with backoff while the API keeps serving). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never

scripts/bootstrap.sh
uv run --frozen python -m app.cli setup

exec scripts/serve.sh
