#!/usr/bin/env bash
# fuzz.sh (make fuzz): runs every fuzz target for FUZZTIME each.
#
# A failure that Go's fuzzer can reproduce is written as a new file under
# the package's testdata/fuzz/FuzzX/: that is a finding, and the run fails
# with the fuzzer's output and the input's path. A failure that leaves no
# input behind comes from the fuzzing engine itself (a worker that did not
# answer in time on a loaded machine, for example); its output is printed
# and the target is run once more, and only a second such failure fails
# the run.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

corpus() { { find "$1/testdata/fuzz/$2" -type f 2>/dev/null || true; } | sort; }

# One go list for every package's directory, not one per package.
while read -r pkg dir; do
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "fuzz [${SECONDS}s] $pkg $f"
    for try in 1 2; do
      before=$(corpus "$dir" "$f")
      if $GO test -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" "$pkg" >"$out" 2>&1; then
        break
      fi
      cat "$out"
      if [ "$(corpus "$dir" "$f")" != "$before" ]; then
        echo "fuzz: $pkg $f found a failing input:" >&2
        comm -13 <(echo "$before") <(corpus "$dir" "$f") >&2
        exit 1
      fi
      if [ "$try" = 2 ]; then
        echo "fuzz: $pkg $f failed twice without a failing input" >&2
        exit 1
      fi
      echo "fuzz: $pkg $f failed without leaving a failing input (the fuzzing engine, not the code); running it once more" >&2
    done
  done
done < <($GO list -f '{{.ImportPath}} {{.Dir}}' ./...)
