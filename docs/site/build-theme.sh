#!/usr/bin/env bash
# Build Jupyter Book 2's book theme (v1.1.2) from its source, for `medlab site --template DIR`
# on a machine that reaches the npm registry but not api.mystmd.org or GitHub's release files.
# It follows myst-theme's own recipe (its Makefile's `build-theme`): build themes/book with
# Remix, then put the build next to the template/ server files and install their packages.
#
#   docs/site/build-theme.sh MYST_THEME_GIT OUT_DIR
#
# MYST_THEME_GIT: a clone or bare copy of https://github.com/jupyter-book/myst-theme holding
# commit 9a700ae ("Release (#796)", the @myst-theme/* 1.1.2 release). Needs node >= 18, npm and
# git; about 1.3 GB of node_modules in a temporary folder (removed at the end) and 10-20 minutes
# on 2 cores. OUT_DIR gets about 60 MB; point $MEDLAB_SITE_TEMPLATE at it.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 MYST_THEME_GIT OUT_DIR" >&2; exit 2; }
SRC=$1
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
COMMIT=9a700ae
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

git -C "$SRC" archive "$COMMIT" themes/book template patches bin packages/landing-pages |
  tar -x -C "$WORK"
# @myst-theme/landing-pages 1.1.2 is not on npm (its first release there is 1.3.1): transpile it
(cd "$WORK/packages/landing-pages" &&
  npx -y esbuild@0.18.20 src/*.ts src/*.tsx --outdir=dist --format=esm --jsx=automatic \
    --target=es2020 --log-level=warning)
# the theme's package.json with every @myst-theme/* package at 1.1.2 and the myst-* packages at
# the versions of the monorepo's lock file (the nearest the registry has), as overrides
cp "$HERE/book-theme.package.json" "$WORK/themes/book/package.json"
cd "$WORK/themes/book"
npm install --no-audit --no-fund --ignore-scripts --legacy-peer-deps --install-links
# the monorepo's patches (plotly's renderer, the widgets' CSS); one targets a package not here
npx patch-package --patch-dir ../../patches || true
cp remix.config.prod.js remix.config.js
NODE_PATH="$PWD/node_modules" node ../../bin/copy-thebe-assets.cjs ./public
npx tailwindcss -m -i ./styles/app.css -o app/styles/app.css
npx remix build

cp ../../template/server.js ../../template/.gitignore "$OUT"/
sed -e 's#@myst-theme/template#@myst-theme/book#' -e 's#"VERSION"#"1.1.2"#' \
  ../../template/package.json >"$OUT/package.json"
rm -rf "$OUT/public" "$OUT/build"
cp -r public build template.yml "$OUT"/
cd "$OUT" && npm install --no-audit --no-fund --ignore-scripts
echo "theme ready: $OUT (export MEDLAB_SITE_TEMPLATE=$OUT)"
