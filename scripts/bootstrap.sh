#!/usr/bin/env bash
# Installs what a fresh machine lacks: uv, the Python environment (locked), and PostGIS
# for the local PostgreSQL (from Debian's packages). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PGHOST_ADDR="${PGHOST_ADDR:-127.0.0.1}"
PGPORT_NUM="${PGPORT_NUM:-5432}"
PGUSER_NAME="${PGUSER_NAME:-postgres}"
export UV_PYTHON_DOWNLOADS=never

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# 1. uv
if ! command -v uv >/dev/null 2>&1; then
  say "installing uv"
  python3 -m pip install --quiet --disable-pip-version-check uv \
    || python3 -m pip install --quiet --user uv
  export PATH="$HOME/.local/bin:$PATH"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  hash -r
  if ! command -v uv >/dev/null 2>&1; then
    # the make recipes that follow need uv on PATH, not only this script
    uv_bin=$(python3 -c 'import uv; print(uv.find_uv_bin())')
    if [ -w /usr/local/bin ]; then ln -sf "$uv_bin" /usr/local/bin/uv; fi
  fi
fi

# 2. a Python 3.12+ interpreter (vietnam-provinces needs 3.12)
works() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
find_python() {
  for candidate in "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 \
                   /usr/bin/python3.12 "$(command -v python3.12 || true)" \
                   "$HOME"/.pyenv/versions/3.13*/bin/python3.13 /usr/bin/python3.13 \
                   "$(command -v python3.13 || true)" "$(command -v python3 || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && works "$candidate"; then
      echo "$candidate"; return
    fi
  done
  return 1
}
if [ ! -x .venv/bin/python ]; then
  PY=$(find_python) || { echo "Python 3.12 or newer is required" >&2; exit 1; }
  say "creating .venv with $PY"
  uv venv --quiet --python "$PY" .venv
fi
say "installing locked Python dependencies"
uv sync --quiet --frozen

# 3. PostGIS in the local PostgreSQL
psql_admin() { psql -h "$PGHOST_ADDR" -p "$PGPORT_NUM" -U "$PGUSER_NAME" -d postgres -tAc "$1"; }
if ! psql_admin "select 1 from pg_available_extensions where name = 'postgis'" | grep -q 1; then
  major=$(psql_admin "show server_version_num" | cut -c1-2)
  say "installing PostGIS for PostgreSQL $major from Debian's packages"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q "postgresql-$major-postgis-3" >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "postgresql-$major-postgis-3" >/dev/null; }
fi
say "environment ready"
