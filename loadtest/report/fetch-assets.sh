#!/usr/bin/env bash
# Fetches the chart library the HTML report inlines (uPlot, MIT) from npm at
# the pinned version, with its licence, into loadtest/report/assets/, where
# go:embed builds it into glasshouse-load. The files are committed, so
# building needs no network; run this only to change the version, then
# check the report test and the screenshot.
set -euo pipefail
cd "$(dirname "$0")"

UPLOT_VERSION=1.6.32

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null && tar xzf "uplot-$UPLOT_VERSION.tgz")
mkdir -p assets
cp "$work/package/dist/uPlot.iife.min.js" assets/uPlot.iife.min.js
cp "$work/package/dist/uPlot.min.css" assets/uPlot.min.css
cp "$work/package/LICENSE" assets/uPlot.LICENSE
echo "$UPLOT_VERSION" > assets/uPlot.VERSION
echo "uPlot $UPLOT_VERSION fetched into $(pwd)/assets"
