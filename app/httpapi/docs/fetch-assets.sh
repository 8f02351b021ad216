#!/usr/bin/env bash
# fetch-assets.sh: fetch the interactive documentation's front-end files from
# the npm registry, pinned by version and checked against the registry's
# sha512 integrity, into swagger-ui/ and redoc/ beside this script, licences
# included. The files are committed and embedded in the binary (go:embed), so
# the API serves its docs with no CDN and the build needs no network; run
# this only to change a version (then update the versions and integrities
# below, and run the Chromium test: go test -run TestDocsInChromium ./app/httpapi/).
set -euo pipefail
cd "$(dirname "$0")"

SWAGGER_UI=swagger-ui-dist@5.35.0
SWAGGER_UI_SHA512=U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==
REDOC=redoc@2.5.4
REDOC_SHA512=M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# fetch PKG@VERSION SHA512 DEST FILE...: npm pack the tarball, check its
# integrity, and copy FILE... (paths inside the package) into DEST.
fetch() {
  local spec="$1" sum="$2" dest="$3"; shift 3
  local tgz
  tgz="$(cd "$tmp" && npm pack --silent "$spec")"
  local got
  got="$(openssl dgst -sha512 -binary "$tmp/$tgz" | base64 -w0)"
  if [ "$got" != "$sum" ]; then
    echo "$spec: sha512 $got, want $sum" >&2
    exit 1
  fi
  rm -rf "$dest" && mkdir -p "$dest"
  tar -xzf "$tmp/$tgz" -C "$tmp"
  for f in "$@"; do cp "$tmp/package/$f" "$dest/$(basename "$f")"; done
  rm -rf "$tmp/package"
  echo "$spec -> $dest: $*"
}

fetch "$SWAGGER_UI" "$SWAGGER_UI_SHA512" swagger-ui \
  swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt
fetch "$REDOC" "$REDOC_SHA512" redoc \
  bundles/redoc.standalone.js LICENSE
