#!/usr/bin/env bash
# Reproduces the vendored front-end files under app/web/static/vendor/ from the npm
# registry (the files are committed, so running the app needs no network). Run it again
# after changing a version below, then commit what changed.
#   Leaflet -> app/web/static/vendor/leaflet/{leaflet.js,leaflet.css,images/,LICENSE}
set -euo pipefail
cd "$(dirname "$0")/.."

LEAFLET_VERSION=1.9.4
# `npm view leaflet@1.9.4 dist.integrity`: the tarball must be the one the registry
# published for that version
LEAFLET_INTEGRITY="sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mvendor_static: %s\033[0m\n' "$*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 || die "npm is required (scripts/bootstrap.sh installs it if missing)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say "fetching leaflet@$LEAFLET_VERSION from the npm registry"
(cd "$work" && npm pack --silent "leaflet@$LEAFLET_VERSION" >/dev/null) \
  || die "npm pack leaflet@$LEAFLET_VERSION failed"
tarball="$work/leaflet-$LEAFLET_VERSION.tgz"
[ -f "$tarball" ] || die "npm pack did not leave $tarball"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[ "$actual" = "$LEAFLET_INTEGRITY" ] \
  || die "leaflet-$LEAFLET_VERSION.tgz integrity $actual, expected $LEAFLET_INTEGRITY"
tar -xzf "$tarball" -C "$work"

dest=app/web/static/vendor/leaflet
rm -rf "$dest"
mkdir -p "$dest"
cp "$work/package/dist/leaflet.js" "$work/package/dist/leaflet.css" "$work/package/LICENSE" "$dest/"
cp -r "$work/package/dist/images" "$dest/images"
say "vendored Leaflet $LEAFLET_VERSION into $dest:"
(cd "$dest" && find . -type f | sort | sed 's|^\./|    |') >&2
