#!/usr/bin/env bash
# Reproduces the vendored front-end files under app/web/static/vendor/ from the npm
# registry (the files are committed, so running the app needs no network). Run it again
# after changing a version below, then commit what changed.
#   Leaflet -> app/web/static/vendor/leaflet/{leaflet.js,leaflet.css,images/,LICENSE}
#   Scalar (the /docs viewer) -> app/web/static/vendor/scalar/{standalone.js,NOTICE}
set -euo pipefail
cd "$(dirname "$0")/.."

LEAFLET_VERSION=1.9.4
# `npm view leaflet@1.9.4 dist.integrity`: the tarball must be the one the registry
# published for that version
LEAFLET_INTEGRITY="sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="
SCALAR_VERSION=1.76.4
SCALAR_INTEGRITY="sha512-bHSVv494yuNTcBzmfZR3eYhckOTiu3L6IJmvM2kdKzBVmWqm+JhEHbYc7ydsv7FBSs3vTW9sCz00La2dFgWxVg=="

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mvendor_static: %s\033[0m\n' "$*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 || die "npm is required (scripts/bootstrap.sh installs it if missing)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fetch SPEC TARBALL INTEGRITY: `npm pack` SPEC into $work, check the tarball against the
# integrity the registry published, unpack it into $work/package
fetch() {
  local spec="$1" tarball="$work/$2" integrity="$3" actual
  say "fetching $spec from the npm registry"
  rm -rf "$work/package"
  (cd "$work" && npm pack --silent "$spec" >/dev/null) || die "npm pack $spec failed"
  [ -f "$tarball" ] || die "npm pack did not leave $tarball"
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  [ "$actual" = "$integrity" ] || die "$spec integrity $actual, expected $integrity"
  tar -xzf "$tarball" -C "$work"
}

fetch "leaflet@$LEAFLET_VERSION" "leaflet-$LEAFLET_VERSION.tgz" "$LEAFLET_INTEGRITY"

dest=app/web/static/vendor/leaflet
rm -rf "$dest"
mkdir -p "$dest"
cp "$work/package/dist/leaflet.js" "$work/package/dist/leaflet.css" "$work/package/LICENSE" "$dest/"
cp -r "$work/package/dist/images" "$dest/images"
say "vendored Leaflet $LEAFLET_VERSION into $dest:"
(cd "$dest" && find . -type f | sort | sed 's|^\./|    |') >&2

# the self-contained browser bundle (styles inside); /docs turns off its web fonts
fetch "@scalar/api-reference@$SCALAR_VERSION" "scalar-api-reference-$SCALAR_VERSION.tgz" \
  "$SCALAR_INTEGRITY"
dest=app/web/static/vendor/scalar
rm -rf "$dest"
mkdir -p "$dest"
cp "$work/package/dist/browser/standalone.js" "$dest/"
# the package ships no LICENSE file; its package.json says MIT
license=$(node -p "require('$work/package/package.json').license")
cat > "$dest/NOTICE" <<NOTICE
@scalar/api-reference $SCALAR_VERSION (dist/browser/standalone.js) from the npm registry,
integrity $SCALAR_INTEGRITY.
License: $license (package.json), https://github.com/scalar/scalar
NOTICE
say "vendored Scalar $SCALAR_VERSION into $dest:"
(cd "$dest" && find . -type f | sort | sed 's|^\./|    |') >&2
