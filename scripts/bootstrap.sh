#!/usr/bin/env bash
# Installs what a fresh machine lacks: uv, the Python environment (locked), PostGIS for
# the local PostgreSQL and Chromium for the browser tests (from Debian's packages), and
# the browser tests' JavaScript (axe-core, locked in tests/web/js, from the npm registry).
# Safe to run again: each step runs only when its result is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

PGHOST_ADDR="${PGHOST_ADDR:-127.0.0.1}"
PGPORT_NUM="${PGPORT_NUM:-5432}"
PGUSER_NAME="${PGUSER_NAME:-postgres}"
export UV_PYTHON_DOWNLOADS=never

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mbootstrap failed: %s\033[0m\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
# apt_install PACKAGE...: from the current package lists; `apt-get update` only if that fails
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if $SUDO apt-get install -y -q "$@" >/dev/null 2>&1; then return 0; fi
  say "apt-get install $* failed with the current package lists: running apt-get update"
  $SUDO apt-get update -q >/dev/null || die "apt-get update failed"
  $SUDO apt-get install -y -q "$@" >/dev/null || die "apt-get install $* failed"
}

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
uv sync --quiet --frozen || die "uv sync --frozen failed (uv.lock out of date with pyproject.toml?)"

# 3. PostGIS in the local PostgreSQL
psql_admin() { psql -h "$PGHOST_ADDR" -p "$PGPORT_NUM" -U "$PGUSER_NAME" -d postgres -tAc "$1"; }
if ! psql_admin "select 1 from pg_available_extensions where name = 'postgis'" | grep -q 1; then
  major=$(psql_admin "show server_version_num" | cut -c1-2)
  say "installing PostGIS for PostgreSQL $major from Debian's packages"
  apt_install "postgresql-$major-postgis-3"
fi

# 4. Chromium for the browser tests (tests/web): Debian's, driven by Playwright through
#    executable_path; Playwright's own browser download is not used
if [ ! -x /usr/bin/chromium ]; then
  say "installing Chromium from Debian's packages (browser tests)"
  apt_install chromium
  [ -x /usr/bin/chromium ] || die "the chromium package installed no /usr/bin/chromium"
fi
/usr/bin/chromium --version >/dev/null 2>&1 || die "/usr/bin/chromium is installed but does not run"

# 5. axe-core for the accessibility checks, at the version locked in tests/web/js
#    (reinstalled when package-lock.json changed since the last install)
if ! command -v npm >/dev/null 2>&1; then
  say "installing Node.js and npm from Debian's packages"
  apt_install nodejs npm
fi
js=tests/web/js
lock_sum=$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)
stamp="$js/node_modules/.bootstrap-lock-sha256"
if [ ! -f "$js/node_modules/axe-core/axe.min.js" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  say "installing the browser tests' JavaScript (npm ci in $js)"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm ci in $js failed (is the npm registry reachable?)"
  [ -f "$js/node_modules/axe-core/axe.min.js" ] || die "npm ci left no axe-core/axe.min.js in $js"
  echo "$lock_sum" > "$stamp"
fi
say "environment ready"
